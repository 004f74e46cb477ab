#include "base/status.h"

namespace evert {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "OK";
    case ErrorCode::kInvalidArgument: return "InvalidArgument";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kAlreadyExists: return "AlreadyExists";
    case ErrorCode::kCorruption: return "Corruption";
    case ErrorCode::kIoError: return "IoError";
    case ErrorCode::kNoSpace: return "NoSpace";
    case ErrorCode::kOutOfRange: return "OutOfRange";
    case ErrorCode::kTooLarge: return "TooLarge";
    case ErrorCode::kUnsupported: return "Unsupported";
    case ErrorCode::kBusy: return "Busy";
    case ErrorCode::kClosed: return "Closed";
    case ErrorCode::kTimeout: return "Timeout";
    case ErrorCode::kSequenceError: return "SequenceError";
    case ErrorCode::kFenced: return "Fenced";
    case ErrorCode::kInternal: return "Internal";
  }
  return "Unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  return std::string(error_code_name(code_)) + ": " + message_;
}

Status Status::with_context(const std::string& context) const {
  if (is_ok()) return *this;
  return Status(code_, context + ": " + message_);
}

}  // namespace evert
