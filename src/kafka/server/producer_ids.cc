#include "kafka/server/producer_ids.h"

#include <charconv>

namespace evert::kafka {

Result<int64_t> ProducerIdAllocator::next() {
  std::lock_guard lock(mu_);
  if (next_ < 0) {
    next_ = 0;
    if (env_->file_exists(path_)) {
      EVERT_ASSIGN_OR_RETURN(std::string text, io::read_whole_file(*env_, path_));
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || v < 0) return error(ErrorCode::kCorruption, path_ + ": not a producer id");
      next_ = v;
    }
    limit_ = next_;
  }
  if (next_ >= limit_) {
    int64_t new_limit = next_ + kBlock;
    std::string text = std::to_string(new_limit) + "\n";
    EVERT_RETURN_IF_ERROR(io::write_file_atomically(*env_, path_, as_bytes(text)));
    limit_ = new_limit;
  }
  return next_++;
}

}  // namespace evert::kafka
