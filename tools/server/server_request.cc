// Local backend: a create request's raw body to a ParsedRequest, with the JSON nesting depth
// checked while parsing so that no hostile tree is ever built.
#include "server_internal.h"

namespace roilens::backend::internal {

StatusOr<ParsedRequest> ParseCreateBody(std::string_view body, InteractionStore& store) {
  // nlohmann's parser is iterative, but the tree it builds is not: destroying, copying or
  // dumping a value recurses once per level, and a 200 KB body of nested brackets is enough to
  // exhaust a worker's stack. The callback sees each container open with its depth (0 = the
  // top level); returning false there discards that container, so nothing deeper than the limit
  // is ever built, and the request is refused.
  bool too_deep = false;
  Json::parser_callback_t limit_depth = [&too_deep](int depth, Json::parse_event_t event, Json&) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    return !too_deep;
  };
  Json parsed = Json::parse(body.begin(), body.end(), limit_depth, /*allow_exceptions=*/false);
  if (too_deep) {
    return Status(StatusCode::kInvalidArgument,
                  "Invalid JSON payload received: nested deeper than " +
                      std::to_string(kMaxJsonDepth) + " levels",
                  400);
  }
  if (parsed.is_discarded()) {
    return Status(StatusCode::kInvalidArgument,
                  "Invalid JSON payload received: the request body is not valid JSON (" +
                      std::to_string(body.size()) + " bytes)",
                  400);
  }
  return ParseCreateRequest(parsed, store);
}

}  // namespace roilens::backend::internal
