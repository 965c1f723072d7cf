// ParseBoundedJson: nlohmann's DOM parser with a depth check in its parser callback.
#include "roilens/client/bounded_json.h"

#include <string>

namespace roilens {

JsonTooDeepError::JsonTooDeepError(int max_depth)
    : std::runtime_error("JSON nests deeper than " + std::to_string(max_depth) + " levels"),
      max_depth_(max_depth) {}

nlohmann::json ParseBoundedJson(std::string_view text, bool ignore_comments, int max_depth) {
  // The callback sees every object/array start with the depth it opens at; stopping there keeps
  // the partly built tree (destroyed while the exception unwinds) within the limit too.
  auto limit = [max_depth](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        depth >= max_depth) {
      throw JsonTooDeepError(max_depth);
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limit, /*allow_exceptions=*/true,
                                 ignore_comments);
  } catch (const nlohmann::json::out_of_range& e) {
    // A number beyond double's range ("1e999") is reported as out_of_range 406, which callers
    // that catch parse_error would let escape (a crash, found by the fuzzer): report it as the
    // parse error it is, at the offending literal (quoted in the message; its first occurrence
    // in the text is the one that overflowed first).
    std::string reason = e.what();
    if (auto colon = reason.find("] "); colon != std::string::npos) reason.erase(0, colon + 2);
    std::size_t byte = 0;
    const auto open = reason.find('\'');
    const auto close = reason.rfind('\'');
    if (open != std::string::npos && close > open) {
      const std::string token = reason.substr(open + 1, close - open - 1);
      if (auto at = text.find(token); !token.empty() && at != std::string_view::npos) {
        byte = at + token.size();
      }
    }
    throw nlohmann::json::parse_error::create(101, byte, reason, nullptr);
  }
}

nlohmann::json ParseBoundedJsonOrDiscard(std::string_view text, bool ignore_comments,
                                         int max_depth) {
  try {
    return ParseBoundedJson(text, ignore_comments, max_depth);
  } catch (const nlohmann::json::exception&) {
  } catch (const JsonTooDeepError&) {
  }
  return nlohmann::json(nlohmann::json::value_t::discarded);
}

}  // namespace roilens
