// The sparse offset index and time index of a segment, byte by byte.
//
// Both are derived data: a missing or damaged index is rebuilt from the
// segment, so they are written without fsync. Every file starts with a
// 16-byte header, then fixed-size big-endian entries:
//
//   header: pos 0 u32 magic ('EVOI' offset index, 'EVTI' time index)
//           pos 4 u16 format version (1)
//           pos 6 u16 entry size in bytes
//           pos 8 i64 base offset of the segment
//   offset index entry (8 bytes):  u32 offset - base, u32 byte position in the .log
//   time index entry  (12 bytes):  i64 timestamp, u32 offset - base
//
// An offset entry (o, p) says: the batch starting at byte p has base offset
// base+o. A time entry (t, o) says: every record before offset base+o has a
// timestamp <= t. Entries are strictly increasing in o (and p; t is
// non-decreasing), one pair per `index_interval_bytes` of log.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "io/env.h"

namespace evert::log {

namespace index_layout {
inline constexpr uint32_t kOffsetIndexMagic = 0x45564F49;  // "EVOI"
inline constexpr uint32_t kTimeIndexMagic = 0x45565449;    // "EVTI"
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kOffsetEntrySize = 8;
inline constexpr size_t kTimeEntrySize = 12;
}  // namespace index_layout

struct OffsetIndexEntry {
  uint32_t relative_offset;
  uint32_t position;
};

struct TimeIndexEntry {
  int64_t timestamp;
  uint32_t relative_offset;
};

struct IndexEntries {
  std::vector<OffsetIndexEntry> offsets;
  std::vector<TimeIndexEntry> times;
};
// Reads and checks both index files without opening them for writing.
// kCorruption/kNotFound when missing, with a bad header, or with entries that
// are not increasing or point past `segment_size_bytes`.
Result<IndexEntries> read_index_files(io::Env& env, const std::string& offset_path, const std::string& time_path,
                                      int64_t base_offset, uint64_t segment_size_bytes);

// Both indexes of one segment. Thread-safe: one appender, many readers.
class SegmentIndex {
 public:
  // Creates empty index files (truncating any old ones).
  static Result<std::unique_ptr<SegmentIndex>> create(io::Env& env, const std::string& offset_path,
                                                      const std::string& time_path, int64_t base_offset);
  // Loads existing files. Fails with kCorruption/kNotFound when they are
  // missing, have a bad header, or entries that are not increasing or that
  // point past `segment_size_bytes`; the caller then rebuilds.
  static Result<std::unique_ptr<SegmentIndex>> load(io::Env& env, const std::string& offset_path,
                                                    const std::string& time_path, int64_t base_offset,
                                                    uint64_t segment_size_bytes);

  // Appends an entry pair for the batch at `position` with base offset
  // `offset`; `max_timestamp_before` is the largest timestamp of all records
  // before it in the segment.
  Status add(int64_t offset, uint32_t position, int64_t max_timestamp_before);

  // The position of the last indexed batch whose base offset <= offset (0 if none).
  uint32_t lookup_position(int64_t offset) const;
  // The entry to start scanning from for the first record with timestamp >=
  // target: the last entry whose timestamp < target, as (offset, position).
  std::pair<int64_t, uint32_t> lookup_time(int64_t target_timestamp) const;
  // Drops entries at or after `position` (after a truncation) and rewrites
  // the files to match.
  Status truncate_to_position(uint64_t position);

  // fdatasyncs both index files (at roll and clean close: a closed
  // segment's index is trusted on open, so it must be whole on disk).
  Status sync();

  size_t entry_count() const;
  std::optional<OffsetIndexEntry> last_offset_entry() const;
  std::vector<OffsetIndexEntry> offset_entries() const;
  std::vector<TimeIndexEntry> time_entries() const;
  int64_t base_offset() const { return base_offset_; }

 private:
  SegmentIndex(std::unique_ptr<io::File> offset_file, std::unique_ptr<io::File> time_file, int64_t base_offset)
      : offset_file_(std::move(offset_file)), time_file_(std::move(time_file)), base_offset_(base_offset) {}
  Status rewrite_files();

  std::unique_ptr<io::File> offset_file_;
  std::unique_ptr<io::File> time_file_;
  const int64_t base_offset_;
  mutable std::mutex mu_;  // guards the vectors below
  std::vector<OffsetIndexEntry> offsets_;
  std::vector<TimeIndexEntry> times_;
};

}  // namespace evert::log
