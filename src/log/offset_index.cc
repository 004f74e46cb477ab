#include "log/offset_index.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/assert.h"
#include "base/bytes.h"

namespace evert::log {
namespace X = index_layout;
namespace {

std::string encode_header(uint32_t magic, uint16_t entry_size, int64_t base_offset) {
  std::string h(X::kHeaderSize, '\0');
  auto* p = reinterpret_cast<uint8_t*>(h.data());
  store_be32(p, magic);
  store_be16(p + 4, X::kVersion);
  store_be16(p + 6, entry_size);
  store_be64(p + 8, uint64_t(base_offset));
  return h;
}

Status check_header(const std::string& data, uint32_t magic, uint16_t entry_size, int64_t base_offset,
                    const std::string& path) {
  if (data.size() < X::kHeaderSize) return error(ErrorCode::kCorruption, path + ": shorter than its header");
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  if (load_be32(p) != magic) return error(ErrorCode::kCorruption, path + ": bad magic");
  if (load_be16(p + 4) != X::kVersion)
    return error(ErrorCode::kUnsupported, fmt::format("{}: index version {}", path, load_be16(p + 4)));
  if (load_be16(p + 6) != entry_size) return error(ErrorCode::kCorruption, path + ": bad entry size");
  if (int64_t(load_be64(p + 8)) != base_offset) return error(ErrorCode::kCorruption, path + ": wrong base offset");
  if ((data.size() - X::kHeaderSize) % entry_size != 0)
    return error(ErrorCode::kCorruption, path + ": partial trailing entry");
  return Status::ok();
}

std::string encode_offset_entry(const OffsetIndexEntry& e) {
  std::string s(X::kOffsetEntrySize, '\0');
  auto* p = reinterpret_cast<uint8_t*>(s.data());
  store_be32(p, e.relative_offset);
  store_be32(p + 4, e.position);
  return s;
}

std::string encode_time_entry(const TimeIndexEntry& e) {
  std::string s(X::kTimeEntrySize, '\0');
  auto* p = reinterpret_cast<uint8_t*>(s.data());
  store_be64(p, uint64_t(e.timestamp));
  store_be32(p + 8, e.relative_offset);
  return s;
}

}  // namespace

Result<std::unique_ptr<SegmentIndex>> SegmentIndex::create(io::Env& env, const std::string& offset_path,
                                                           const std::string& time_path, int64_t base_offset) {
  EVERT_ASSIGN_OR_RETURN(auto ofile, env.open_file(offset_path, io::OpenMode::kCreateReadWrite));
  EVERT_ASSIGN_OR_RETURN(auto tfile, env.open_file(time_path, io::OpenMode::kCreateReadWrite));
  std::unique_ptr<SegmentIndex> index(new SegmentIndex(std::move(ofile), std::move(tfile), base_offset));
  EVERT_RETURN_IF_ERROR(index->rewrite_files());
  return index;
}

Result<IndexEntries> read_index_files(io::Env& env, const std::string& offset_path, const std::string& time_path,
                                      int64_t base_offset, uint64_t segment_size_bytes) {
  EVERT_ASSIGN_OR_RETURN(std::string odata, io::read_whole_file(env, offset_path));
  EVERT_ASSIGN_OR_RETURN(std::string tdata, io::read_whole_file(env, time_path));
  EVERT_RETURN_IF_ERROR(check_header(odata, X::kOffsetIndexMagic, X::kOffsetEntrySize, base_offset, offset_path));
  EVERT_RETURN_IF_ERROR(check_header(tdata, X::kTimeIndexMagic, X::kTimeEntrySize, base_offset, time_path));
  std::vector<OffsetIndexEntry> offsets;
  const auto* op = reinterpret_cast<const uint8_t*>(odata.data());
  for (size_t pos = X::kHeaderSize; pos < odata.size(); pos += X::kOffsetEntrySize) {
    OffsetIndexEntry e{load_be32(op + pos), load_be32(op + pos + 4)};
    bool increasing = offsets.empty() || (e.relative_offset > offsets.back().relative_offset &&
                                          e.position > offsets.back().position);
    if (!increasing || e.position >= segment_size_bytes)
      return error(ErrorCode::kCorruption, fmt::format("{}: entry {} out of order or past the segment end",
                                                       offset_path, offsets.size()));
    offsets.push_back(e);
  }
  std::vector<TimeIndexEntry> times;
  const auto* tp = reinterpret_cast<const uint8_t*>(tdata.data());
  for (size_t pos = X::kHeaderSize; pos < tdata.size(); pos += X::kTimeEntrySize) {
    TimeIndexEntry e{int64_t(load_be64(tp + pos)), load_be32(tp + pos + 8)};
    bool increasing = times.empty() || (e.relative_offset > times.back().relative_offset &&
                                        e.timestamp >= times.back().timestamp);
    if (!increasing) return error(ErrorCode::kCorruption, fmt::format("{}: entry {} out of order", time_path, times.size()));
    times.push_back(e);
  }
  // Every time entry must name a batch the offset index knows (lookup_time relies on it).
  size_t oi = 0;
  for (const auto& te : times) {
    while (oi < offsets.size() && offsets[oi].relative_offset < te.relative_offset) ++oi;
    if (oi == offsets.size() || offsets[oi].relative_offset != te.relative_offset)
      return error(ErrorCode::kCorruption, time_path + ": entry names an offset the offset index lacks");
  }
  return IndexEntries{std::move(offsets), std::move(times)};
}

Result<std::unique_ptr<SegmentIndex>> SegmentIndex::load(io::Env& env, const std::string& offset_path,
                                                         const std::string& time_path, int64_t base_offset,
                                                         uint64_t segment_size_bytes) {
  EVERT_ASSIGN_OR_RETURN(IndexEntries entries,
                         read_index_files(env, offset_path, time_path, base_offset, segment_size_bytes));
  EVERT_ASSIGN_OR_RETURN(auto ofile, env.open_file(offset_path, io::OpenMode::kReadWrite));
  EVERT_ASSIGN_OR_RETURN(auto tfile, env.open_file(time_path, io::OpenMode::kReadWrite));
  std::unique_ptr<SegmentIndex> index(new SegmentIndex(std::move(ofile), std::move(tfile), base_offset));
  index->offsets_ = std::move(entries.offsets);
  index->times_ = std::move(entries.times);
  return index;
}

Status SegmentIndex::add(int64_t offset, uint32_t position, int64_t max_timestamp_before) {
  EVERT_CHECK(offset >= base_offset_ && offset - base_offset_ <= int64_t(UINT32_MAX));
  OffsetIndexEntry oe{uint32_t(offset - base_offset_), position};
  std::lock_guard lock(mu_);
  EVERT_CHECK(offsets_.empty() || (oe.relative_offset > offsets_.back().relative_offset &&
                                   oe.position > offsets_.back().position));
  EVERT_RETURN_IF_ERROR(offset_file_->write_at(X::kHeaderSize + offsets_.size() * X::kOffsetEntrySize,
                                               as_bytes(encode_offset_entry(oe))));
  offsets_.push_back(oe);
  if (times_.empty() || max_timestamp_before > times_.back().timestamp) {
    TimeIndexEntry te{max_timestamp_before, oe.relative_offset};
    EVERT_RETURN_IF_ERROR(time_file_->write_at(X::kHeaderSize + times_.size() * X::kTimeEntrySize,
                                               as_bytes(encode_time_entry(te))));
    times_.push_back(te);
  }
  return Status::ok();
}

uint32_t SegmentIndex::lookup_position(int64_t offset) const {
  if (offset < base_offset_) return 0;
  int64_t rel = offset - base_offset_;
  std::lock_guard lock(mu_);
  auto it = std::upper_bound(offsets_.begin(), offsets_.end(), rel,
                             [](int64_t r, const OffsetIndexEntry& e) { return r < int64_t(e.relative_offset); });
  if (it == offsets_.begin()) return 0;
  return std::prev(it)->position;
}

std::pair<int64_t, uint32_t> SegmentIndex::lookup_time(int64_t target_timestamp) const {
  std::lock_guard lock(mu_);
  // Last time entry with timestamp < target: all records before its offset are too old.
  auto it = std::lower_bound(times_.begin(), times_.end(), target_timestamp,
                             [](const TimeIndexEntry& e, int64_t t) { return e.timestamp < t; });
  if (it == times_.begin()) return {base_offset_, 0};
  uint32_t rel = std::prev(it)->relative_offset;
  auto oit = std::lower_bound(offsets_.begin(), offsets_.end(), rel,
                              [](const OffsetIndexEntry& e, uint32_t r) { return e.relative_offset < r; });
  EVERT_CHECK(oit != offsets_.end() && oit->relative_offset == rel);
  return {base_offset_ + rel, oit->position};
}

Status SegmentIndex::truncate_to_position(uint64_t position) {
  std::lock_guard lock(mu_);
  while (!offsets_.empty() && offsets_.back().position >= position) offsets_.pop_back();
  uint32_t max_rel = offsets_.empty() ? 0 : offsets_.back().relative_offset;
  while (!times_.empty() && (offsets_.empty() || times_.back().relative_offset > max_rel)) times_.pop_back();
  return rewrite_files();
}

Status SegmentIndex::rewrite_files() {
  std::string odata = encode_header(X::kOffsetIndexMagic, X::kOffsetEntrySize, base_offset_);
  for (const auto& e : offsets_) odata += encode_offset_entry(e);
  std::string tdata = encode_header(X::kTimeIndexMagic, X::kTimeEntrySize, base_offset_);
  for (const auto& e : times_) tdata += encode_time_entry(e);
  EVERT_RETURN_IF_ERROR(offset_file_->truncate(0));
  EVERT_RETURN_IF_ERROR(offset_file_->write_at(0, as_bytes(odata)));
  EVERT_RETURN_IF_ERROR(time_file_->truncate(0));
  return time_file_->write_at(0, as_bytes(tdata));
}

Status SegmentIndex::sync() {
  EVERT_RETURN_IF_ERROR(offset_file_->sync_data());
  return time_file_->sync_data();
}

size_t SegmentIndex::entry_count() const {
  std::lock_guard lock(mu_);
  return offsets_.size();
}

std::optional<OffsetIndexEntry> SegmentIndex::last_offset_entry() const {
  std::lock_guard lock(mu_);
  if (offsets_.empty()) return std::nullopt;
  return offsets_.back();
}

std::vector<OffsetIndexEntry> SegmentIndex::offset_entries() const {
  std::lock_guard lock(mu_);
  return offsets_;
}

std::vector<TimeIndexEntry> SegmentIndex::time_entries() const {
  std::lock_guard lock(mu_);
  return times_;
}

}  // namespace evert::log
