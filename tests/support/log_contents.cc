#include "support/log_contents.h"

#include <fmt/format.h>

#include "log/record_batch.h"

namespace evert::testing {
namespace L = log::batch_layout;
namespace {

constexpr uint64_t kReadBytesMax = 1u << 20;
// A bound on the read loop: no test partition holds more batches than this.
constexpr int64_t kReadsMax = 10'000'000;

}  // namespace

Result<std::vector<StoredBatch>> read_partition(const log::Partition& partition) {
  std::vector<StoredBatch> out;
  int64_t offset = partition.log_start_offset();
  const int64_t end = partition.high_watermark();
  for (int64_t reads = 0; offset < end; ++reads) {
    if (reads >= kReadsMax) return error(ErrorCode::kInternal, "read loop did not terminate");
    EVERT_ASSIGN_OR_RETURN(log::ReadResult r, partition.read(offset, kReadBytesMax));
    if (!r.slice)
      return error(ErrorCode::kCorruption, fmt::format("read({}) returned nothing below high watermark {}", offset, end));
    std::string bytes(r.slice->size_bytes, '\0');
    EVERT_ASSIGN_OR_RETURN(size_t n, r.slice->file->read_at(r.slice->position,
                                                            MutableByteSpan(reinterpret_cast<uint8_t*>(bytes.data()),
                                                                            bytes.size())));
    if (n != bytes.size())
      return error(ErrorCode::kCorruption, fmt::format("short read of {} at {}", r.slice->file->path(), r.slice->position));
    size_t pos = 0;
    bool advanced = false;
    while (bytes.size() - pos >= L::kHeaderSize) {
      log::BatchHeader h = log::decode_batch_header(as_bytes(std::string_view(bytes).substr(pos, L::kHeaderSize)));
      if (h.batch_length <= 0 || h.total_size() > bytes.size() - pos) break;  // a fetch may end mid-batch
      if (h.last_offset() < offset)
        return error(ErrorCode::kCorruption,
                     fmt::format("read({}) returned batch {}-{} that ends before it", offset, h.base_offset,
                                 h.last_offset()));
      if (!out.empty() && h.base_offset <= out.back().last_offset)
        return error(ErrorCode::kCorruption, fmt::format("batch {} does not follow batch ending at {}", h.base_offset,
                                                         out.back().last_offset));
      out.push_back(StoredBatch{h.base_offset, h.last_offset(), bytes.substr(pos, h.total_size())});
      offset = h.last_offset() + 1;
      pos += h.total_size();
      advanced = true;
    }
    if (!advanced)
      return error(ErrorCode::kCorruption, fmt::format("read({}) returned no whole batch", offset));
  }
  return out;
}

}  // namespace evert::testing
