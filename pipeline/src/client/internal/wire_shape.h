// Private to the wire model: the exception that carries the JSON path of a badly shaped field
// from deep inside a parser up to the Status-returning entry points.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace roilens::wire::internal {

/// Thrown by the from_json parsers; ParseInteraction/ParseGoogleError turn it into a Status.
class ShapeError : public std::runtime_error {
 public:
  ShapeError(std::string path, const std::string& what)
      : std::runtime_error(what), path_(std::move(path)) {}
  /// e.g. "steps[2].content[0].data"
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline const char* TypeName(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "object";
    case nlohmann::json::value_t::array:
      return "array";
    case nlohmann::json::value_t::string:
      return "string";
    case nlohmann::json::value_t::boolean:
      return "boolean";
    case nlohmann::json::value_t::binary:
      return "binary";
    case nlohmann::json::value_t::discarded:
      return "discarded";
    default:
      return "number";
  }
}

}  // namespace roilens::wire::internal
