#include "log/offset_index.h"

#include <gtest/gtest.h>

#include <string>

#include "base/bytes.h"
#include "testing/mem_env.h"

namespace evert::log {
namespace {

namespace X = index_layout;
using evert::testing::MemEnv;

constexpr int64_t kBase = 1000;
const std::string kOffsetPath = "/p/00000000000000001000.index";
const std::string kTimePath = "/p/00000000000000001000.timeindex";

class OffsetIndexTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.create_dir("/p").is_ok()); }

  std::unique_ptr<SegmentIndex> create() {
    auto index = SegmentIndex::create(env_, kOffsetPath, kTimePath, kBase);
    EXPECT_TRUE(index.is_ok()) << index.status().to_string();
    return index.is_ok() ? std::move(index).value() : nullptr;
  }
  // Three entries: (1010 @ 100, ts <= 50), (1025 @ 300, ts <= 50: no time entry), (1040 @ 700, ts <= 90).
  std::unique_ptr<SegmentIndex> create_with_entries() {
    auto index = create();
    EXPECT_TRUE(index->add(1010, 100, 50).is_ok());
    EXPECT_TRUE(index->add(1025, 300, 50).is_ok());
    EXPECT_TRUE(index->add(1040, 700, 90).is_ok());
    return index;
  }
  Result<std::unique_ptr<SegmentIndex>> load(uint64_t segment_size = 10'000) {
    return SegmentIndex::load(env_, kOffsetPath, kTimePath, kBase, segment_size);
  }
  std::string file(const std::string& path) { return *env_.contents(path); }
  void overwrite(const std::string& path, const std::string& data) { ASSERT_TRUE(env_.set_contents(path, data).is_ok()); }

  MemEnv env_;
};

TEST_F(OffsetIndexTest, CreateWritesHeaders) {
  auto index = create();
  ASSERT_NE(index, nullptr);
  std::string o = file(kOffsetPath);
  ASSERT_EQ(o.size(), X::kHeaderSize);
  const auto* p = reinterpret_cast<const uint8_t*>(o.data());
  EXPECT_EQ(load_be32(p), X::kOffsetIndexMagic);
  EXPECT_EQ(load_be16(p + 4), X::kVersion);
  EXPECT_EQ(load_be16(p + 6), X::kOffsetEntrySize);
  EXPECT_EQ(int64_t(load_be64(p + 8)), kBase);
  std::string t = file(kTimePath);
  ASSERT_EQ(t.size(), X::kHeaderSize);
  p = reinterpret_cast<const uint8_t*>(t.data());
  EXPECT_EQ(load_be32(p), X::kTimeIndexMagic);
  EXPECT_EQ(load_be16(p + 6), X::kTimeEntrySize);
  EXPECT_EQ(index->entry_count(), 0u);
  EXPECT_FALSE(index->last_offset_entry());
  EXPECT_EQ(index->base_offset(), kBase);
}

TEST_F(OffsetIndexTest, EntriesAreLaidOutBigEndian) {
  auto index = create_with_entries();
  std::string o = file(kOffsetPath);
  ASSERT_EQ(o.size(), X::kHeaderSize + 3 * X::kOffsetEntrySize);
  const auto* p = reinterpret_cast<const uint8_t*>(o.data()) + X::kHeaderSize;
  EXPECT_EQ(load_be32(p), 10u);
  EXPECT_EQ(load_be32(p + 4), 100u);
  EXPECT_EQ(load_be32(p + 16), 40u);
  EXPECT_EQ(load_be32(p + 20), 700u);
  // The second entry did not raise the timestamp, so it has no time entry.
  std::string t = file(kTimePath);
  ASSERT_EQ(t.size(), X::kHeaderSize + 2 * X::kTimeEntrySize);
  const auto* q = reinterpret_cast<const uint8_t*>(t.data()) + X::kHeaderSize;
  EXPECT_EQ(int64_t(load_be64(q)), 50);
  EXPECT_EQ(load_be32(q + 8), 10u);
  EXPECT_EQ(int64_t(load_be64(q + 12)), 90);
  EXPECT_EQ(load_be32(q + 20), 40u);
}

TEST_F(OffsetIndexTest, LookupPositionFindsTheLastEntryAtOrBefore) {
  auto index = create_with_entries();
  EXPECT_EQ(index->lookup_position(0), 0u);  // below the base
  EXPECT_EQ(index->lookup_position(kBase), 0u);
  EXPECT_EQ(index->lookup_position(1009), 0u);
  EXPECT_EQ(index->lookup_position(1010), 100u);
  EXPECT_EQ(index->lookup_position(1024), 100u);
  EXPECT_EQ(index->lookup_position(1025), 300u);
  EXPECT_EQ(index->lookup_position(1039), 300u);
  EXPECT_EQ(index->lookup_position(1040), 700u);
  EXPECT_EQ(index->lookup_position(1'000'000), 700u);
  EXPECT_EQ(index->entry_count(), 3u);
  EXPECT_EQ(index->last_offset_entry()->relative_offset, 40u);
}

TEST_F(OffsetIndexTest, LookupTimeStartsAfterEverythingOlder) {
  auto index = create_with_entries();
  // Nothing is known to be older than 50: scan from the start.
  EXPECT_EQ(index->lookup_time(10), (std::pair<int64_t, uint32_t>{kBase, 0}));
  EXPECT_EQ(index->lookup_time(50), (std::pair<int64_t, uint32_t>{kBase, 0}));
  // Everything before 1010 is <= 50 < 51.
  EXPECT_EQ(index->lookup_time(51), (std::pair<int64_t, uint32_t>{1010, 100}));
  EXPECT_EQ(index->lookup_time(90), (std::pair<int64_t, uint32_t>{1010, 100}));
  EXPECT_EQ(index->lookup_time(91), (std::pair<int64_t, uint32_t>{1040, 700}));
}

TEST_F(OffsetIndexTest, LoadRoundTrips) {
  create_with_entries();
  auto loaded = load();
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  auto& index = **loaded;
  ASSERT_EQ(index.offset_entries().size(), 3u);
  EXPECT_EQ(index.time_entries().size(), 2u);
  EXPECT_EQ(index.lookup_position(1030), 300u);
  EXPECT_EQ(index.lookup_time(91), (std::pair<int64_t, uint32_t>{1040, 700}));
  // A loaded index keeps appending where the file ends.
  ASSERT_TRUE(index.add(1050, 900, 95).is_ok());
  auto again = load();
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ((*again)->entry_count(), 4u);
  EXPECT_EQ((*again)->time_entries().back().timestamp, 95);
}

TEST_F(OffsetIndexTest, ReadIndexFilesReturnsEntries) {
  create_with_entries();
  auto entries = read_index_files(env_, kOffsetPath, kTimePath, kBase, 10'000);
  ASSERT_TRUE(entries.is_ok());
  EXPECT_EQ(entries->offsets.size(), 3u);
  EXPECT_EQ(entries->times.size(), 2u);
}

TEST_F(OffsetIndexTest, TruncateToPositionDropsLaterEntries) {
  auto index = create_with_entries();
  ASSERT_TRUE(index->truncate_to_position(300).is_ok());
  EXPECT_EQ(index->entry_count(), 1u);
  EXPECT_EQ(index->lookup_position(1040), 100u);
  EXPECT_EQ(index->time_entries().size(), 1u);
  auto loaded = load();
  ASSERT_TRUE(loaded.is_ok());
  EXPECT_EQ((*loaded)->entry_count(), 1u);
  ASSERT_TRUE(index->truncate_to_position(0).is_ok());
  EXPECT_EQ(index->entry_count(), 0u);
  EXPECT_TRUE(index->time_entries().empty());
  EXPECT_EQ(file(kOffsetPath).size(), X::kHeaderSize);
}

// --- Load rejects damaged files, one test per case. ------------------------

TEST_F(OffsetIndexTest, LoadMissingFile) {
  EXPECT_EQ(load().status().code(), ErrorCode::kNotFound);
  create();
  ASSERT_TRUE(env_.remove_file(kTimePath).is_ok());
  EXPECT_EQ(load().status().code(), ErrorCode::kNotFound);
}

TEST_F(OffsetIndexTest, LoadShorterThanHeader) {
  create_with_entries();
  overwrite(kOffsetPath, file(kOffsetPath).substr(0, X::kHeaderSize - 1));
  EXPECT_EQ(load().status().code(), ErrorCode::kCorruption);
}

TEST_F(OffsetIndexTest, LoadBadMagic) {
  create_with_entries();
  ASSERT_TRUE(env_.flip_bit(kTimePath, 0, 0).is_ok());
  EXPECT_EQ(load().status().code(), ErrorCode::kCorruption);
}

TEST_F(OffsetIndexTest, LoadUnknownVersion) {
  create_with_entries();
  ASSERT_TRUE(env_.flip_bit(kOffsetPath, 5, 1).is_ok());
  EXPECT_EQ(load().status().code(), ErrorCode::kUnsupported);
}

TEST_F(OffsetIndexTest, LoadBadEntrySize) {
  create_with_entries();
  ASSERT_TRUE(env_.flip_bit(kOffsetPath, 7, 2).is_ok());
  EXPECT_EQ(load().status().code(), ErrorCode::kCorruption);
}

TEST_F(OffsetIndexTest, LoadWrongBaseOffset) {
  create_with_entries();
  ASSERT_TRUE(env_.flip_bit(kOffsetPath, 15, 0).is_ok());
  EXPECT_EQ(load().status().code(), ErrorCode::kCorruption);
}

TEST_F(OffsetIndexTest, LoadPartialTrailingEntry) {
  create_with_entries();
  std::string o = file(kOffsetPath);
  overwrite(kOffsetPath, o.substr(0, o.size() - 3));
  EXPECT_EQ(load().status().code(), ErrorCode::kCorruption);
}

TEST_F(OffsetIndexTest, LoadEntriesOutOfOrder) {
  create_with_entries();
  std::string o = file(kOffsetPath);
  // Swap the first two entries.
  std::string swapped = o.substr(0, X::kHeaderSize) + o.substr(X::kHeaderSize + 8, 8) + o.substr(X::kHeaderSize, 8) +
                        o.substr(X::kHeaderSize + 16);
  overwrite(kOffsetPath, swapped);
  EXPECT_EQ(load().status().code(), ErrorCode::kCorruption);
}

TEST_F(OffsetIndexTest, LoadTimeEntriesOutOfOrder) {
  create_with_entries();
  std::string t = file(kTimePath);
  std::string swapped = t.substr(0, X::kHeaderSize) + t.substr(X::kHeaderSize + 12, 12) + t.substr(X::kHeaderSize, 12);
  overwrite(kTimePath, swapped);
  EXPECT_EQ(load().status().code(), ErrorCode::kCorruption);
}

TEST_F(OffsetIndexTest, LoadEntryPastTheSegmentEnd) {
  create_with_entries();
  EXPECT_TRUE(load(701).is_ok());
  EXPECT_EQ(load(700).status().code(), ErrorCode::kCorruption);  // the last batch would start at the end
}

TEST_F(OffsetIndexTest, LoadTimeEntryNamingAnUnknownOffset) {
  create_with_entries();
  std::string o = file(kOffsetPath);
  overwrite(kOffsetPath, o.substr(0, X::kHeaderSize + 8));  // only (1010 @ 100) is left
  EXPECT_EQ(load().status().code(), ErrorCode::kCorruption);
}

}  // namespace
}  // namespace evert::log
