// JSON that comes from outside the process (responses, requests, model text, configs), parsed
// with a nesting limit so that a hostile document cannot exhaust the stack.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>

namespace roilens {

/// Deepest nesting accepted from untrusted JSON. 100,000 nested arrays fit in 200 KB, and their
/// tree overflows a thread's stack when it is destroyed (recursively); documents of this API
/// nest under 10 levels, so 256 leaves ample room.
inline constexpr int kMaxJsonDepth = 256;

/// Thrown by ParseBoundedJson when a document nests deeper than its limit.
class JsonTooDeepError : public std::runtime_error {
 public:
  explicit JsonTooDeepError(int max_depth);
  int max_depth() const { return max_depth_; }

 private:
  int max_depth_;
};

/// nlohmann::json::parse with a nesting limit, checked while parsing: the tree never grows
/// deeper than `max_depth`. Throws nlohmann::json::parse_error for bad JSON (numbers beyond
/// double's range included) and JsonTooDeepError past the limit. Thread-safe (pure function).
nlohmann::json ParseBoundedJson(std::string_view text, bool ignore_comments = false,
                                int max_depth = kMaxJsonDepth);

/// The same without exceptions: a discarded value (is_discarded()) for bad or too-deep JSON.
nlohmann::json ParseBoundedJsonOrDiscard(std::string_view text, bool ignore_comments = false,
                                         int max_depth = kMaxJsonDepth);

}  // namespace roilens
