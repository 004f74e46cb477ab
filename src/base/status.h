// Status and Result<T>: errors are values (STYLE.md habit 5).
//
// Every fallible function returns Status or Result<T>. A Status carries a
// subsystem-independent code plus a human message; subsystems map these
// codes onto their protocol's codes (Kafka error codes, SQLSTATEs, HTTP).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace evert {

enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument,   // caller passed something malformed
  kNotFound,          // a named thing does not exist
  kAlreadyExists,     // creating something that exists
  kCorruption,        // bytes on disk or on the wire fail validation
  kIoError,           // the OS refused a file operation
  kNoSpace,           // the disk is full (ENOSPC)
  kOutOfRange,        // an offset or position outside what exists
  kTooLarge,          // exceeds a configured limit
  kUnsupported,       // a format/version/feature we do not implement
  kBusy,              // a resource is held by someone else (e.g. a lock)
  kClosed,            // the object was closed/shut down
  kTimeout,           // a deadline passed
  kSequenceError,     // an idempotent producer's sequence has a gap
  kFenced,            // an idempotent producer's epoch is older than known
  kInternal,          // an invariant broke; a bug
};

const char* error_code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == ErrorCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Corruption: segment 000.log at position 4096: bad CRC"
  std::string to_string() const;

  // Prefixes context, e.g. status.with_context("opening topic orders").
  Status with_context(const std::string& context) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status error(ErrorCode code, std::string message) { return Status(code, std::move(message)); }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.is_ok()); }  // NOLINT

  bool is_ok() const { return status_.is_ok(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(is_ok());
    return *value_;
  }
  const T& value() const& {
    assert(is_ok());
    return *value_;
  }
  T&& value() && {
    assert(is_ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace evert

// Propagates a failed Status out of the enclosing function.
#define EVERT_RETURN_IF_ERROR(expr)              \
  do {                                           \
    ::evert::Status evert_status_ = (expr);      \
    if (!evert_status_.is_ok()) return evert_status_; \
  } while (0)

#define EVERT_CONCAT_INNER(a, b) a##b
#define EVERT_CONCAT(a, b) EVERT_CONCAT_INNER(a, b)

// EVERT_ASSIGN_OR_RETURN(auto file, env.open(path));
#define EVERT_ASSIGN_OR_RETURN(lhs, expr) \
  EVERT_ASSIGN_OR_RETURN_IMPL(EVERT_CONCAT(evert_result_, __LINE__), lhs, expr)
#define EVERT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.is_ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
