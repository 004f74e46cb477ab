// How views read their source topic: whole record batches of one partition
// from an offset, into a buffer followed by EventDecoder::kPadding bytes
// (the JSON scanner may read that far past a value), then the records of
// an offset range in order. A view's runner (View::process_some) and the
// threads decoding ahead of it (ParallelDecoder) both read this way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "log/record_batch.h"

namespace evert::log {
class Partition;
}

namespace evert::views {

class SourceReader {
 public:
  // Reads up to `max_bytes` of `part` from offset *next into the buffer;
  // *next moves up to the log start first when retention removed what came
  // before. Returns the bytes read (0: nothing there).
  Result<size_t> read(const log::Partition& part, int64_t* next, uint64_t max_bytes);

  // The records of the `size` bytes read() returned whose offsets are in
  // [*next, limit), in order:
  // - on_record(record, capacity) handles one (capacity: the bytes readable
  //   from its value, for EventDecoder::decode_row) and returns false to
  //   stop there, *next left at it;
  // - on_bad_batch(header, status), for a batch that cannot be decoded,
  //   likewise returns false to stop;
  // - after_batch() runs after each batch.
  // *next moves past each record handled, past batches with none left
  // below `limit` (control batches, gaps), and to `limit` at a record at or
  // beyond it (offsets only increase). Returns false when stopped.
  template <typename OnRecord, typename OnBadBatch, typename AfterBatch>
  bool for_each(size_t size, int64_t* next, int64_t limit, OnRecord&& on_record, OnBadBatch&& on_bad_batch,
                AfterBatch&& after_batch) {
    const char* buf_end = buffer_.data() + buffer_.size();
    size_t pos = 0;
    while (pos + log::batch_layout::kHeaderSize <= size && *next < limit) {
      auto bytes = ByteSpan(reinterpret_cast<const uint8_t*>(buffer_.data()) + pos, size - pos);
      log::BatchHeader h = log::decode_batch_header(bytes);
      size_t total = h.total_size();
      if (total < log::batch_layout::kHeaderSize || pos + total > size) break;
      if (h.last_offset() >= *next && !h.control()) {
        Status decoded = log::decode_records(ByteSpan(bytes.data(), total), &scratch_, &records_);
        if (!decoded) {
          if (!on_bad_batch(h, decoded)) return false;
        } else {
          for (const log::Record& r : records_) {
            if (r.offset < *next) continue;
            if (r.offset >= limit) {
              *next = limit;
              break;
            }
            size_t capacity = 0;
            if (r.value && r.value->data() >= buffer_.data() && r.value->data() < buf_end)
              capacity = size_t(buf_end - r.value->data());
            if (!on_record(r, capacity)) return false;
            *next = r.offset + 1;
          }
        }
      }
      after_batch();
      if (h.last_offset() + 1 > *next && h.last_offset() + 1 <= limit) *next = h.last_offset() + 1;
      pos += total;
    }
    bytes_used_ = pos;
    return true;
  }

  // Bytes of the last read that for_each() went through.
  size_t bytes_used() const { return bytes_used_; }

 private:
  std::string buffer_;
  std::string scratch_;  // decompressed batches
  std::vector<log::Record> records_;
  size_t bytes_used_ = 0;
};

}  // namespace evert::views
