// Status and StatusOr<T>: how roilens library APIs report failure (google-cloud-cpp style).
#pragma once

#include <cassert>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <variant>

namespace roilens {

/// Canonical error space (same names and meanings as google.rpc.Code).
enum class StatusCode {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

/// "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", ... (the google.rpc status names).
std::string StatusCodeName(StatusCode code);
/// Inverse of StatusCodeName; unknown names map to kUnknown.
StatusCode StatusCodeFromName(const std::string& name);
/// The canonical code for an HTTP status (429 -> kResourceExhausted, 503 -> kUnavailable, ...).
StatusCode StatusCodeFromHttp(int http_status);

/// An error (or success) value. Carries the HTTP status when one was received (0 otherwise) and
/// the server's status name when it gave one. Cheap to copy. Never holds an API key: callers
/// must not put one in the message.
class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, int http_status = 0, std::string reason = {})
      : code_(code),
        message_(std::move(message)),
        http_status_(http_status),
        reason_(std::move(reason)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// HTTP status of the response that produced this error; 0 for transport/local errors.
  int http_status() const { return http_status_; }
  /// Machine-readable reason when known (e.g. "API_KEY_INVALID"); empty otherwise.
  const std::string& reason() const { return reason_; }
  /// "RESOURCE_EXHAUSTED (HTTP 429): quota exceeded" or "OK".
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_ && a.http_status_ == b.http_status_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  int http_status_ = 0;
  std::string reason_;
};

inline std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

inline Status OkStatus() { return {}; }
inline Status InvalidArgumentError(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status FailedPreconditionError(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status DeadlineExceededError(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status CancelledError(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

/// A value or the Status explaining why there is none. Accessing value() of an error is a bug
/// (asserts in debug builds).
template <typename T>
class StatusOr {
 public:
  StatusOr(const Status& status) : status_(status) { assert(!status_.ok()); }        // NOLINT
  StatusOr(Status&& status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT
  StatusOr(const T& value) : value_(value) {}                                        // NOLINT
  StatusOr(T&& value) : value_(std::move(value)) {}                                  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace roilens
