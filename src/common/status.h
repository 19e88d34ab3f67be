// Status and Result<T>: sluice's error types. No exception crosses a module API; a failing
// call returns a Status (a code, a message written for a user, and a retryable flag) or a
// Result<T> holding either a value or a Status. Both are values: copyable, thread-compatible.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

// Codes are grouped by the edge that translates them (errno, S3 XML error, exit code).
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,   // bad input from the caller: a path, a size, a config value
  kNotFound = 2,          // the object, file or key does not exist
  kAlreadyExists = 3,
  kPermissionDenied = 4,  // authentication or authorization refused (S3 403)
  kUnavailable = 5,       // cannot reach a server, or it answered 5xx
  kTimeout = 6,
  kIoError = 7,           // a local I/O error
  kCorruption = 8,        // bytes failed a checksum or a response could not be parsed
  kNotSupported = 9,      // the operation does not apply to this store (e.g. writes over HTTP)
  kResourceExhausted = 10,  // quota, disk full, too many requests (S3 SlowDown)
  kOutOfRange = 11,       // a range outside the object
  kInternal = 12,
  kStale = 13,            // the object changed in the under-store since its version was read
  kNotEmpty = 14,         // a directory to remove still holds entries
};

// Returns a stable lowercase name, e.g. "not found".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, bool retryable = false)
      : code_(code), message_(std::move(message)), retryable_(retryable) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // True when the same call may succeed if repeated later (5xx, SlowDown, reset, timeout).
  bool retryable() const { return retryable_; }

  // Returns a copy whose message is "context: message", keeping code and retryable flag.
  Status WithContext(std::string_view context) const;

  // "not found: s3://b/k does not exist"
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  bool retryable_ = false;
};

inline Status InvalidArgument(std::string msg) { return Status(StatusCode::kInvalidArgument, std::move(msg)); }
inline Status NotFound(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
inline Status IoError(std::string msg) { return Status(StatusCode::kIoError, std::move(msg)); }
inline Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }
inline Status NotSupported(std::string msg) { return Status(StatusCode::kNotSupported, std::move(msg)); }
inline Status Corruption(std::string msg) { return Status(StatusCode::kCorruption, std::move(msg)); }

// Either a T or a non-OK Status, in the manner of std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : value_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(value_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(value_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(value_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(value_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(value_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace sluice

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define SLUICE_RETURN_IF_ERROR(expr)      \
  do {                                    \
    ::sluice::Status _st = (expr);        \
    if (!_st.ok()) return _st;            \
  } while (0)

#define SLUICE_CONCAT_INNER(a, b) a##b
#define SLUICE_CONCAT(a, b) SLUICE_CONCAT_INNER(a, b)
// Declares `lhs` from a Result-returning `expr`, or returns its Status.
#define SLUICE_ASSIGN_OR_RETURN(lhs, expr) SLUICE_ASSIGN_OR_RETURN_IMPL(SLUICE_CONCAT(_res_, __LINE__), lhs, expr)
#define SLUICE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
