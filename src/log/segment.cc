#include "log/segment.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/assert.h"
#include "base/logging.h"
#include "log/file_names.h"

namespace evert::log {
namespace L = batch_layout;
namespace {

constexpr size_t kScanChunkBytes = 1u << 20;
// Enough of the header to know a batch's offsets (through last_offset_delta).
constexpr size_t kOffsetsPrefix = L::kLastOffsetDelta + 4;
// Enough of the header to know its timestamps.
constexpr size_t kTimestampsPrefix = L::kMaxTimestamp + 8;

// A forward-only window over a file, refilled in large reads.
class ChunkReader {
 public:
  ChunkReader(const io::File& file, uint64_t end) : file_(file), end_(end) {}

  // Makes [pos, pos + n) available; false when the file ends first.
  Result<bool> ensure(uint64_t pos, size_t n) {
    if (pos >= buf_pos_ && pos + n <= buf_pos_ + buf_.size()) return true;
    size_t want = size_t(std::min<uint64_t>(std::max<size_t>(n, kScanChunkBytes), end_ - pos));
    if (want < n) return false;
    buf_.resize(want);
    EVERT_ASSIGN_OR_RETURN(size_t got, file_.read_at(pos, MutableByteSpan(buf_.data(), want)));
    buf_.resize(got);
    buf_pos_ = pos;
    return got >= n;
  }
  ByteSpan view(uint64_t pos, size_t n) const { return ByteSpan(buf_.data() + (pos - buf_pos_), n); }

 private:
  const io::File& file_;
  uint64_t end_;
  std::vector<uint8_t> buf_;
  uint64_t buf_pos_ = 0;
};

Result<BatchHeader> read_header_prefix(const io::File& file, uint64_t pos, size_t prefix) {
  uint8_t buf[L::kHeaderSize] = {};
  EVERT_ASSIGN_OR_RETURN(size_t n, file.read_at(pos, MutableByteSpan(buf, prefix)));
  if (n < prefix) return error(ErrorCode::kCorruption, fmt::format("{}: short read at {}", file.path(), pos));
  return decode_batch_header(ByteSpan(buf, L::kHeaderSize));
}

}  // namespace

Result<std::optional<Damage>> scan_batches(const io::File& file, uint64_t start, uint64_t end, bool verify_crc,
                                           int64_t min_base_offset, const BatchVisitor& visit) {
  ChunkReader reader(file, end);
  uint64_t pos = start;
  int64_t next_min = min_base_offset;
  while (pos < end) {
    uint64_t left = end - pos;
    if (left < L::kHeaderSize)
      return std::optional<Damage>(Damage{pos, fmt::format("torn batch header: {} bytes left", left)});
    EVERT_ASSIGN_OR_RETURN(bool have, reader.ensure(pos, L::kHeaderSize));
    if (!have) return std::optional<Damage>(Damage{pos, "file shorter than expected"});
    BatchHeader h = decode_batch_header(reader.view(pos, L::kHeaderSize));
    if (Status s = check_batch_header(h); !s.is_ok()) return std::optional<Damage>(Damage{pos, s.message()});
    if (h.total_size() > left)
      return std::optional<Damage>(
          Damage{pos, fmt::format("torn batch: declares {} bytes, {} left", h.total_size(), left)});
    // base_offset is not covered by the CRC. Within a file offsets run on
    // without gaps (the log assigns them; a roll or a split starts a new
    // file), so after the first batch a jump ahead is damage as well.
    if (h.base_offset < next_min || (pos != start && h.base_offset != next_min))
      return std::optional<Damage>(
          Damage{pos, fmt::format("base offset {} does not follow {}", h.base_offset, next_min - 1)});
    EVERT_ASSIGN_OR_RETURN(have, reader.ensure(pos, h.total_size()));
    if (!have) return std::optional<Damage>(Damage{pos, "file shorter than expected"});
    ByteSpan batch = reader.view(pos, h.total_size());
    if (verify_crc) {
      if (Status s = validate_batch(batch); !s.is_ok()) return std::optional<Damage>(Damage{pos, s.message()});
    }
    EVERT_RETURN_IF_ERROR(visit(pos, h, batch));
    next_min = h.last_offset() + 1;
    pos += h.total_size();
  }
  return std::optional<Damage>();
}

Result<std::optional<uint64_t>> find_next_valid_batch(const io::File& file, uint64_t from, uint64_t end,
                                                      int64_t min_base_offset) {
  if (from >= end) return std::optional<uint64_t>();
  // Rare path (damage in the middle of a segment): read the rest whole.
  std::vector<uint8_t> data(end - from);
  EVERT_ASSIGN_OR_RETURN(size_t n, file.read_at(from, MutableByteSpan(data.data(), data.size())));
  data.resize(n);
  for (size_t q = 0; q + L::kHeaderSize <= data.size(); ++q) {
    if (int8_t(data[q + L::kMagic]) != L::kMagicV2) continue;
    BatchHeader h = decode_batch_header(ByteSpan(data.data() + q, L::kHeaderSize));
    if (!check_batch_header(h).is_ok() || h.base_offset < min_base_offset) continue;
    if (h.total_size() > data.size() - q) continue;
    if (!validate_batch(ByteSpan(data.data() + q, h.total_size())).is_ok()) continue;
    return std::optional<uint64_t>(from + q);
  }
  return std::optional<uint64_t>();
}

Segment::Segment(io::Env& env, std::string dir, int64_t base_offset, uint32_t index_interval_bytes)
    : env_(env),
      dir_(std::move(dir)),
      base_offset_(base_offset),
      index_interval_bytes_(index_interval_bytes),
      log_path_(io::join_path(dir_, segment_file_name(base_offset, SegmentFileKind::kLog))),
      next_offset_(base_offset) {}

Result<std::unique_ptr<Segment>> Segment::create(io::Env& env, const std::string& dir, int64_t base_offset,
                                                 uint32_t index_interval_bytes) {
  std::unique_ptr<Segment> seg(new Segment(env, dir, base_offset, index_interval_bytes));
  EVERT_ASSIGN_OR_RETURN(auto file, env.open_file(seg->log_path_, io::OpenMode::kCreateNew));
  seg->log_file_ = std::move(file);
  auto index =
      SegmentIndex::create(env, io::join_path(dir, segment_file_name(base_offset, SegmentFileKind::kOffsetIndex)),
                           io::join_path(dir, segment_file_name(base_offset, SegmentFileKind::kTimeIndex)),
                           base_offset);
  Status s = index.is_ok() ? env.sync_dir(dir) : index.status();
  if (!s.is_ok()) {
    // A half-made segment must not stay behind (e.g. the disk filled while
    // writing the index headers): the partition goes on appending to the old
    // segment, and an empty file at this base would later shadow those offsets.
    if (Status r = seg->remove_files(); !r.is_ok())
      log_warn("{}: removing it after a failed create: {}", seg->log_path_, r.message());
    return s;
  }
  seg->index_ = std::move(index).value();
  return seg;
}

Result<std::unique_ptr<Segment>> Segment::open(io::Env& env, const std::string& dir, int64_t base_offset,
                                               uint32_t index_interval_bytes, RecoveryReport* report) {
  std::unique_ptr<Segment> seg(new Segment(env, dir, base_offset, index_interval_bytes));
  report->file = seg->log_path_;
  EVERT_ASSIGN_OR_RETURN(auto file, env.open_file(seg->log_path_, io::OpenMode::kReadWrite));
  seg->log_file_ = std::move(file);
  EVERT_ASSIGN_OR_RETURN(uint64_t size, seg->log_file_->size_bytes());
  auto loaded = SegmentIndex::load(env, io::join_path(dir, segment_file_name(base_offset, SegmentFileKind::kOffsetIndex)),
                                   io::join_path(dir, segment_file_name(base_offset, SegmentFileKind::kTimeIndex)),
                                   base_offset, size);
  if (!loaded.is_ok()) {
    log_warn("rebuilding index of {}: {}", seg->log_path_, loaded.status().message());
    report->index_rebuilt = true;
    EVERT_RETURN_IF_ERROR(seg->recover(report));
    return seg;
  }
  seg->index_ = std::move(loaded).value();
  bool damaged = false;
  EVERT_RETURN_IF_ERROR(seg->find_end_trusting_index(&damaged));
  if (damaged) {
    report->index_rebuilt = true;
    EVERT_RETURN_IF_ERROR(seg->recover(report));
  }
  report->valid_bytes = seg->size_bytes();
  return seg;
}

Result<std::unique_ptr<Segment>> Segment::open_and_recover(io::Env& env, const std::string& dir,
                                                           int64_t base_offset, uint32_t index_interval_bytes,
                                                           RecoveryReport* report) {
  std::unique_ptr<Segment> seg(new Segment(env, dir, base_offset, index_interval_bytes));
  report->file = seg->log_path_;
  EVERT_ASSIGN_OR_RETURN(auto file, env.open_file(seg->log_path_, io::OpenMode::kReadWrite));
  seg->log_file_ = std::move(file);
  EVERT_RETURN_IF_ERROR(seg->recover(report));
  return seg;
}

Status Segment::find_end_trusting_index(bool* damaged) {
  EVERT_ASSIGN_OR_RETURN(uint64_t size, log_file_->size_bytes());
  auto last = index_->last_offset_entry();
  auto times = index_->time_entries();
  // A time entry bounds only the records before it, and the time index is
  // never synced: after a power cut it may hold fewer entries than the offset
  // index. So the scan starts at the last time entry's batch (read_index_files
  // checked that the offset index names it), not at the last offset entry.
  uint64_t start = 0;
  int64_t min_offset = base_offset_;
  if (!times.empty()) {
    max_timestamp_ = times.back().timestamp;
    min_offset = base_offset_ + times.back().relative_offset;
    start = index_->lookup_position(min_offset);
  }
  bytes_since_index_ = 0;
  bool first = true;
  bool last_entry_seen = !last;
  bool mismatch = false;  // an index entry names a batch start with other offsets: rebuild
  auto scanned = scan_batches(*log_file_, start, size, false, min_offset,
                              [&](uint64_t pos, const BatchHeader& h, ByteSpan) {
                                bool at_last_entry = last && pos == last->position;
                                if ((first && h.base_offset != min_offset) ||
                                    (at_last_entry && h.base_offset != base_offset_ + last->relative_offset)) {
                                  mismatch = true;
                                  return error(ErrorCode::kCorruption, "index entry does not match batch");
                                }
                                first = false;
                                if (at_last_entry) {
                                  last_entry_seen = true;
                                  bytes_since_index_ = 0;
                                }
                                bytes_since_index_ += h.total_size();
                                note_batch(pos + h.total_size(), h.last_offset(), h.max_timestamp);
                                return Status::ok();
                              });
  if (mismatch) {
    log_warn("{}: index entry does not match the batch it names; validating the whole segment", log_path_);
    *damaged = true;
    return Status::ok();
  }
  EVERT_ASSIGN_OR_RETURN(auto damage, std::move(scanned));
  if (damage) {
    log_warn("{}: damaged bytes at position {} ({}); validating the whole segment", log_path_, damage->position,
             damage->reason);
    *damaged = true;
    return Status::ok();
  }
  if (!last_entry_seen) *damaged = true;  // the last indexed batch is missing or not a batch start
  if (size > 0) {
    EVERT_ASSIGN_OR_RETURN(BatchHeader h, read_header_prefix(*log_file_, 0, kTimestampsPrefix));
    first_batch_timestamp_ = h.max_timestamp;
  }
  return Status::ok();
}

Status Segment::recover(RecoveryReport* report) {
  EVERT_ASSIGN_OR_RETURN(
      index_, SegmentIndex::create(env_, io::join_path(dir_, segment_file_name(base_offset_, SegmentFileKind::kOffsetIndex)),
                                   io::join_path(dir_, segment_file_name(base_offset_, SegmentFileKind::kTimeIndex)),
                                   base_offset_));
  size_bytes_ = 0;
  next_offset_ = base_offset_;
  max_timestamp_ = -1;
  first_batch_timestamp_ = -1;
  bytes_since_index_ = 0;
  EVERT_ASSIGN_OR_RETURN(uint64_t size, log_file_->size_bytes());
  // The first batch must start at the offset the file is named after.
  std::optional<int64_t> misplaced_first;
  auto visit = [&](uint64_t pos, const BatchHeader& h, ByteSpan) {
    if (pos == 0 && h.base_offset != base_offset_) {
      misplaced_first = h.base_offset;
      return error(ErrorCode::kCorruption, "first batch not at the segment's base offset");
    }
    EVERT_RETURN_IF_ERROR(index_batch(pos, h));
    if (pos == 0) first_batch_timestamp_ = h.max_timestamp;
    note_batch(pos + h.total_size(), h.last_offset(), h.max_timestamp);
    return Status::ok();
  };
  auto scanned = scan_batches(*log_file_, 0, size, true, base_offset_, visit);
  std::optional<Damage> damage;
  if (misplaced_first) {
    damage = Damage{0, fmt::format("base offset {} is not the segment's {}", *misplaced_first, base_offset_)};
  } else {
    EVERT_ASSIGN_OR_RETURN(damage, std::move(scanned));
  }
  report->valid_bytes = size_bytes();
  if (!damage) return Status::ok();
  report->damage = damage;
  EVERT_ASSIGN_OR_RETURN(auto resume, find_next_valid_batch(*log_file_, damage->position + 1, size, next_offset()));
  if (resume) {
    EVERT_RETURN_IF_ERROR(split_after_damage(damage->position, *resume, report));
    log_error("{}: damaged bytes [{}, {}) ({}); kept in {}, valid batches after them moved to a new segment at offset {}",
              log_path_, damage->position, *resume, damage->reason, damaged_file_name(base_offset_, damage->position),
              *report->split_base_offset);
  } else {
    log_warn("{}: truncating {} bytes at position {}: {}", log_path_, size - damage->position, damage->position,
             damage->reason);
  }
  report->truncated_bytes = size - damage->position;
  EVERT_RETURN_IF_ERROR(log_file_->truncate(damage->position));
  return log_file_->sync_data();
}

Status Segment::split_after_damage(uint64_t damage_pos, uint64_t resume_pos, RecoveryReport* report) {
  EVERT_ASSIGN_OR_RETURN(uint64_t size, log_file_->size_bytes());
  std::vector<uint8_t> tail(size - resume_pos);
  EVERT_ASSIGN_OR_RETURN(size_t n, log_file_->read_at(resume_pos, MutableByteSpan(tail.data(), tail.size())));
  EVERT_CHECK(n == tail.size());
  int64_t new_base = decode_batch_header(ByteSpan(tail.data(), L::kHeaderSize)).base_offset;
  // The new segment must be durable before the old one loses the bytes.
  std::string new_path = io::join_path(dir_, segment_file_name(new_base, SegmentFileKind::kLog));
  {
    EVERT_ASSIGN_OR_RETURN(auto f, env_.open_file(new_path + ".tmp", io::OpenMode::kCreateReadWrite));
    EVERT_RETURN_IF_ERROR(f->truncate(0));
    EVERT_RETURN_IF_ERROR(f->write_at(0, ByteSpan(tail.data(), tail.size())));
    EVERT_RETURN_IF_ERROR(f->sync_data());
  }
  // Stale indexes of a previous attempt must not be trusted.
  for (auto kind : {SegmentFileKind::kOffsetIndex, SegmentFileKind::kTimeIndex}) {
    std::string p = io::join_path(dir_, segment_file_name(new_base, kind));
    if (env_.file_exists(p)) EVERT_RETURN_IF_ERROR(env_.remove_file(p));
  }
  EVERT_RETURN_IF_ERROR(env_.rename(new_path + ".tmp", new_path));
  {
    std::vector<uint8_t> damaged(resume_pos - damage_pos);
    EVERT_ASSIGN_OR_RETURN(size_t m, log_file_->read_at(damage_pos, MutableByteSpan(damaged.data(), damaged.size())));
    EVERT_CHECK(m == damaged.size());
    EVERT_ASSIGN_OR_RETURN(auto f, env_.open_file(io::join_path(dir_, damaged_file_name(base_offset_, damage_pos)),
                                                  io::OpenMode::kCreateReadWrite));
    EVERT_RETURN_IF_ERROR(f->truncate(0));
    EVERT_RETURN_IF_ERROR(f->write_at(0, ByteSpan(damaged.data(), damaged.size())));
    EVERT_RETURN_IF_ERROR(f->sync_data());
  }
  EVERT_RETURN_IF_ERROR(env_.sync_dir(dir_));
  report->split_base_offset = new_base;
  return Status::ok();
}

Status Segment::index_batch(uint64_t position, const BatchHeader& header) {
  if (position > 0 && bytes_since_index_ >= index_interval_bytes_) {
    EVERT_RETURN_IF_ERROR(index_->add(header.base_offset, uint32_t(position), max_timestamp()));
    bytes_since_index_ = 0;
  }
  bytes_since_index_ += header.total_size();
  return Status::ok();
}

void Segment::note_batch(uint64_t end_position, int64_t last_offset, int64_t max_timestamp) {
  if (max_timestamp > max_timestamp_.load(std::memory_order_relaxed))
    max_timestamp_.store(max_timestamp, std::memory_order_release);
  next_offset_.store(last_offset + 1, std::memory_order_release);
  size_bytes_.store(end_position, std::memory_order_release);
}

Status Segment::append(ByteSpan data, std::span<const BatchInfo> batches) {
  EVERT_CHECK(!batches.empty());
  EVERT_CHECK(batches.front().base_offset >= next_offset());
  uint64_t start = size_bytes_.load(std::memory_order_relaxed);
  EVERT_CHECK(start + data.size() <= UINT32_MAX);
  if (Status s = log_file_->write_at(start, data); !s.is_ok()) {
    // Leave no partial batch behind for recovery to misread later.
    Status t = log_file_->truncate(start);
    if (!t.is_ok()) {
      broken_ = true;
      return s.with_context("append failed and the file could not be trimmed back (" + t.message() + ")");
    }
    return s;
  }
  if (start == 0) first_batch_timestamp_.store(batches.front().max_timestamp, std::memory_order_release);
  for (const BatchInfo& b : batches) {
    BatchHeader h;
    h.base_offset = b.base_offset;
    h.batch_length = int32_t(b.size_bytes - L::kLengthPrefix);
    // The batch is written; a missing index entry only makes lookups scan a
    // little further, and a partly written one is rebuilt on open. Failing
    // here would leave the index holding an entry for a batch the segment
    // does not count, which breaks the next append.
    if (Status s = index_batch(start + b.position_in_buffer, h); !s.is_ok())
      log_warn("{}: no index entry for offset {}: {}", log_path_, b.base_offset, s.message());
    note_batch(start + b.position_in_buffer + b.size_bytes, b.last_offset, b.max_timestamp);
  }
  return Status::ok();
}

Result<std::optional<FileSlice>> Segment::read(int64_t offset, uint64_t max_bytes) const {
  uint64_t end = size_bytes();
  if (offset >= next_offset()) return std::optional<FileSlice>();
  uint64_t pos = index_->lookup_position(offset);
  while (pos < end) {
    EVERT_ASSIGN_OR_RETURN(BatchHeader h, read_header_prefix(*log_file_, pos, kOffsetsPrefix));
    if (h.batch_length <= 0 || pos + h.total_size() > end)
      return error(ErrorCode::kCorruption, fmt::format("{}: bad batch at position {}", log_path_, pos));
    if (h.last_offset() >= offset) {
      uint64_t size = std::min<uint64_t>(end - pos, std::max<uint64_t>(max_bytes, h.total_size()));
      return std::optional<FileSlice>(FileSlice{log_file_, pos, size});
    }
    pos += h.total_size();
  }
  return std::optional<FileSlice>();
}

Result<std::optional<int64_t>> Segment::offset_for_timestamp(int64_t target) const {
  if (max_timestamp() < target) return std::optional<int64_t>();
  uint64_t end = size_bytes();
  auto [start_offset, pos64] = index_->lookup_time(target);
  (void)start_offset;
  uint64_t pos = pos64;
  while (pos < end) {
    EVERT_ASSIGN_OR_RETURN(BatchHeader h, read_header_prefix(*log_file_, pos, kTimestampsPrefix));
    if (h.batch_length <= 0 || pos + h.total_size() > end)
      return error(ErrorCode::kCorruption, fmt::format("{}: bad batch at position {}", log_path_, pos));
    if (h.max_timestamp >= target) {
      std::vector<uint8_t> batch(h.total_size());
      EVERT_ASSIGN_OR_RETURN(size_t n, log_file_->read_at(pos, MutableByteSpan(batch.data(), batch.size())));
      if (n != batch.size()) return error(ErrorCode::kCorruption, "short read");
      std::string inflated;
      EVERT_ASSIGN_OR_RETURN(auto records, decode_records(ByteSpan(batch.data(), batch.size()), &inflated));
      for (const Record& r : records)
        if (r.timestamp >= target) return std::optional<int64_t>(r.offset);
      return std::optional<int64_t>(h.base_offset);  // max_timestamp disagrees with the records
    }
    pos += h.total_size();
  }
  return std::optional<int64_t>();
}

Status Segment::remove_files() {
  for (auto kind : {SegmentFileKind::kLog, SegmentFileKind::kOffsetIndex, SegmentFileKind::kTimeIndex}) {
    std::string p = io::join_path(dir_, segment_file_name(base_offset_, kind));
    if (env_.file_exists(p)) EVERT_RETURN_IF_ERROR(env_.remove_file(p));
  }
  return Status::ok();
}

}  // namespace evert::log
