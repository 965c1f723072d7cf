// Private to InteractionsClient: header parsing, the server's retry hints, and the mapping of
// libcurl results and HTTP error responses to Status. Header-only (src/internal is not globbed).
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "roilens/client/interactions.h"
#include "roilens/client/status.h"

namespace roilens::internal {

/// The trimmed value of `line` when it is the header `name` (case-insensitive); nullopt otherwise.
inline std::optional<std::string> HeaderValue(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return std::nullopt;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) !=
        std::tolower(static_cast<unsigned char>(name[i]))) {
      return std::nullopt;
    }
  }
  std::string_view v = line.substr(name.size() + 1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  return std::string(v);
}

/// `retry-after-ms: 1500` (a non-negative number of milliseconds, fractions rounded up).
inline std::optional<std::int64_t> ParseRetryAfterMs(const std::string& v) {
  if (v.empty()) return std::nullopt;
  char* end = nullptr;
  double ms = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !std::isfinite(ms) || ms < 0) return std::nullopt;
  return static_cast<std::int64_t>(std::ceil(ms));
}

/// `Retry-After: 2` (seconds) or `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT` (an HTTP date).
inline std::optional<std::int64_t> ParseRetryAfter(const std::string& v,
                                                   std::time_t now = std::time(nullptr)) {
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (v.size() > 9) return std::nullopt;  // absurd; let the backoff policy decide
    return std::stoll(v) * 1000;
  }
  std::time_t when = curl_getdate(v.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  return std::max<std::int64_t>(0, static_cast<std::int64_t>(when - now) * 1000);
}

/// A libcurl failure (no HTTP response) as a Status; http_status stays 0 so the retry policy
/// can tell transport failures from server answers.
inline Status TransportStatus(CURLcode code, const std::string& what, const char* detail,
                              std::chrono::milliseconds attempt_timeout) {
  StatusCode sc;
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      sc = StatusCode::kDeadlineExceeded;
      break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
      sc = StatusCode::kUnavailable;
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      sc = StatusCode::kFailedPrecondition;
      break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      sc = StatusCode::kInvalidArgument;
      break;
    case CURLE_ABORTED_BY_CALLBACK:
      sc = StatusCode::kCancelled;
      break;
    default:
      sc = StatusCode::kUnknown;
  }
  std::string m = what + ": transport error: " + curl_easy_strerror(code);
  if (detail != nullptr && *detail != '\0') m += std::string(" (") + detail + ")";
  if (code == CURLE_OPERATION_TIMEDOUT) {
    m += "; per-attempt timeout " + std::to_string(attempt_timeout.count()) + " ms";
  }
  return Status(sc, std::move(m));
}

/// At most `limit` characters of a body, control characters replaced, for error messages.
inline std::string Snippet(std::string_view body, std::size_t limit = 200) {
  std::string s(body.substr(0, limit));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (body.size() > limit) s += "...";
  return s;
}

/// A non-2xx answer as a Status: the Google status name decides the code when given (else the
/// HTTP status), the Google message and ErrorInfo reason are kept, the HTTP status is attached.
inline Status HttpErrorStatus(int http, const std::string& what,
                              const std::optional<wire::GoogleError>& google,
                              std::string_view body) {
  StatusCode code = StatusCodeFromHttp(http);
  if (code == StatusCode::kOk) code = StatusCode::kUnknown;  // e.g. 3xx we did not follow
  std::string message;
  std::string reason;
  if (google) {
    if (!google->status.empty()) {
      StatusCode named = StatusCodeFromName(google->status);
      if (named != StatusCode::kUnknown || google->status == "UNKNOWN") code = named;
    }
    message = what + ": " + (google->message.empty() ? "(no message)" : google->message);
    if (!google->status.empty() && StatusCodeFromName(google->status) == StatusCode::kUnknown &&
        google->status != "UNKNOWN") {
      message += " [" + google->status + "]";  // a status name we do not know: keep it visible
    }
    reason = google->reason;
  } else {
    message = what + ": HTTP " + std::to_string(http) + " with a non-Google error body";
    if (!body.empty()) message += ": " + Snippet(body);
  }
  return Status(code, std::move(message), http, std::move(reason));
}

/// Percent-encodes everything but RFC 3986 unreserved characters (ids go in a path segment).
inline std::string EscapePathSegment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace roilens::internal
