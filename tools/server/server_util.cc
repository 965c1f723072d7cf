// Local backend helpers: Google-shaped error bodies, base64, timestamps and random ids.
#include <array>
#include <ctime>

#include "server_internal.h"

namespace roilens::backend::internal {
namespace {

std::string StatusNameForHttp(int http_status) {
  switch (http_status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "ABORTED";
    case 413:
      return "INVALID_ARGUMENT";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 499:
      return "CANCELLED";
    case 501:
      return "UNIMPLEMENTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return http_status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
  }
}

int HttpForCode(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kCancelled:
      return 499;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

}  // namespace

Json GoogleErrorBody(const HttpError& error) {
  return Json{{"error",
               {{"code", error.http_status},
                {"message", error.message},
                {"status", error.status},
                {"details", error.details}}}};
}

HttpError MakeError(int http_status, std::string message) {
  HttpError e;
  e.http_status = http_status;
  e.status = StatusNameForHttp(http_status);
  e.message = std::move(message);
  return e;
}

HttpError ErrorFromStatus(const Status& status) {
  HttpError e;
  e.http_status = status.http_status() != 0 ? status.http_status() : HttpForCode(status.code());
  e.status = StatusCodeName(status.code());
  e.message = status.message();
  if (!status.reason().empty()) e.details.push_back(ErrorInfo(status.reason()));
  return e;
}

Json ErrorInfo(std::string_view reason, std::string_view domain) {
  return Json{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
              {"reason", std::string(reason)},
              {"domain", std::string(domain)},
              {"metadata", {{"service", "generativelanguage.googleapis.com"}}}};
}

std::string Iso8601(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

std::string RandomToken(std::size_t length) {
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<int> pick(0, 61);
  std::string out(length, 'x');
  for (auto& c : out) c = kChars[pick(Rng())];
  return out;
}

std::string RandomSignature() {
  std::vector<std::uint8_t> bytes(48);
  std::uniform_int_distribution<int> pick(0, 255);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(pick(Rng()));
  return Base64Encode(bytes);
}

}  // namespace roilens::backend::internal
