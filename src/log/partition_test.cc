#include "log/partition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
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
using test::must_append;
using test::mutable_bytes;
using test::read_all_records;
using test::slice_bytes;
using test::TestRecord;


// Delegates to a MemEnv but makes every fdatasync take a millisecond, as a
// disk would, so that concurrent sync() callers really do overlap.
class SlowSyncEnv final : public io::Env {
 public:
  explicit SlowSyncEnv(MemEnv& base) : base_(base) {}
  Result<std::unique_ptr<io::File>> open_file(const std::string& path, io::OpenMode mode) override {
    EVERT_ASSIGN_OR_RETURN(auto file, base_.open_file(path, mode));
    return std::unique_ptr<io::File>(new SlowSyncFile(std::move(file)));
  }
  Status create_dir(const std::string& path) override { return base_.create_dir(path); }
  Result<std::vector<std::string>> list_dir(const std::string& path) override { return base_.list_dir(path); }
  Status rename(const std::string& from, const std::string& to) override { return base_.rename(from, to); }
  Status remove_file(const std::string& path) override { return base_.remove_file(path); }
  Status remove_dir(const std::string& path) override { return base_.remove_dir(path); }
  Status sync_dir(const std::string& path) override { return base_.sync_dir(path); }
  bool file_exists(const std::string& path) override { return base_.file_exists(path); }
  bool dir_exists(const std::string& path) override { return base_.dir_exists(path); }
  Result<uint64_t> file_size(const std::string& path) override { return base_.file_size(path); }
  Result<std::unique_ptr<io::FileLock>> lock_file(const std::string& path) override { return base_.lock_file(path); }

 private:
  class SlowSyncFile final : public io::File {
   public:
    explicit SlowSyncFile(std::unique_ptr<io::File> file) : file_(std::move(file)) {}
    Result<size_t> read_at(uint64_t position, MutableByteSpan out) const override {
      return file_->read_at(position, out);
    }
    Status write_at(uint64_t position, ByteSpan data) override { return file_->write_at(position, data); }
    Status sync_data() override {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return file_->sync_data();
    }
    Status truncate(uint64_t size_bytes) override { return file_->truncate(size_bytes); }
    Result<uint64_t> size_bytes() const override { return file_->size_bytes(); }
    const std::string& path() const override { return file_->path(); }

   private:
    std::unique_ptr<io::File> file_;
  };
  MemEnv& base_;
};

class PartitionTest : public ::testing::Test {
 protected:
  PartitionTest() {
    options_.clock = &clock_;
    options_.flush.kind = FlushPolicy::Kind::kNone;
    options_.config.index_interval_bytes = 256;
  }

  void open(bool recover_active = true) {
    p_.reset();
    options_.recover_active_segment = recover_active;
    recovery_ = PartitionRecovery();
    auto p = Partition::open(env_, dir_, options_, &recovery_);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    p_ = std::move(p).value();
  }
  void SetUp() override { open(); }
  void sweep_no_space(int warmup_appends, bool expect_roll);

  // Appends `batches` batches of `records_per_batch` records stamped with the
  // clock, remembering them in expected_.
  AppendResult append(int batches = 1, int records_per_batch = 3, size_t value_bytes = 16) {
    std::string data;
    std::vector<TestRecord> added;
    int64_t next = p_->high_watermark();
    for (int b = 0; b < batches; ++b) {
      std::vector<TestRecord> records;
      for (int i = 0; i < records_per_batch; ++i) {
        TestRecord r;
        r.offset = next++;
        r.key = "key-" + std::to_string(r.offset);
        r.value = std::string(value_bytes, char('a' + r.offset % 26));
        r.timestamp = clock_.now_ms();
        records.push_back(r);
      }
      data += build_batch(records);
      added.insert(added.end(), records.begin(), records.end());
    }
    AppendResult result = must_append(*p_, data);
    if (!::testing::Test::HasFailure()) expected_.insert(expected_.end(), added.begin(), added.end());
    return result;
  }

  void expect_contents() {
    std::vector<TestRecord> want;
    for (const auto& r : expected_)
      if (r.offset >= p_->log_start_offset()) want.push_back(r);
    EXPECT_EQ(read_all_records(*p_), want);
  }

  // A fetch at each offset starts with the batch holding it.
  void expect_every_offset_readable() {
    for (int64_t o = p_->log_start_offset(); o < p_->high_watermark(); ++o) {
      auto r = p_->read(o, 1);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      ASSERT_TRUE(r->slice) << "offset " << o;
      auto batches = decode_batches(slice_bytes(*r->slice));
      ASSERT_FALSE(batches.empty()) << "offset " << o;
      EXPECT_LE(batches[0].header.base_offset, o);
      EXPECT_GE(batches[0].header.last_offset(), o) << "a fetch at " << o << " skipped records";
    }
  }

  std::string segment_path(int64_t base, SegmentFileKind kind = SegmentFileKind::kLog) const {
    return io::join_path(dir_, segment_file_name(base, kind));
  }

  MemEnv env_;
  std::string dir_ = "/data/t/0";
  ManualClock clock_{1'700'000'000'000};
  PartitionOptions options_;
  PartitionRecovery recovery_;
  std::unique_ptr<Partition> p_;
  std::vector<TestRecord> expected_;
};

// --- Appending and reading -------------------------------------------------

TEST_F(PartitionTest, NewPartitionIsEmpty) {
  EXPECT_EQ(p_->high_watermark(), 0);
  EXPECT_EQ(p_->log_start_offset(), 0);
  EXPECT_EQ(p_->segment_count(), 1u);
  EXPECT_TRUE(env_.file_exists(segment_path(0)));
  auto r = p_->read(0, 1000);
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE(r->slice);
  EXPECT_EQ(r->high_watermark, 0);
}

TEST_F(PartitionTest, AppendAssignsConsecutiveOffsets) {
  AppendResult a = append(1, 3);
  EXPECT_EQ(a.base_offset, 0);
  EXPECT_EQ(a.last_offset, 2);
  EXPECT_EQ(a.batch_count, 1);
  EXPECT_EQ(a.record_count, 3);
  EXPECT_EQ(a.log_append_time_ms, -1);
  AppendResult b = append(4, 5);
  EXPECT_EQ(b.base_offset, 3);
  EXPECT_EQ(b.last_offset, 22);
  EXPECT_EQ(b.batch_count, 4);
  EXPECT_EQ(b.record_count, 20);
  EXPECT_EQ(p_->high_watermark(), 23);
  expect_contents();
}

TEST_F(PartitionTest, AppendOverwritesTheProducersBaseOffset) {
  std::string batch = test::simple_batch(2, clock_.now_ms());
  set_base_offset(mutable_bytes(batch), 12345);
  must_append(*p_, batch);
  auto r = p_->read(0, 1 << 20);
  ASSERT_TRUE(r.is_ok() && r->slice);
  auto batches = decode_batches(slice_bytes(*r->slice));
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].header.base_offset, 0);
}

TEST_F(PartitionTest, AppendRejectsMalformedInputAndAppendsNothing) {
  append(1, 2);
  std::string good = test::simple_batch(3, clock_.now_ms());
  auto expect_rejected = [&](std::string data, ErrorCode code) {
    auto r = p_->append(mutable_bytes(data));
    EXPECT_EQ(r.status().code(), code) << r.status().to_string();
    EXPECT_EQ(p_->high_watermark(), 2);
  };
  expect_rejected("", ErrorCode::kCorruption);
  expect_rejected(good.substr(0, 30), ErrorCode::kCorruption);              // shorter than a header
  expect_rejected(good.substr(0, good.size() - 1), ErrorCode::kCorruption);  // torn
  expect_rejected(good + "xyz", ErrorCode::kCorruption);                     // trailing bytes
  expect_rejected(good + good.substr(0, 70), ErrorCode::kCorruption);        // second batch torn
  std::string bad_crc = good;
  bad_crc[bad_crc.size() - 1] ^= 1;
  expect_rejected(bad_crc, ErrorCode::kCorruption);
  expect_rejected(good + bad_crc, ErrorCode::kCorruption);  // all or nothing
  std::string old_magic = good;
  old_magic[L::kMagic] = 1;
  expect_rejected(old_magic, ErrorCode::kUnsupported);
  std::string no_records = good;
  store_be32(reinterpret_cast<uint8_t*>(no_records.data()) + L::kRecordsCount, 0);
  store_be32(reinterpret_cast<uint8_t*>(no_records.data()) + L::kCrc, compute_batch_crc(as_bytes(no_records)));
  expect_rejected(no_records, ErrorCode::kCorruption);
  expect_contents();
  append(1, 1);  // still usable
  EXPECT_EQ(p_->high_watermark(), 3);
}

TEST_F(PartitionTest, AppendRejectsBatchesAboveMaxMessageBytes) {
  TopicConfig config = p_->config();
  config.max_message_bytes = 500;
  p_->set_config(config);
  EXPECT_EQ(p_->config().max_message_bytes, 500);
  std::string big = test::simple_batch(1, clock_.now_ms(), 600);
  EXPECT_EQ(p_->append(mutable_bytes(big)).status().code(), ErrorCode::kTooLarge);
  EXPECT_EQ(p_->high_watermark(), 0);
  append(1, 1, 100);
  EXPECT_EQ(p_->high_watermark(), 1);
}

TEST_F(PartitionTest, ReadAtLogStartAndAtHighWatermark) {
  append(3, 4);
  auto start = p_->read(0, 1 << 20);
  ASSERT_TRUE(start.is_ok());
  ASSERT_TRUE(start->slice);
  EXPECT_EQ(start->high_watermark, 12);
  EXPECT_EQ(start->log_start_offset, 0);
  EXPECT_EQ(test::records_of(decode_batches(slice_bytes(*start->slice))), expected_);

  auto at_end = p_->read(12, 1 << 20);
  ASSERT_TRUE(at_end.is_ok());
  EXPECT_FALSE(at_end->slice);  // an empty answer, not an error
  EXPECT_EQ(at_end->high_watermark, 12);
}

TEST_F(PartitionTest, ReadOutOfRange) {
  append(3, 4);
  EXPECT_EQ(p_->read(13, 100).status().code(), ErrorCode::kOutOfRange);
  EXPECT_EQ(p_->read(-1, 100).status().code(), ErrorCode::kOutOfRange);
  EXPECT_EQ(p_->read(1'000'000, 100).status().code(), ErrorCode::kOutOfRange);
}

TEST_F(PartitionTest, ReadReturnsAWholeBatchWhenMaxBytesIsSmaller) {
  append(1, 10, 200);
  append(1, 10, 200);
  for (uint64_t max_bytes : {uint64_t(0), uint64_t(1), uint64_t(L::kHeaderSize), uint64_t(1000)}) {
    auto r = p_->read(5, max_bytes);
    ASSERT_TRUE(r.is_ok());
    ASSERT_TRUE(r->slice);
    bool partial = true;
    auto batches = decode_batches(slice_bytes(*r->slice), &partial);
    ASSERT_EQ(batches.size(), 1u) << "max_bytes " << max_bytes;
    EXPECT_FALSE(partial);
    EXPECT_EQ(batches[0].header.base_offset, 0);
    EXPECT_EQ(batches[0].records.size(), 10u);
  }
}

TEST_F(PartitionTest, EveryOffsetReadsFromItsBatch) {
  options_.config.segment_bytes = 2000;
  open();
  for (int i = 0; i < 60; ++i) append(1 + i % 3, 1 + i % 5);
  ASSERT_GT(p_->segment_count(), 3u);
  for (int64_t o = 0; o < p_->high_watermark(); ++o) {
    auto r = p_->read(o, 1);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_TRUE(r->slice) << "offset " << o;
    auto batches = decode_batches(slice_bytes(*r->slice));
    ASSERT_EQ(batches.size(), 1u);
    EXPECT_LE(batches[0].header.base_offset, o);
    EXPECT_GE(batches[0].header.last_offset(), o);
  }
  expect_contents();
  EXPECT_EQ(test::read_records(*p_, 0, 1), expected_);  // one batch at a time
}

// --- Rolling ---------------------------------------------------------------

TEST_F(PartitionTest, RollsBySize) {
  options_.config.segment_bytes = 4096;
  open();
  for (int i = 0; i < 100; ++i) append(1, 5, 30);
  auto segments = p_->segments();
  ASSERT_GT(segments.size(), 5u);
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    EXPECT_LE(segments[i]->size_bytes(), 4096u);
    EXPECT_GT(segments[i]->size_bytes(), 4096u - 400) << "rolled early";
    EXPECT_EQ(segments[i]->next_offset(), segments[i + 1]->base_offset());
    EXPECT_TRUE(env_.file_exists(segment_path(segments[i]->base_offset())));
  }
  EXPECT_EQ(p_->size_bytes(), [&] {
    uint64_t total = 0;
    for (const auto& s : segments) total += s->size_bytes();
    return total;
  }());
  expect_contents();
}

TEST_F(PartitionTest, RollsByAge) {
  options_.config.segment_ms = 60'000;
  open();
  append();
  clock_.advance_ms(30'000);
  append();
  EXPECT_EQ(p_->segment_count(), 1u);
  clock_.advance_ms(30'001);
  append();
  EXPECT_EQ(p_->segment_count(), 2u);
  EXPECT_EQ(p_->segments().back()->base_offset(), 6);
  expect_contents();
}

TEST_F(PartitionTest, ExplicitRoll) {
  ASSERT_TRUE(p_->roll().is_ok());
  EXPECT_EQ(p_->segment_count(), 1u);  // an empty active segment is not rolled
  append();
  ASSERT_TRUE(p_->roll().is_ok());
  EXPECT_EQ(p_->segment_count(), 2u);
  EXPECT_EQ(p_->segments().back()->base_offset(), 3);
  // Rolling made the old segment durable.
  EXPECT_GE(p_->durable_offset(), 3);
  append();
  expect_contents();
}

// --- Retention -------------------------------------------------------------

TEST_F(PartitionTest, RetentionByTimeDeletesOldSegments) {
  options_.config.retention_ms = 3'600'000;
  open();
  for (int i = 0; i < 3; ++i) {
    append(2, 3);
    ASSERT_TRUE(p_->roll().is_ok());
    clock_.advance_ms(1'000'000);
  }
  append(1, 3);  // active, young
  ASSERT_EQ(p_->segment_count(), 4u);
  // Now: the segments are 3.0M, 2.0M, 1.0M and 0 ms old.
  clock_.advance_ms(700'000);  // 3.7M, 2.7M, 1.7M, 0.7M
  auto deleted = p_->enforce_retention();
  ASSERT_TRUE(deleted.is_ok()) << deleted.status().to_string();
  EXPECT_EQ(*deleted, 1);
  EXPECT_EQ(p_->log_start_offset(), 6);
  EXPECT_FALSE(env_.file_exists(segment_path(0)));
  EXPECT_FALSE(env_.file_exists(segment_path(0, SegmentFileKind::kOffsetIndex)));
  EXPECT_EQ(p_->read(5, 100).status().code(), ErrorCode::kOutOfRange);
  expect_contents();
  EXPECT_EQ(*p_->enforce_retention(), 0);

  // Everything expired, the active segment too: it is rolled and deleted.
  clock_.advance_ms(10'000'000);
  deleted = p_->enforce_retention();
  ASSERT_TRUE(deleted.is_ok());
  EXPECT_EQ(*deleted, 3);
  EXPECT_EQ(p_->log_start_offset(), 21);
  EXPECT_EQ(p_->high_watermark(), 21);
  EXPECT_EQ(p_->segment_count(), 1u);
  auto empty = p_->read(21, 100);
  ASSERT_TRUE(empty.is_ok());
  EXPECT_FALSE(empty->slice);
  // Offsets go on from where they were, and the deletions are durable.
  AppendResult next = append();
  EXPECT_EQ(next.base_offset, 21);
  ASSERT_TRUE(p_->sync_all().is_ok());
  p_.reset();
  env_.crash();
  open();
  EXPECT_EQ(p_->log_start_offset(), 21);
  EXPECT_EQ(p_->high_watermark(), 24);
  expect_contents();
}

TEST_F(PartitionTest, RetentionForeverKeepsEverything) {
  options_.config.retention_ms = -1;
  open();
  append();
  ASSERT_TRUE(p_->roll().is_ok());
  clock_.advance_ms(100LL * 365 * 24 * 3600 * 1000);
  EXPECT_EQ(*p_->enforce_retention(), 0);
  EXPECT_EQ(p_->log_start_offset(), 0);
}

TEST_F(PartitionTest, RetentionBySize) {
  options_.config.segment_bytes = 2048;
  options_.config.retention_bytes = 5000;
  open();
  for (int i = 0; i < 80; ++i) append(1, 4, 40);
  size_t before = p_->segment_count();
  ASSERT_GT(before, 4u);
  auto deleted = p_->enforce_retention();
  ASSERT_TRUE(deleted.is_ok());
  EXPECT_GT(*deleted, 0);
  EXPECT_EQ(p_->segment_count(), before - size_t(*deleted));
  // What is left is at least retention.bytes, and dropping the oldest would go below it.
  auto segments = p_->segments();
  EXPECT_GE(p_->size_bytes(), 5000u);
  EXPECT_LT(p_->size_bytes() - segments.front()->size_bytes(), 5000u);
  EXPECT_EQ(p_->log_start_offset(), segments.front()->base_offset());
  expect_contents();
}

// --- Timestamp lookup ------------------------------------------------------

TEST_F(PartitionTest, OffsetForTimestampAcrossSegments) {
  options_.config.segment_bytes = 1500;
  open();
  for (int i = 0; i < 40; ++i) {
    append(1, 3);
    clock_.advance_ms(100);
  }
  ASSERT_GT(p_->segment_count(), 3u);
  int64_t t0 = expected_.front().timestamp;
  for (const auto& r : expected_) {
    auto got = p_->offset_for_timestamp(r.timestamp);
    ASSERT_TRUE(got.is_ok());
    // Records of one append share a timestamp: the answer is the first of them.
    EXPECT_EQ(*got, std::optional<int64_t>((r.offset / 3) * 3)) << "ts " << r.timestamp;
    auto between = p_->offset_for_timestamp(r.timestamp - 50);
    ASSERT_TRUE(between.is_ok());
    EXPECT_EQ(*between, std::optional<int64_t>((r.offset / 3) * 3));
  }
  EXPECT_EQ(*p_->offset_for_timestamp(t0 - 1'000'000), std::optional<int64_t>(0));
  auto none = p_->offset_for_timestamp(expected_.back().timestamp + 1);
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(*none);
}

TEST_F(PartitionTest, OffsetForTimestampWithOutOfOrderTimestamps) {
  // Timestamps inside and across batches go back and forth.
  std::vector<int64_t> ts = {500, 100, 900, 300, 700, 200, 1000, 50, 800};
  std::string data;
  for (size_t b = 0; b < 3; ++b) {
    std::vector<TestRecord> records;
    for (size_t i = 0; i < 3; ++i) {
      TestRecord r;
      r.value = "v";
      r.timestamp = ts[b * 3 + i];
      records.push_back(r);
    }
    data += build_batch(records);
  }
  must_append(*p_, data);
  for (int64_t target = 0; target <= 1001; ++target) {
    std::optional<int64_t> want;
    for (size_t i = 0; i < ts.size(); ++i)
      if (ts[i] >= target) {
        want = int64_t(i);
        break;
      }
    EXPECT_EQ(*p_->offset_for_timestamp(target), want) << "target " << target;
  }
}

TEST_F(PartitionTest, OffsetForTimestampAfterRetention) {
  options_.config.retention_ms = 1000;
  open();
  append();
  ASSERT_TRUE(p_->roll().is_ok());
  clock_.advance_ms(2000);
  append();
  ASSERT_EQ(*p_->enforce_retention(), 1);
  EXPECT_EQ(*p_->offset_for_timestamp(0), std::optional<int64_t>(3));
}

TEST_F(PartitionTest, LogAppendTimeStampsTheClock) {
  options_.config.timestamp_type = TimestampType::kLogAppendTime;
  open();
  std::vector<TestRecord> records(2);
  records[0].value = "a";
  records[0].timestamp = 5;
  records[1].value = "b";
  records[1].timestamp = 6;
  std::string batch = build_batch(records);
  auto r = p_->append(mutable_bytes(batch));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->log_append_time_ms, clock_.now_ms());
  auto read = test::read_all_records(*p_);
  ASSERT_EQ(read.size(), 2u);
  for (const auto& rec : read) EXPECT_EQ(rec.timestamp, clock_.now_ms());
  EXPECT_EQ(*p_->offset_for_timestamp(clock_.now_ms()), std::optional<int64_t>(0));
}

// --- Flushing --------------------------------------------------------------

TEST_F(PartitionTest, EveryAppendPolicyMakesEachAppendDurable) {
  options_.flush.kind = FlushPolicy::Kind::kEveryAppend;
  open();
  for (int i = 0; i < 10; ++i) {
    uint64_t syncs = env_.sync_count();
    append(1 + i % 3, 2);
    EXPECT_EQ(p_->durable_offset(), p_->high_watermark());
    EXPECT_GT(env_.sync_count(), syncs);
  }
  p_.reset();
  env_.crash(1234);  // nothing unsynced to tear
  open();
  EXPECT_EQ(p_->high_watermark(), int64_t(expected_.size()));
  expect_contents();
}

TEST_F(PartitionTest, NonePolicyLeavesSyncToTheCaller) {
  append(2, 2);
  EXPECT_EQ(p_->durable_offset(), 0);
  ASSERT_TRUE(p_->sync(4).is_ok());
  EXPECT_EQ(p_->durable_offset(), 4);
  uint64_t syncs = env_.sync_count();
  ASSERT_TRUE(p_->sync(3).is_ok());  // already durable: no fdatasync
  EXPECT_EQ(env_.sync_count(), syncs);
  append();
  EXPECT_EQ(p_->durable_offset(), 4);
  ASSERT_TRUE(p_->sync_all().is_ok());
  EXPECT_EQ(p_->durable_offset(), 7);
}

TEST_F(PartitionTest, SyncFailureIsReported) {
  append();
  env_.set_fail_syncs(true);
  EXPECT_EQ(p_->sync_all().code(), ErrorCode::kIoError);
  EXPECT_EQ(p_->durable_offset(), 0);
  env_.set_fail_syncs(false);
  EXPECT_TRUE(p_->sync_all().is_ok());
  EXPECT_EQ(p_->durable_offset(), 3);
}

TEST_F(PartitionTest, GroupCommitSharesSyncs) {
  constexpr int kThreads = 8;
  constexpr int kAppendsPerThread = 40;
  SlowSyncEnv slow(env_);
  p_.reset();
  auto opened = Partition::open(slow, dir_, options_, &recovery_);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  p_ = std::move(opened).value();

  std::atomic<int> failures{0};
  std::atomic<int> ready{0};
  uint64_t syncs_before = env_.sync_count();
  std::vector<std::thread> threads;
  std::vector<std::vector<int64_t>> offsets(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kAppendsPerThread; ++i) {
        std::string batch = test::simple_batch(2, clock_.now_ms());
        auto r = p_->append(mutable_bytes(batch));
        if (!r.is_ok()) {
          ++failures;
          continue;
        }
        if (!p_->sync(r->last_offset + 1).is_ok() || p_->durable_offset() <= r->last_offset) ++failures;
        offsets[size_t(t)].push_back(r->base_offset);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  uint64_t syncs = env_.sync_count() - syncs_before;
  EXPECT_GT(syncs, 0u);
  EXPECT_LT(syncs, uint64_t(kThreads * kAppendsPerThread)) << "no sync was shared";
  EXPECT_EQ(p_->high_watermark(), kThreads * kAppendsPerThread * 2);
  EXPECT_EQ(p_->durable_offset(), p_->high_watermark());
  std::set<int64_t> all;
  for (const auto& v : offsets) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), size_t(kThreads * kAppendsPerThread));  // no offset handed out twice
  // And all of it survives a crash.
  p_.reset();
  env_.crash();
  open();
  EXPECT_EQ(p_->high_watermark(), kThreads * kAppendsPerThread * 2);
  EXPECT_EQ(read_all_records(*p_).size(), size_t(kThreads * kAppendsPerThread * 2));
}

TEST_F(PartitionTest, ReadsRunConcurrentlyWithAppends) {
  options_.config.segment_bytes = 4096;
  open();
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done.load()) {
      int64_t hw = p_->high_watermark();
      if (hw == 0) continue;
      for (int64_t o : {int64_t(0), hw / 2, hw - 1}) {
        auto r = p_->read(o, 300);
        if (!r.is_ok() || !r->slice) {
          ++bad;
          continue;
        }
        auto batches = decode_batches(slice_bytes(*r->slice));
        if (batches.empty() || batches[0].header.base_offset > o || batches[0].header.last_offset() < o) ++bad;
      }
    }
  });
  for (int i = 0; i < 300; ++i) must_append(*p_, test::simple_batch(3, clock_.now_ms()));
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

// --- Recovery --------------------------------------------------------------

TEST_F(PartitionTest, TornTailIsTruncated) {
  for (int i = 0; i < 10; ++i) append(1, 3);
  uint64_t size = p_->size_bytes();
  p_.reset();
  std::string log = *env_.contents(segment_path(0));
  ASSERT_EQ(log.size(), size);
  // Cut into the last batch.
  std::string cut = log.substr(0, log.size() - 40);
  ASSERT_TRUE(env_.set_contents(segment_path(0), cut).is_ok());
  open();
  ASSERT_EQ(recovery_.segments.size(), 1u);
  EXPECT_TRUE(recovery_.damaged());
  EXPECT_GT(recovery_.segments[0].truncated_bytes, 0u);
  EXPECT_EQ(p_->high_watermark(), 27);
  expected_.resize(27);
  expect_contents();
  AppendResult r = append();
  EXPECT_EQ(r.base_offset, 27);
  expect_contents();
}

TEST_F(PartitionTest, BitFlipInTheActiveSegmentKeepsLaterBatches) {
  for (int i = 0; i < 20; ++i) append(1, 3);
  uint64_t size = p_->size_bytes();
  p_.reset();
  // Find the 8th batch (offsets 21..23) and flip a bit in its last record.
  std::string log = *env_.contents(segment_path(0));
  size_t pos = 0;
  for (int i = 0; i < 7; ++i) pos += decode_batch_header(as_bytes(std::string_view(log).substr(pos))).total_size();
  BatchHeader bad = decode_batch_header(as_bytes(std::string_view(log).substr(pos)));
  ASSERT_EQ(bad.base_offset, 21);
  ASSERT_TRUE(env_.flip_bit(segment_path(0), pos + bad.total_size() - 2, 0).is_ok());
  open();
  ASSERT_TRUE(recovery_.damaged());
  ASSERT_GE(recovery_.segments.size(), 2u);
  const RecoveryReport& first = recovery_.segments[0];
  ASSERT_TRUE(first.damage);
  EXPECT_EQ(first.damage->position, pos);
  ASSERT_TRUE(first.split_base_offset);
  EXPECT_EQ(*first.split_base_offset, 24);
  EXPECT_EQ(first.truncated_bytes, size - pos);
  EXPECT_TRUE(env_.file_exists(io::join_path(dir_, damaged_file_name(0, pos))));
  EXPECT_TRUE(env_.file_exists(segment_path(24)));
  EXPECT_EQ(p_->segment_count(), 2u);
  EXPECT_EQ(p_->high_watermark(), 60);
  EXPECT_EQ(p_->log_start_offset(), 0);

  // Offsets 21..23 are gone; a fetch there gets the next batch.
  std::vector<TestRecord> want;
  for (const auto& r : expected_)
    if (r.offset < 21 || r.offset > 23) want.push_back(r);
  EXPECT_EQ(read_all_records(*p_), want);
  auto at_gap = p_->read(22, 1);
  ASSERT_TRUE(at_gap.is_ok() && at_gap->slice);
  EXPECT_EQ(decode_batches(slice_bytes(*at_gap->slice))[0].header.base_offset, 24);
  // Appends continue after the kept batches.
  EXPECT_EQ(append().base_offset, 60);
  // And a second open finds nothing more to repair.
  open();
  EXPECT_FALSE(recovery_.damaged());
  EXPECT_EQ(p_->high_watermark(), 63);
}

// base_offset is not covered by the CRC, so only its place in the sequence
// can show that it is wrong. A flipped bit there must cost that batch at
// most: not the batches after it, and not a jump of the high watermark.
TEST_F(PartitionTest, BitFlipInABaseOffsetKeepsLaterBatches) {
  for (int i = 0; i < 20; ++i) append(1, 3);
  p_.reset();
  std::string log = *env_.contents(segment_path(0));
  size_t pos = 0;
  for (int i = 0; i < 7; ++i) pos += decode_batch_header(as_bytes(std::string_view(log).substr(pos))).total_size();
  ASSERT_EQ(decode_batch_header(as_bytes(std::string_view(log).substr(pos))).base_offset, 21);
  ASSERT_TRUE(env_.flip_bit(segment_path(0), pos + L::kBaseOffset + 2, 0).is_ok());  // + 2^40
  open();
  EXPECT_TRUE(recovery_.damaged());
  EXPECT_EQ(p_->high_watermark(), 60);
  std::vector<TestRecord> want;
  for (const auto& r : expected_)
    if (r.offset < 21 || r.offset > 23) want.push_back(r);
  EXPECT_EQ(read_all_records(*p_), want);
  EXPECT_EQ(append().base_offset, 60);
}

TEST_F(PartitionTest, DeletedAndCorruptIndexesAreRebuilt) {
  options_.config.segment_bytes = 2048;
  open();
  for (int i = 0; i < 60; ++i) {
    append(1, 3);
    clock_.advance_ms(10);
  }
  auto segments = p_->segments();
  ASSERT_GE(segments.size(), 3u);
  int64_t b0 = segments[0]->base_offset();
  int64_t b1 = segments[1]->base_offset();
  p_.reset();
  ASSERT_TRUE(env_.remove_file(segment_path(b0, SegmentFileKind::kOffsetIndex)).is_ok());
  ASSERT_TRUE(env_.remove_file(segment_path(b0, SegmentFileKind::kTimeIndex)).is_ok());
  ASSERT_TRUE(env_.flip_bit(segment_path(b1, SegmentFileKind::kOffsetIndex), 3, 0).is_ok());
  open(/*recover_active=*/false);  // a clean start trusts indexes, so only the damage triggers rebuilds
  ASSERT_EQ(recovery_.segments.size(), segments.size());
  EXPECT_TRUE(recovery_.segments[0].index_rebuilt);
  EXPECT_TRUE(recovery_.segments[1].index_rebuilt);
  EXPECT_FALSE(recovery_.segments[2].index_rebuilt);
  EXPECT_TRUE(env_.file_exists(segment_path(b0, SegmentFileKind::kOffsetIndex)));
  expect_contents();
  for (int64_t o = 0; o < p_->high_watermark(); o += 7) {
    auto r = p_->read(o, 1);
    ASSERT_TRUE(r.is_ok() && r->slice);
    auto batches = decode_batches(slice_bytes(*r->slice));
    ASSERT_FALSE(batches.empty());
    EXPECT_LE(batches[0].header.base_offset, o);
    EXPECT_GE(batches[0].header.last_offset(), o);
  }
  for (const auto& r : expected_) EXPECT_EQ(*p_->offset_for_timestamp(r.timestamp), std::optional<int64_t>((r.offset / 3) * 3));
}

TEST_F(PartitionTest, TempFilesAreRemovedOnOpen) {
  append();
  p_.reset();
  {
    auto f = env_.open_file(io::join_path(dir_, "00000000000000000003.log.tmp"), io::OpenMode::kCreateNew);
    ASSERT_TRUE(f.is_ok());
  }
  open();
  EXPECT_EQ(recovery_.removed_temp_files, 1);
  EXPECT_FALSE(env_.file_exists(io::join_path(dir_, "00000000000000000003.log.tmp")));
  expect_contents();
}

TEST_F(PartitionTest, OrphanIndexFilesAreRemovedOnOpen) {
  append();
  p_.reset();
  {
    auto f = env_.open_file(segment_path(999, SegmentFileKind::kOffsetIndex), io::OpenMode::kCreateNew);
    ASSERT_TRUE(f.is_ok());
  }
  open();
  EXPECT_FALSE(env_.file_exists(segment_path(999, SegmentFileKind::kOffsetIndex)));
  EXPECT_EQ(p_->segment_count(), 1u);
}

TEST_F(PartitionTest, UnsyncedDataMayVanishButSyncedDataStays) {
  append(3, 2);
  ASSERT_TRUE(p_->sync_all().is_ok());
  append(3, 2);  // not synced
  p_.reset();
  env_.crash();
  open();
  EXPECT_EQ(p_->high_watermark(), 6);
  expected_.resize(6);
  expect_contents();
  EXPECT_EQ(append().base_offset, 6);
}

// --- Full disk ---------------------------------------------------------------

TEST_F(PartitionTest, NoSpaceMidAppendLeavesThePartitionUsable) {
  options_.config.segment_bytes = 2048;
  open();
  for (int i = 0; i < 10; ++i) append(1, 3, 30);
  int64_t hw = p_->high_watermark();
  std::string batch = test::simple_batch(3, clock_.now_ms(), 30);
  env_.set_write_budget(int64_t(batch.size() / 2));
  auto r = p_->append(mutable_bytes(batch));
  EXPECT_EQ(r.status().code(), ErrorCode::kNoSpace) << r.status().to_string();
  EXPECT_EQ(p_->high_watermark(), hw);
  expect_contents();
  env_.set_write_budget(-1);
  for (int i = 0; i < 10; ++i) append(1, 3, 30);
  expect_contents();
  ASSERT_TRUE(p_->sync_all().is_ok());
  open();
  expect_contents();
}

// Sweeps the point where the disk fills across one append, so that it hits
// the creation of a new segment (when the append rolls), the log write and
// the index writes.
void PartitionTest::sweep_no_space(int warmup_appends, bool expect_roll) {
  options_.config.segment_bytes = 1024;
  options_.config.index_interval_bytes = 64;
  for (int64_t budget = 0; budget < 300; ++budget) {
    SCOPED_TRACE(::testing::Message() << "budget " << budget);
    dir_ = "/sweep/" + std::to_string(budget);
    expected_.clear();
    open();
    // Timestamps go up with every append, so that index entries add time entries too.
    for (int i = 0; i < warmup_appends; ++i) {
      clock_.advance_ms(1);
      append(1, 2, 30);
    }
    clock_.advance_ms(1);
    std::string batch = test::simple_batch(3, clock_.now_ms(), 30);
    auto active = p_->segments().back();
    ASSERT_EQ(active->size_bytes() + batch.size() > 1024, expect_roll);
    int64_t hw = p_->high_watermark();
    env_.set_write_budget(budget);
    auto r = p_->append(mutable_bytes(batch));
    env_.set_write_budget(-1);
    if (r.is_ok()) {
      auto added = test::records_of(decode_batches(batch));  // append assigned the offsets in place
      ASSERT_EQ(added.front().offset, hw);
      expected_.insert(expected_.end(), added.begin(), added.end());
    } else {
      EXPECT_EQ(r.status().code(), ErrorCode::kNoSpace) << r.status().to_string();
      EXPECT_EQ(p_->high_watermark(), hw);
    }
    expect_contents();
    for (int i = 0; i < 3; ++i) {
      clock_.advance_ms(1);
      append(1, 2, 30);
    }
    expect_contents();
    expect_every_offset_readable();
    ASSERT_TRUE(p_->sync_all().is_ok());
    open();
    expect_contents();
    expect_every_offset_readable();
    open(/*recover_active=*/false);
    expect_contents();
    expect_every_offset_readable();
    if (HasFailure()) break;
  }
}

TEST_F(PartitionTest, NoSpaceAtEveryPointOfARollingAppend) { sweep_no_space(6, true); }
TEST_F(PartitionTest, NoSpaceAtEveryPointOfAnIndexedAppend) { sweep_no_space(2, false); }

TEST_F(PartitionTest, RemoveAllDeletesTheDirectory) {
  append();
  ASSERT_TRUE(p_->remove_all().is_ok());
  EXPECT_FALSE(env_.dir_exists(dir_));
  std::string batch = test::simple_batch(1, 0);
  EXPECT_FALSE(p_->append(mutable_bytes(batch)).is_ok());
}

}  // namespace
}  // namespace evert::log
