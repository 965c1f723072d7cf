// Local backend: a create request's raw body to a ParsedRequest, with the JSON nesting depth
// checked while parsing so that no hostile tree is ever built.
#include "roilens/client/bounded_json.h"
#include "server_internal.h"

namespace roilens::backend::internal {

StatusOr<ParsedRequest> ParseCreateBody(std::string_view body, InteractionStore& store) {
  // The tree of a body nested 100,000 deep (200 KB) would exhaust a worker's stack when copied,
  // dumped or compared: ParseBoundedJson refuses it before building anything that deep.
  Json parsed;
  try {
    parsed = ParseBoundedJson(body);
  } catch (const JsonTooDeepError& e) {
    return Status(StatusCode::kInvalidArgument,
                  std::string("Invalid JSON payload received: ") + e.what(), 400);
  } catch (const Json::exception&) {
    return Status(StatusCode::kInvalidArgument,
                  "Invalid JSON payload received: the request body is not valid JSON (" +
                      std::to_string(body.size()) + " bytes)",
                  400);
  }
  return ParseCreateRequest(parsed, store);
}

}  // namespace roilens::backend::internal
