// A segment: one .log file of RecordBatch v2 batches plus its two indexes.
//
// Threading: one appender at a time (the owning Partition serializes
// appends); any number of concurrent readers. Readers see a batch only after
// it has been completely written and indexed (size_bytes() is published last).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "base/status.h"
#include "io/env.h"
#include "io/file_range.h"
#include "log/offset_index.h"
#include "log/record_batch.h"

namespace evert::log {

// A byte range of a segment file that can be sent as is (e.g. sendfile).
// Holding it keeps the file open even if retention deletes the segment.
using FileSlice = io::FileRange;

// What the appender knows about one batch inside the bytes it appends.
struct BatchInfo {
  uint32_t position_in_buffer = 0;
  uint32_t size_bytes = 0;
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  int64_t max_timestamp = 0;
};

// Where a scan stopped because bytes failed validation.
struct Damage {
  uint64_t position = 0;
  std::string reason;
};

// Walks the batches of [start, end) of a file front to back in large reads.
// Stops at the first batch that fails validation (length, magic, a first
// base offset below `min_base_offset` or a later one that does not follow
// its predecessor, CRC when `verify_crc`) and returns where.
// `visit` sees every valid batch, whole.
using BatchVisitor = std::function<Status(uint64_t position, const BatchHeader& header, ByteSpan batch)>;
Result<std::optional<Damage>> scan_batches(const io::File& file, uint64_t start, uint64_t end, bool verify_crc,
                                           int64_t min_base_offset, const BatchVisitor& visit);

// Searches [from, end) for the first position where a valid batch (CRC
// included) with base offset >= min_base_offset starts; used to skip a
// damaged range in the middle of a segment.
Result<std::optional<uint64_t>> find_next_valid_batch(const io::File& file, uint64_t from, uint64_t end,
                                                      int64_t min_base_offset);

struct RecoveryReport {
  std::string file;
  uint64_t valid_bytes = 0;
  uint64_t truncated_bytes = 0;  // torn tail or damaged range removed from this file
  std::optional<Damage> damage;
  // When valid batches followed the damage, they were moved to a new segment
  // starting at this offset, and the damaged bytes kept in a .damaged file.
  std::optional<int64_t> split_base_offset;
  bool index_rebuilt = false;
};

class Segment {
 public:
  static Result<std::unique_ptr<Segment>> create(io::Env& env, const std::string& dir, int64_t base_offset,
                                                 uint32_t index_interval_bytes);
  // Opens an existing segment trusting its batches: loads the index (or
  // rebuilds it by walking headers) and finds the end. Falls back to
  // recover() when the walk meets damaged bytes.
  static Result<std::unique_ptr<Segment>> open(io::Env& env, const std::string& dir, int64_t base_offset,
                                               uint32_t index_interval_bytes, RecoveryReport* report);
  // Opens and validates every batch (CRC included), rebuilds the index,
  // truncates a torn tail and splits off valid data after a damaged range.
  static Result<std::unique_ptr<Segment>> open_and_recover(io::Env& env, const std::string& dir,
                                                           int64_t base_offset, uint32_t index_interval_bytes,
                                                           RecoveryReport* report);

  // Appends whole batches whose base offsets are already assigned.
  // Precondition: batches[i] follow next_offset() in order.
  Status append(ByteSpan data, std::span<const BatchInfo> batches);

  // The slice starting at the batch that contains `offset`, at most
  // `max_bytes` long but always holding that whole first batch (it may end
  // with a partial batch, as Kafka's fetch does). nullopt when the segment
  // has nothing at or after `offset`.
  Result<std::optional<FileSlice>> read(int64_t offset, uint64_t max_bytes) const;

  // The offset of the first record whose timestamp >= target, or nullopt.
  Result<std::optional<int64_t>> offset_for_timestamp(int64_t target_timestamp) const;

  Status sync() { return log_file_->sync_data(); }
  Status sync_index() { return index_->sync(); }
  // Deletes the segment's files; open slices stay readable.
  Status remove_files();

  int64_t base_offset() const { return base_offset_; }
  // One past the last offset stored (== base_offset() when empty).
  int64_t next_offset() const { return next_offset_.load(std::memory_order_acquire); }
  uint64_t size_bytes() const { return size_bytes_.load(std::memory_order_acquire); }
  // Largest record timestamp, or -1 when empty.
  int64_t max_timestamp() const { return max_timestamp_.load(std::memory_order_acquire); }
  // max_timestamp of the first batch, or -1 when empty (drives segment.ms).
  int64_t first_batch_timestamp() const { return first_batch_timestamp_.load(std::memory_order_acquire); }
  const std::string& log_path() const { return log_path_; }
  // True after a failed append could not be trimmed back: the file holds
  // bytes of unknown state and must not be appended to again.
  bool broken() const { return broken_.load(std::memory_order_acquire); }
  const SegmentIndex& index() const { return *index_; }
  std::shared_ptr<io::File> log_file() const { return log_file_; }

 private:
  Segment(io::Env& env, std::string dir, int64_t base_offset, uint32_t index_interval_bytes);
  Status recover(RecoveryReport* report);
  Status find_end_trusting_index(bool* damaged);
  Status split_after_damage(uint64_t damage_pos, uint64_t resume_pos, RecoveryReport* report);
  // Adds index entries for a batch about to land at `position`.
  Status index_batch(uint64_t position, const BatchHeader& header);
  void note_batch(uint64_t end_position, int64_t last_offset, int64_t max_timestamp);

  io::Env& env_;
  const std::string dir_;
  const int64_t base_offset_;
  const uint32_t index_interval_bytes_;
  const std::string log_path_;
  std::shared_ptr<io::File> log_file_;
  std::unique_ptr<SegmentIndex> index_;
  uint64_t bytes_since_index_ = 0;  // appender only
  std::atomic<uint64_t> size_bytes_{0};
  std::atomic<int64_t> next_offset_;
  std::atomic<int64_t> max_timestamp_{-1};
  std::atomic<int64_t> first_batch_timestamp_{-1};
  std::atomic<bool> broken_{false};
};

}  // namespace evert::log
