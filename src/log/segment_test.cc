#include "log/segment.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "log/file_names.h"
#include "log/log_test_util.h"
#include "testing/mem_env.h"

namespace evert::log {
namespace {

namespace L = batch_layout;
using evert::testing::MemEnv;
using test::build_batch;
using test::decode_batches;
using test::mutable_bytes;
using test::slice_bytes;
using test::TestRecord;

constexpr int64_t kBase = 100;
constexpr uint32_t kIndexInterval = 256;
const std::string kDir = "/seg";

// One appended batch as the test remembers it.
struct Placed {
  uint64_t position;
  uint32_t size;
  int64_t base_offset;
  int64_t last_offset;
  std::vector<TestRecord> records;
};

class SegmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(io::create_dirs(env_, kDir).is_ok());
    auto seg = Segment::create(env_, kDir, kBase, kIndexInterval);
    ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
    seg_ = std::move(seg).value();
  }

  std::string path(SegmentFileKind kind, int64_t base = kBase) const {
    return io::join_path(kDir, segment_file_name(base, kind));
  }

  // Records i..i+count-1 of a deterministic stream: timestamps go up by 10
  // per record except that every fifth record is 1000 ms "late"; or all at
  // fixed_timestamp_ when that is set.
  std::vector<TestRecord> make_records(int64_t first, int count) const {
    std::vector<TestRecord> out;
    for (int64_t o = first; o < first + count; ++o) {
      TestRecord r;
      r.offset = o;
      r.key = "key" + std::to_string(o);
      r.value = std::string(20 + size_t(o % 7), char('a' + o % 26));
      r.timestamp = fixed_timestamp_ ? *fixed_timestamp_ : 10'000 + o * 10 - (o % 5 == 4 ? 1000 : 0);
      out.push_back(std::move(r));
    }
    return out;
  }

  // Appends `counts.size()` batches in one call, as Partition would.
  Status append(const std::vector<int>& counts) {
    std::string data;
    std::vector<BatchInfo> infos;
    int64_t next = seg_->next_offset();
    for (int count : counts) {
      auto records = make_records(next, count);
      std::string batch = build_batch(records);
      set_base_offset(mutable_bytes(batch), next);
      BatchHeader h = decode_batch_header(as_bytes(batch));
      infos.push_back(BatchInfo{uint32_t(data.size()), h.total_size(), next, h.last_offset(), h.max_timestamp});
      placed_.push_back(Placed{seg_->size_bytes() + data.size(), h.total_size(), next, h.last_offset(), records});
      data += batch;
      next = h.last_offset() + 1;
    }
    Status s = seg_->append(as_bytes(data), infos);
    if (!s.is_ok()) placed_.resize(placed_.size() - counts.size());
    return s;
  }

  void fill(int batches) {
    for (int i = 0; i < batches; ++i) ASSERT_TRUE(append({1 + i % 4}).is_ok());
  }

  std::vector<TestRecord> all_records() const {
    std::vector<TestRecord> out;
    for (const auto& p : placed_) out.insert(out.end(), p.records.begin(), p.records.end());
    return out;
  }

  // Reads everything of `seg` from its base with fetches of `max_bytes`.
  static std::vector<TestRecord> read_all(const Segment& seg, uint64_t max_bytes = 1 << 20) {
    std::vector<TestRecord> out;
    int64_t offset = seg.base_offset();
    while (true) {
      auto slice = seg.read(offset, max_bytes);
      EXPECT_TRUE(slice.is_ok()) << slice.status().to_string();
      if (!slice.is_ok() || !*slice) break;
      auto batches = decode_batches(slice_bytes(**slice));
      if (batches.empty()) break;
      for (const auto& b : batches) out.insert(out.end(), b.records.begin(), b.records.end());
      offset = batches.back().header.last_offset() + 1;
    }
    return out;
  }

  Result<std::unique_ptr<Segment>> reopen(RecoveryReport* report, bool recover = false) {
    seg_.reset();
    return recover ? Segment::open_and_recover(env_, kDir, kBase, kIndexInterval, report)
                   : Segment::open(env_, kDir, kBase, kIndexInterval, report);
  }

  MemEnv env_;
  std::unique_ptr<Segment> seg_;
  std::vector<Placed> placed_;
  std::optional<int64_t> fixed_timestamp_;
};

TEST_F(SegmentTest, CreateMakesThreeFiles) {
  EXPECT_TRUE(env_.file_exists(path(SegmentFileKind::kLog)));
  EXPECT_TRUE(env_.file_exists(path(SegmentFileKind::kOffsetIndex)));
  EXPECT_TRUE(env_.file_exists(path(SegmentFileKind::kTimeIndex)));
  EXPECT_EQ(seg_->base_offset(), kBase);
  EXPECT_EQ(seg_->next_offset(), kBase);
  EXPECT_EQ(seg_->size_bytes(), 0u);
  EXPECT_EQ(seg_->max_timestamp(), -1);
  EXPECT_EQ(seg_->first_batch_timestamp(), -1);
  EXPECT_EQ(seg_->log_path(), path(SegmentFileKind::kLog));
  // The files survive a crash: create syncs the directory.
  env_.crash();
  EXPECT_TRUE(env_.file_exists(path(SegmentFileKind::kLog)));
}

TEST_F(SegmentTest, CreateRefusesToOverwrite) {
  EXPECT_EQ(Segment::create(env_, kDir, kBase, kIndexInterval).status().code(), ErrorCode::kAlreadyExists);
}

TEST_F(SegmentTest, AppendThenReadBack) {
  fill(30);
  EXPECT_EQ(seg_->next_offset(), placed_.back().last_offset + 1);
  EXPECT_EQ(seg_->size_bytes(), placed_.back().position + placed_.back().size);
  EXPECT_EQ(*env_.file_size(path(SegmentFileKind::kLog)), seg_->size_bytes());
  EXPECT_EQ(read_all(*seg_), all_records());
}

TEST_F(SegmentTest, MultiBatchAppend) {
  ASSERT_TRUE(append({3, 1, 5}).is_ok());
  EXPECT_EQ(seg_->next_offset(), kBase + 9);
  EXPECT_EQ(read_all(*seg_), all_records());
}

TEST_F(SegmentTest, ReadStartsAtTheBatchHoldingTheOffset) {
  fill(30);
  for (const auto& p : placed_) {
    for (int64_t o = p.base_offset; o <= p.last_offset; ++o) {
      auto slice = seg_->read(o, 1);
      ASSERT_TRUE(slice.is_ok());
      ASSERT_TRUE(*slice) << "offset " << o;
      EXPECT_EQ((*slice)->position, p.position) << "offset " << o;
      EXPECT_EQ((*slice)->size_bytes, p.size) << "a short max_bytes still returns the whole batch";
    }
  }
  auto end = seg_->read(seg_->next_offset(), 1 << 20);
  ASSERT_TRUE(end.is_ok());
  EXPECT_FALSE(*end);
  auto before = seg_->read(0, 1 << 20);  // below the base: starts at the first batch
  ASSERT_TRUE(before.is_ok() && *before);
  EXPECT_EQ((*before)->position, 0u);
}

TEST_F(SegmentTest, ReadHonoursMaxBytesAfterTheFirstBatch) {
  fill(10);
  uint64_t two = placed_[0].size + placed_[1].size;
  auto exact = seg_->read(kBase, two);
  ASSERT_TRUE(exact.is_ok() && *exact);
  EXPECT_EQ((*exact)->size_bytes, two);
  bool partial = false;
  auto batches = decode_batches(slice_bytes(**exact), &partial);
  EXPECT_EQ(batches.size(), 2u);
  EXPECT_FALSE(partial);
  // A limit inside the second batch ends the slice with part of it, as Kafka does.
  auto cut = seg_->read(kBase, two - 5);
  ASSERT_TRUE(cut.is_ok() && *cut);
  EXPECT_EQ((*cut)->size_bytes, two - 5);
  batches = decode_batches(slice_bytes(**cut), &partial);
  EXPECT_EQ(batches.size(), 1u);
  EXPECT_TRUE(partial);
  // A limit past the end stops at the end.
  auto all = seg_->read(kBase, 1 << 30);
  ASSERT_TRUE(all.is_ok() && *all);
  EXPECT_EQ((*all)->size_bytes, seg_->size_bytes());
}

TEST_F(SegmentTest, IndexHasAnEntryPerIntervalAtBatchStarts) {
  fill(40);
  auto entries = seg_->index().offset_entries();
  ASSERT_GT(entries.size(), 3u);
  // Each entry names a batch start, and consecutive entries are at least one
  // interval apart (the interval counts from the previous entry).
  uint64_t last_pos = 0;
  for (const auto& e : entries) {
    bool found = false;
    for (const auto& p : placed_)
      if (p.position == e.position && p.base_offset == kBase + int64_t(e.relative_offset)) found = true;
    EXPECT_TRUE(found) << "entry (" << e.relative_offset << ", " << e.position << ")";
    EXPECT_GE(e.position - last_pos, kIndexInterval);
    EXPECT_LT(e.position - last_pos, kIndexInterval + 200);  // one batch past the interval at most
    last_pos = e.position;
  }
  EXPECT_LT(seg_->size_bytes() - last_pos, kIndexInterval + 200);
}

TEST_F(SegmentTest, TimestampsAreTracked) {
  fill(10);
  int64_t max_ts = -1;
  for (const auto& r : all_records()) max_ts = std::max(max_ts, r.timestamp);
  EXPECT_EQ(seg_->max_timestamp(), max_ts);
  EXPECT_EQ(seg_->first_batch_timestamp(), decode_batch_header(as_bytes(build_batch(placed_[0].records))).max_timestamp);
}

// The expected answer of offset_for_timestamp over a list of records.
std::optional<int64_t> first_at_or_after(const std::vector<TestRecord>& records, int64_t target) {
  for (const auto& r : records)
    if (r.timestamp >= target) return r.offset;
  return std::nullopt;
}

TEST_F(SegmentTest, OffsetForTimestampFindsTheFirstRecordAtOrAfter) {
  fill(40);
  auto records = all_records();
  int64_t lo = records.front().timestamp - 2000;
  int64_t hi = seg_->max_timestamp() + 5;
  for (int64_t target = lo; target <= hi; target += 7) {
    auto got = seg_->offset_for_timestamp(target);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_EQ(*got, first_at_or_after(records, target)) << "target " << target;
  }
  auto none = seg_->offset_for_timestamp(seg_->max_timestamp() + 1);
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(*none);
}

TEST_F(SegmentTest, OpenTrustsAGoodIndex) {
  fill(40);
  auto entries = seg_->index().offset_entries();
  int64_t next = seg_->next_offset();
  uint64_t size = seg_->size_bytes();
  int64_t max_ts = seg_->max_timestamp();
  int64_t first_ts = seg_->first_batch_timestamp();
  RecoveryReport report;
  auto seg = reopen(&report);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  EXPECT_FALSE(report.index_rebuilt);
  EXPECT_FALSE(report.damage);
  EXPECT_EQ(report.valid_bytes, size);
  EXPECT_EQ((*seg)->next_offset(), next);
  EXPECT_EQ((*seg)->size_bytes(), size);
  EXPECT_EQ((*seg)->max_timestamp(), max_ts);
  EXPECT_EQ((*seg)->first_batch_timestamp(), first_ts);
  EXPECT_EQ((*seg)->index().offset_entries().size(), entries.size());
  EXPECT_EQ(read_all(**seg), all_records());
  // Appending continues where it left off, and the index keeps its rhythm.
  seg_ = std::move(seg).value();
  fill(20);
  EXPECT_EQ(read_all(*seg_), all_records());
}

TEST_F(SegmentTest, DeletedIndexIsRebuilt) {
  fill(40);
  auto entries = seg_->index().offset_entries();
  auto times = seg_->index().time_entries();
  seg_.reset();
  ASSERT_TRUE(env_.remove_file(path(SegmentFileKind::kOffsetIndex)).is_ok());
  RecoveryReport report;
  auto seg = reopen(&report);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  EXPECT_TRUE(report.index_rebuilt);
  auto rebuilt = (*seg)->index().offset_entries();
  ASSERT_EQ(rebuilt.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(rebuilt[i].relative_offset, entries[i].relative_offset);
    EXPECT_EQ(rebuilt[i].position, entries[i].position);
  }
  EXPECT_EQ((*seg)->index().time_entries().size(), times.size());
  EXPECT_TRUE(env_.file_exists(path(SegmentFileKind::kOffsetIndex)));
  EXPECT_EQ(read_all(**seg), all_records());
  for (const auto& p : placed_) EXPECT_EQ((*(*seg)->read(p.last_offset, 1))->position, p.position);
}

TEST_F(SegmentTest, CorruptIndexIsRebuilt) {
  fill(40);
  auto records = all_records();
  seg_.reset();
  // A flipped bit in the time index's magic.
  ASSERT_TRUE(env_.flip_bit(path(SegmentFileKind::kTimeIndex), 2, 3).is_ok());
  RecoveryReport report;
  auto seg = reopen(&report);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  EXPECT_TRUE(report.index_rebuilt);
  EXPECT_EQ(read_all(**seg), records);
  for (int64_t target : {int64_t(0), int64_t(10'500), int64_t(11'000), (*seg)->max_timestamp()}) {
    EXPECT_EQ(*(*seg)->offset_for_timestamp(target), first_at_or_after(records, target));
  }
}

TEST_F(SegmentTest, IndexEntryNotAtABatchStartIsRebuilt) {
  fill(40);
  auto records = all_records();
  seg_.reset();
  std::string index = *env_.contents(path(SegmentFileKind::kOffsetIndex));
  ASSERT_GE(index.size(), index_layout::kHeaderSize + 16);
  // Move the last entry's position 4 bytes forward: still increasing, still
  // inside the file, but no longer a batch start.
  size_t last = index.size() - 8;
  store_be32(reinterpret_cast<uint8_t*>(index.data()) + last + 4,
             load_be32(reinterpret_cast<const uint8_t*>(index.data()) + last + 4) + 4);
  ASSERT_TRUE(env_.set_contents(path(SegmentFileKind::kOffsetIndex), index).is_ok());
  RecoveryReport report;
  auto seg = reopen(&report);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  EXPECT_TRUE(report.index_rebuilt);
  EXPECT_EQ(read_all(**seg), records);
  EXPECT_EQ((*seg)->next_offset(), placed_.back().last_offset + 1);
}

// An entry at a real batch start that names a smaller offset than the batch
// has (a stale index) must lead to a rebuild, not to a failed open.
TEST_F(SegmentTest, IndexEntryNamingTheWrongOffsetIsRebuilt) {
  fill(40);
  auto records = all_records();
  auto entries = seg_->index().offset_entries();
  ASSERT_GE(entries.size(), 2u);
  uint32_t real_rel = entries.back().relative_offset;
  ASSERT_GT(real_rel, entries[entries.size() - 2].relative_offset + 1);
  uint32_t fake_rel = real_rel - 1;
  seg_.reset();
  auto patch = [&](SegmentFileKind kind, size_t entry_size, size_t rel_at) {
    std::string data = *env_.contents(path(kind));
    auto* p = reinterpret_cast<uint8_t*>(data.data());
    for (size_t pos = index_layout::kHeaderSize; pos + entry_size <= data.size(); pos += entry_size)
      if (load_be32(p + pos + rel_at) == real_rel) store_be32(p + pos + rel_at, fake_rel);
    ASSERT_TRUE(env_.set_contents(path(kind), data).is_ok());
  };
  patch(SegmentFileKind::kOffsetIndex, index_layout::kOffsetEntrySize, 0);
  patch(SegmentFileKind::kTimeIndex, index_layout::kTimeEntrySize, 8);
  RecoveryReport report;
  auto seg = reopen(&report);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  EXPECT_TRUE(report.index_rebuilt);
  EXPECT_EQ((*seg)->index().offset_entries().back().relative_offset, real_rel);
  EXPECT_EQ(read_all(**seg), records);
}

// When the time index lost entries (an index is never synced, so a power cut
// can tear it), the segment's max timestamp must still cover every batch.
TEST_F(SegmentTest, TornTimeIndexStillGivesTheTrueMaxTimestamp) {
  fill(20);
  fixed_timestamp_ = 1'000'000;  // the newest record sits in the middle of the segment
  ASSERT_TRUE(append({3}).is_ok());
  fixed_timestamp_.reset();
  fill(20);
  auto records = all_records();
  int64_t max_ts = seg_->max_timestamp();
  ASSERT_GE(seg_->index().time_entries().size(), 3u);
  seg_.reset();
  std::string times = *env_.contents(path(SegmentFileKind::kTimeIndex));
  // Keep only the first time entry; the offset index still has all of its entries.
  ASSERT_TRUE(env_.set_contents(path(SegmentFileKind::kTimeIndex),
                                times.substr(0, index_layout::kHeaderSize + index_layout::kTimeEntrySize))
                  .is_ok());
  RecoveryReport report;
  auto seg = reopen(&report);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  EXPECT_EQ((*seg)->max_timestamp(), max_ts);
  EXPECT_EQ(*(*seg)->offset_for_timestamp(max_ts), first_at_or_after(records, max_ts));
}

TEST_F(SegmentTest, RecoverTruncatesATornTail) {
  fill(20);
  seg_.reset();
  std::string log = *env_.contents(path(SegmentFileKind::kLog));
  const Placed& last = placed_.back();
  ASSERT_TRUE(env_.set_contents(path(SegmentFileKind::kLog), log.substr(0, last.position + last.size / 2)).is_ok());
  RecoveryReport report;
  auto seg = reopen(&report, true);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  ASSERT_TRUE(report.damage);
  EXPECT_EQ(report.damage->position, last.position);
  EXPECT_NE(report.damage->reason.find("torn"), std::string::npos) << report.damage->reason;
  EXPECT_EQ(report.valid_bytes, last.position);
  EXPECT_EQ(report.truncated_bytes, last.size / 2);
  EXPECT_FALSE(report.split_base_offset);
  EXPECT_EQ((*seg)->next_offset(), last.base_offset);
  EXPECT_EQ((*seg)->size_bytes(), last.position);
  EXPECT_EQ(*env_.file_size(path(SegmentFileKind::kLog)), last.position);
  placed_.pop_back();
  EXPECT_EQ(read_all(**seg), all_records());
}

TEST_F(SegmentTest, RecoverTruncatesATornHeader) {
  fill(5);
  seg_.reset();
  std::string log = *env_.contents(path(SegmentFileKind::kLog));
  ASSERT_TRUE(env_.set_contents(path(SegmentFileKind::kLog), log + std::string(20, '\0')).is_ok());
  RecoveryReport report;
  auto seg = reopen(&report, true);
  ASSERT_TRUE(seg.is_ok());
  ASSERT_TRUE(report.damage);
  EXPECT_EQ(report.damage->position, log.size());
  EXPECT_EQ(report.truncated_bytes, 20u);
  EXPECT_EQ((*seg)->size_bytes(), log.size());
}

TEST_F(SegmentTest, OpenFallsBackToRecoveryOnATornTail) {
  fill(20);
  seg_.reset();
  std::string log = *env_.contents(path(SegmentFileKind::kLog));
  const Placed& last = placed_.back();
  ASSERT_TRUE(env_.set_contents(path(SegmentFileKind::kLog), log.substr(0, last.position + 30)).is_ok());
  RecoveryReport report;
  auto seg = reopen(&report, false);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  EXPECT_EQ((*seg)->next_offset(), last.base_offset);
  EXPECT_EQ(report.truncated_bytes, 30u);
}

TEST_F(SegmentTest, BitFlipInTheMiddleSplitsOffTheValidRest) {
  fill(30);
  auto records = all_records();
  seg_.reset();
  const Placed& bad = placed_[12];
  uint64_t flip_at = bad.position + bad.size - 3;  // inside a record: only the CRC can tell
  ASSERT_TRUE(env_.flip_bit(path(SegmentFileKind::kLog), flip_at, 4).is_ok());
  RecoveryReport report;
  auto seg = reopen(&report, true);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  ASSERT_TRUE(report.damage);
  EXPECT_EQ(report.damage->position, bad.position);
  EXPECT_NE(report.damage->reason.find("CRC"), std::string::npos) << report.damage->reason;
  ASSERT_TRUE(report.split_base_offset);
  EXPECT_EQ(*report.split_base_offset, placed_[13].base_offset);
  EXPECT_EQ((*seg)->next_offset(), bad.base_offset);
  EXPECT_EQ((*seg)->size_bytes(), bad.position);

  // The damaged bytes are kept aside, the rest moved to its own segment.
  std::string damaged = io::join_path(kDir, damaged_file_name(kBase, bad.position));
  ASSERT_TRUE(env_.file_exists(damaged));
  EXPECT_EQ(env_.contents(damaged)->size(), bad.size);
  std::string split_log = path(SegmentFileKind::kLog, placed_[13].base_offset);
  ASSERT_TRUE(env_.file_exists(split_log));
  EXPECT_FALSE(env_.file_exists(split_log + ".tmp"));
  // All of it is durable.
  (*seg).reset();
  env_.crash();
  ASSERT_TRUE(env_.file_exists(damaged));
  ASSERT_TRUE(env_.file_exists(split_log));
  EXPECT_EQ(*env_.file_size(path(SegmentFileKind::kLog)), bad.position);

  RecoveryReport split_report;
  auto split = Segment::open_and_recover(env_, kDir, placed_[13].base_offset, kIndexInterval, &split_report);
  ASSERT_TRUE(split.is_ok()) << split.status().to_string();
  EXPECT_FALSE(split_report.damage);
  std::vector<TestRecord> after;
  for (size_t i = 13; i < placed_.size(); ++i) after.insert(after.end(), placed_[i].records.begin(), placed_[i].records.end());
  EXPECT_EQ(read_all(**split), after);
}

// base_offset is outside the CRC: a flipped bit there is found by the
// offsets no longer running on, and costs only that batch.
TEST_F(SegmentTest, FlippedBaseOffsetIsDamage) {
  fill(10);
  seg_.reset();
  ASSERT_TRUE(env_.flip_bit(path(SegmentFileKind::kLog), placed_[4].position + L::kBaseOffset + 3, 1).is_ok());
  RecoveryReport report;
  auto seg = reopen(&report, true);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  ASSERT_TRUE(report.damage);
  EXPECT_EQ(report.damage->position, placed_[4].position);
  ASSERT_TRUE(report.split_base_offset);
  EXPECT_EQ(*report.split_base_offset, placed_[5].base_offset);
  EXPECT_EQ((*seg)->next_offset(), placed_[4].base_offset);
}

TEST_F(SegmentTest, FlippedBaseOffsetOfTheFirstBatchIsDamage) {
  fill(10);
  seg_.reset();
  ASSERT_TRUE(env_.flip_bit(path(SegmentFileKind::kLog), L::kBaseOffset + 2, 0).is_ok());
  RecoveryReport report;
  auto seg = reopen(&report, true);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  ASSERT_TRUE(report.damage);
  EXPECT_EQ(report.damage->position, 0u);
  ASSERT_TRUE(report.split_base_offset);
  EXPECT_EQ(*report.split_base_offset, placed_[1].base_offset);
  EXPECT_EQ((*seg)->next_offset(), kBase);
  EXPECT_EQ((*seg)->size_bytes(), 0u);
}

TEST_F(SegmentTest, ScanBatchesVisitsEveryBatchAndReportsDamage) {
  fill(10);
  std::vector<uint64_t> positions;
  auto visit = [&](uint64_t pos, const BatchHeader& h, ByteSpan batch) {
    positions.push_back(pos);
    EXPECT_EQ(batch.size(), h.total_size());
    return Status::ok();
  };
  auto damage = scan_batches(*seg_->log_file(), 0, seg_->size_bytes(), true, kBase, visit);
  ASSERT_TRUE(damage.is_ok());
  EXPECT_FALSE(*damage);
  ASSERT_EQ(positions.size(), placed_.size());
  for (size_t i = 0; i < placed_.size(); ++i) EXPECT_EQ(positions[i], placed_[i].position);

  // Offsets must go up: a scan that expects higher offsets stops at once.
  positions.clear();
  damage = scan_batches(*seg_->log_file(), 0, seg_->size_bytes(), false, kBase + 1, visit);
  ASSERT_TRUE(damage.is_ok() && *damage);
  EXPECT_EQ((*damage)->position, 0u);
  EXPECT_TRUE(positions.empty());

  ASSERT_TRUE(env_.flip_bit(seg_->log_path(), placed_[4].position + L::kMagic, 0).is_ok());
  positions.clear();
  damage = scan_batches(*seg_->log_file(), 0, seg_->size_bytes(), false, kBase, visit);
  ASSERT_TRUE(damage.is_ok() && *damage);
  EXPECT_EQ((*damage)->position, placed_[4].position);
  EXPECT_NE((*damage)->reason.find("magic"), std::string::npos);
  EXPECT_EQ(positions.size(), 4u);
}

TEST_F(SegmentTest, FindNextValidBatchSkipsGarbage) {
  fill(10);
  ASSERT_TRUE(env_.flip_bit(seg_->log_path(), placed_[3].position + 30, 0).is_ok());
  auto next = find_next_valid_batch(*seg_->log_file(), placed_[3].position + 1, seg_->size_bytes(), kBase);
  ASSERT_TRUE(next.is_ok());
  ASSERT_TRUE(*next);
  EXPECT_EQ(**next, placed_[4].position);
  auto none = find_next_valid_batch(*seg_->log_file(), placed_[9].position + 1, seg_->size_bytes(), kBase);
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(*none);
  // Batches below the minimum offset do not count.
  auto low = find_next_valid_batch(*seg_->log_file(), 0, seg_->size_bytes(), placed_[9].base_offset);
  ASSERT_TRUE(low.is_ok() && *low);
  EXPECT_EQ(**low, placed_[9].position);
}

TEST_F(SegmentTest, RemoveFilesKeepsOpenSlicesReadable) {
  fill(5);
  auto slice = seg_->read(kBase, 1 << 20);
  ASSERT_TRUE(slice.is_ok() && *slice);
  ASSERT_TRUE(seg_->remove_files().is_ok());
  EXPECT_FALSE(env_.file_exists(path(SegmentFileKind::kLog)));
  EXPECT_FALSE(env_.file_exists(path(SegmentFileKind::kOffsetIndex)));
  EXPECT_FALSE(env_.file_exists(path(SegmentFileKind::kTimeIndex)));
  EXPECT_EQ(test::records_of(decode_batches(slice_bytes(**slice))), all_records());
}

TEST_F(SegmentTest, AppendOnAFullDiskLeavesNoPartialBatch) {
  fill(5);
  uint64_t size = seg_->size_bytes();
  int64_t next = seg_->next_offset();
  env_.set_write_budget(50);
  EXPECT_EQ(append({5}).code(), ErrorCode::kNoSpace);
  EXPECT_EQ(seg_->size_bytes(), size);
  EXPECT_EQ(seg_->next_offset(), next);
  EXPECT_EQ(*env_.file_size(path(SegmentFileKind::kLog)), size);
  EXPECT_FALSE(seg_->broken());
  env_.set_write_budget(-1);
  fill(5);
  EXPECT_EQ(read_all(*seg_), all_records());
}

}  // namespace
}  // namespace evert::log
