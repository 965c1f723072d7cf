// ParseBoundedJson: nlohmann's DOM parser with a depth check in its parser callback.
#include "roilens/bounded_json.h"

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
  return nlohmann::json::parse(text.begin(), text.end(), limit, /*allow_exceptions=*/true,
                               ignore_comments);
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
