#include "views/source_reader.h"

#include "log/partition.h"
#include "views/event_decoder.h"

namespace evert::views {

Result<size_t> SourceReader::read(const log::Partition& part, int64_t* next, uint64_t max_bytes) {
  bytes_used_ = 0;
  if (*next < part.log_start_offset()) *next = part.log_start_offset();
  auto rr = part.read(*next, max_bytes);
  if (!rr) return rr.status();
  if (!rr->slice) return size_t(0);
  const io::FileRange& slice = *rr->slice;
  buffer_.resize(slice.size_bytes + EventDecoder::kPadding);
  return slice.file->read_at(slice.position,
                             MutableByteSpan(reinterpret_cast<uint8_t*>(buffer_.data()), slice.size_bytes));
}

}  // namespace evert::views
