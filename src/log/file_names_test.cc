#include "log/file_names.h"

#include <gtest/gtest.h>

#include <string>

namespace evert::log {
namespace {

TEST(FileNames, SegmentFilesRoundTrip) {
  EXPECT_EQ(segment_file_name(0, SegmentFileKind::kLog), "00000000000000000000.log");
  EXPECT_EQ(segment_file_name(1234, SegmentFileKind::kOffsetIndex), "00000000000000001234.index");
  EXPECT_EQ(segment_file_name(INT64_MAX, SegmentFileKind::kTimeIndex), "09223372036854775807.timeindex");
  for (int64_t base : {int64_t(0), int64_t(1), int64_t(99'999'999'999), INT64_MAX}) {
    for (auto kind : {SegmentFileKind::kLog, SegmentFileKind::kOffsetIndex, SegmentFileKind::kTimeIndex}) {
      auto parsed = parse_segment_file_name(segment_file_name(base, kind));
      ASSERT_TRUE(parsed) << segment_file_name(base, kind);
      EXPECT_EQ(parsed->base_offset, base);
      EXPECT_EQ(parsed->kind, kind);
    }
  }
}

TEST(FileNames, OtherNamesAreNotSegments) {
  for (const char* name : {"", "00000000000000000000", "0000000000000000000.log", "000000000000000000000.log",
                           "0000000000000000000x.log", "00000000000000000000.log.tmp", "00000000000000000000.logs",
                           "00000000000000000000.log.damaged-12", "-0000000000000000001.log", "topic.meta",
                           "+0000000000000000001.log"}) {
    EXPECT_FALSE(parse_segment_file_name(name)) << name;
  }
  EXPECT_EQ(damaged_file_name(5, 4096), "00000000000000000005.log.damaged-4096");
}

TEST(FileNames, TempFiles) {
  EXPECT_TRUE(is_temp_file_name("topic.meta.tmp"));
  EXPECT_TRUE(is_temp_file_name("00000000000000000003.log.tmp"));
  EXPECT_FALSE(is_temp_file_name("00000000000000000003.log"));
  EXPECT_FALSE(is_temp_file_name("tmp"));
}

TEST(FileNames, DataDirectoryLayout) {
  EXPECT_EQ(topics_dir("/d"), "/d/topics");
  EXPECT_EQ(topic_dir("/d", "t"), "/d/topics/t");
  EXPECT_EQ(topic_meta_path("/d", "t"), "/d/topics/t/topic.meta");
  EXPECT_EQ(partition_dir("/d", "t", 7), "/d/topics/t/7");
  EXPECT_EQ(lock_file_path("/d"), "/d/.lock");
  EXPECT_EQ(clean_shutdown_path("/d"), "/d/.clean-shutdown");
}

TEST(FileNames, TopicNamesFollowKafka) {
  EXPECT_TRUE(is_valid_topic_name("orders"));
  EXPECT_TRUE(is_valid_topic_name("a.b_c-D9"));
  EXPECT_TRUE(is_valid_topic_name(std::string(249, 'a')));
  EXPECT_FALSE(is_valid_topic_name(std::string(250, 'a')));
  for (const char* bad : {"", ".", "..", "a/b", "a b", "ü", "a\\b", "a:b"}) EXPECT_FALSE(is_valid_topic_name(bad)) << bad;
}

TEST(FileNames, PartitionDirectoryNames) {
  EXPECT_EQ(parse_partition_dir_name("0"), std::optional<int32_t>(0));
  EXPECT_EQ(parse_partition_dir_name("17"), std::optional<int32_t>(17));
  EXPECT_EQ(parse_partition_dir_name("999999999"), std::optional<int32_t>(999999999));
  for (const char* bad : {"", "01", "-1", "1a", "a", "1234567890", "+1", " 1"})
    EXPECT_FALSE(parse_partition_dir_name(bad)) << bad;
}

}  // namespace
}  // namespace evert::log
