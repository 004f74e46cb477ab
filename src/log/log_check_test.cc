#include "log/log_check.h"

#include <gtest/gtest.h>

#include <string>

#include "log/file_names.h"
#include "log/log_manager.h"
#include "log/log_test_util.h"
#include "testing/mem_env.h"

namespace evert::log {
namespace {

using evert::testing::MemEnv;

const std::string kData = "/data";

// Builds a data directory with two topics and several segments, then closes it.
class LogCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LogOptions options;
    options.data_dir = kData;
    options.env = &env_;
    options.clock = &clock_;
    options.background = false;
    options.sync_threads = 1;
    OpenReport report;
    auto m = LogManager::open(options, &report);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    ASSERT_TRUE((*m)->create_topic("a", 2, {{"segment.bytes", "1024"}, {"index.interval.bytes", "128"}}).is_ok());
    ASSERT_TRUE((*m)->create_topic("b", 1, {}).is_ok());
    for (int i = 0; i < 40; ++i) {
      test::must_append(*(*m)->partition("a", i % 2), test::simple_batch(2, clock_.now_ms()));
      clock_.advance_ms(1);
    }
    test::must_append(*(*m)->partition("b", 0), test::simple_batch(5, clock_.now_ms()));
    ASSERT_TRUE((*m)->close().is_ok());
  }

  std::string log_path(const std::string& topic, int32_t partition, int64_t base) const {
    return io::join_path(partition_dir(kData, topic, partition), segment_file_name(base, SegmentFileKind::kLog));
  }

  CheckReport check() {
    auto report = check_data_dir(env_, kData);
    EXPECT_TRUE(report.is_ok()) << report.status().to_string();
    return report.is_ok() ? *report : CheckReport();
  }

  MemEnv env_;
  ManualClock clock_;
};

std::string problems(const CheckReport& r) {
  std::string out;
  for (const auto& p : r.problems) out += p + "\n";
  return out;
}

TEST_F(LogCheckTest, GoodDirectoryIsOk) {
  CheckReport r = check();
  EXPECT_TRUE(r.ok()) << problems(r);
  EXPECT_EQ(r.topics, 2);
  EXPECT_EQ(r.partitions, 3);
  EXPECT_GT(r.segments, 3);
  EXPECT_EQ(r.batches, 41);
  EXPECT_EQ(r.records, 85);
  EXPECT_GT(r.bytes, 0u);
}

TEST_F(LogCheckTest, FlippedBitIsReportedWithFileAndPosition) {
  std::string path = log_path("a", 1, 0);
  std::string bytes = *env_.contents(path);
  // The third batch of the segment.
  size_t pos = 0;
  for (int i = 0; i < 2; ++i) pos += decode_batch_header(as_bytes(std::string_view(bytes).substr(pos))).total_size();
  size_t batch_size = decode_batch_header(as_bytes(std::string_view(bytes).substr(pos))).total_size();
  ASSERT_TRUE(env_.flip_bit(path, pos + batch_size - 4, 6).is_ok());
  CheckReport r = check();
  ASSERT_EQ(r.problems.size(), 1u) << problems(r);
  EXPECT_NE(r.problems[0].find(path + " at byte " + std::to_string(pos) + ":"), std::string::npos) << r.problems[0];
  EXPECT_NE(r.problems[0].find("CRC"), std::string::npos) << r.problems[0];
}

TEST_F(LogCheckTest, TornTailIsReported) {
  std::string path = log_path("b", 0, 0);
  std::string bytes = *env_.contents(path);
  ASSERT_TRUE(env_.set_contents(path, bytes.substr(0, bytes.size() - 7)).is_ok());
  CheckReport r = check();
  ASSERT_EQ(r.problems.size(), 1u) << problems(r);
  EXPECT_NE(r.problems[0].find(path + " at byte 0:"), std::string::npos) << r.problems[0];
}

TEST_F(LogCheckTest, BadIndexIsReported) {
  std::string index = io::join_path(partition_dir(kData, "a", 0), segment_file_name(0, SegmentFileKind::kOffsetIndex));
  std::string data = *env_.contents(index);
  ASSERT_GE(data.size(), index_layout::kHeaderSize + index_layout::kOffsetEntrySize);
  // Shift the first entry's position off its batch start.
  auto* p = reinterpret_cast<uint8_t*>(data.data()) + index_layout::kHeaderSize + 4;
  store_be32(p, load_be32(p) + 1);
  ASSERT_TRUE(env_.set_contents(index, data).is_ok());
  CheckReport r = check();
  ASSERT_EQ(r.problems.size(), 1u) << problems(r);
  EXPECT_NE(r.problems[0].find(index), std::string::npos) << r.problems[0];
  EXPECT_NE(r.problems[0].find("does not name a batch start"), std::string::npos) << r.problems[0];
}

TEST_F(LogCheckTest, MissingMetaAndPartitionAreReported) {
  ASSERT_TRUE(env_.remove_file(topic_meta_path(kData, "b")).is_ok());
  ASSERT_TRUE(io::remove_tree(env_, partition_dir(kData, "a", 1)).is_ok());
  CheckReport r = check();
  ASSERT_EQ(r.problems.size(), 2u) << problems(r);
  EXPECT_NE(problems(r).find(partition_dir(kData, "a", 1) + ": partition directory missing"), std::string::npos);
  EXPECT_NE(problems(r).find(topic_meta_path(kData, "b")), std::string::npos);
}

TEST_F(LogCheckTest, ChangesNothing) {
  std::string path = log_path("a", 0, 0);
  ASSERT_TRUE(env_.flip_bit(path, 70, 0).is_ok());
  std::string before = *env_.contents(path);
  check();
  EXPECT_EQ(*env_.contents(path), before);
}

TEST_F(LogCheckTest, NotADataDirectory) {
  EXPECT_EQ(check_data_dir(env_, "/elsewhere").status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace evert::log
