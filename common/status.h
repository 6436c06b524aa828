// Status and Result<T>: how every module reports failure without exceptions.
// Codes tell the caller what to do next (see DESIGN.md, house style).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ashiato {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // Bad input: do not retry.
  kNotFound,           // The object does not exist.
  kAlreadyExists,      // Create of an existing object.
  kConflict,           // Stale resourceVersion: re-read and retry.
  kExpired,            // Resource version too old (HTTP 410): relist.
  kUnavailable,        // Transient (network, 5xx, 429): back off and retry.
  kUnauthenticated,    // 401.
  kPermissionDenied,   // 403.
  kResourceExhausted,  // Too large or too many.
  kDeadlineExceeded,   // Timed out.
  kCancelled,          // Shut down while waiting.
  kInternal,           // A bug or an unexpected answer.
  kFailedPrecondition,  // The system is not in a state to do this (e.g. newer data): don't retry.
  kDataLoss,           // Stored data is unreadable (corrupt).
};

// Returns a stable name such as "Unavailable".
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  // Returns true iff the status indicates success.
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Unavailable: connection refused", or "OK".
  std::string ToString() const;

  // Set by HTTP-backed operations: the response status, 0 if none was received.
  int http_status() const { return http_status_; }
  Status& set_http_status(int s) {
    http_status_ = s;
    return *this;
  }
  // Seconds the server asked us to wait (429/503 Retry-After), 0 if none.
  int retry_after_seconds() const { return retry_after_; }
  Status& set_retry_after_seconds(int s) {
    retry_after_ = s;
    return *this;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  int http_status_ = 0;
  int retry_after_ = 0;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
inline Status Expired(std::string m) { return {StatusCode::kExpired, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design.
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Internal("Result constructed from OK status without value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace ashiato
