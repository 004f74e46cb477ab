#include "log/log_manager.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "log/file_names.h"
#include "log/log_test_util.h"
#include "testing/mem_env.h"
#include "testing/temp_dir.h"

namespace evert::log {
namespace {

using evert::testing::MemEnv;
using test::must_append;
using test::read_all_records;
using test::simple_batch;

const std::string kData = "/data";

class LogManagerTest : public ::testing::Test {
 protected:
  LogManagerTest() {
    options_.data_dir = kData;
    options_.env = &env_;
    options_.clock = &clock_;
    options_.background = false;
    options_.flush.kind = FlushPolicy::Kind::kNone;
    options_.sync_threads = 1;
  }
  void SetUp() override { open(); }

  void open() {
    m_.reset();
    report_ = OpenReport();
    auto m = LogManager::open(options_, &report_);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    m_ = std::move(m).value();
  }

  // A power cut while the manager runs: what was not durable is gone, and
  // nothing the dying process does afterwards reaches the disk.
  void power_cut(uint64_t seed = 0) {
    env_.crash(seed);
    env_.set_fail_syncs(true);
    m_.reset();
    env_.set_fail_syncs(false);
    env_.crash();
  }

  void create(const std::string& name, int32_t partitions = 1, const ConfigOverrides& overrides = {}) {
    auto info = m_->create_topic(name, partitions, overrides);
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  }

  int64_t append(const std::string& topic, int32_t partition, int records = 3) {
    auto p = m_->partition(topic, partition);
    EXPECT_NE(p, nullptr);
    if (!p) return -1;
    return must_append(*p, simple_batch(records, clock_.now_ms())).base_offset;
  }

  bool has_problem(const std::string& part) const {
    for (const auto& p : report_.problems)
      if (p.find(part) != std::string::npos) return true;
    return false;
  }

  MemEnv env_;
  ManualClock clock_;
  LogOptions options_;
  OpenReport report_;
  std::unique_ptr<LogManager> m_;
};

TEST_F(LogManagerTest, CreateTopicMakesItsPartitions) {
  auto info = m_->create_topic("orders", 3, {{"retention.ms", "60000"}});
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->name, "orders");
  EXPECT_EQ(info->partitions, 3);
  EXPECT_EQ(info->config.retention_ms, 60000);
  EXPECT_EQ(m_->topic_names(), std::vector<std::string>{"orders"});
  auto described = m_->describe_topic("orders");
  ASSERT_TRUE(described);
  EXPECT_EQ(described->overrides, (ConfigOverrides{{"retention.ms", "60000"}}));
  for (int32_t i = 0; i < 3; ++i) {
    ASSERT_NE(m_->partition("orders", i), nullptr);
    EXPECT_TRUE(env_.dir_exists(partition_dir(kData, "orders", i)));
    EXPECT_EQ(m_->partition("orders", i)->config().retention_ms, 60000);
  }
  EXPECT_EQ(m_->partition("orders", 3), nullptr);
  EXPECT_EQ(m_->partition("orders", -1), nullptr);
  EXPECT_EQ(m_->partition("nope", 0), nullptr);
  EXPECT_TRUE(env_.file_exists(topic_meta_path(kData, "orders")));
  EXPECT_FALSE(m_->describe_topic("nope"));
}

TEST_F(LogManagerTest, CreateTopicRejectsBadInput) {
  for (std::string bad : {std::string(""), std::string("a/b"), std::string(".."), std::string("."),
                          std::string("sp ace"), std::string(250, 'x')}) {
    EXPECT_EQ(m_->create_topic(bad, 1, {}).status().code(), ErrorCode::kInvalidArgument) << "'" << bad << "'";
  }
  EXPECT_TRUE(m_->create_topic(std::string(249, 'x'), 1, {}).is_ok());
  EXPECT_EQ(m_->create_topic("t", 0, {}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(m_->create_topic("t", kPartitionsMax + 1, {}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(m_->create_topic("t", 1, {{"no.such.config", "1"}}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(m_->create_topic("t", 1, {{"retention.ms", "soon"}}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(env_.dir_exists(topic_dir(kData, "t")));
  create("t");
  EXPECT_EQ(m_->create_topic("t", 1, {}).status().code(), ErrorCode::kAlreadyExists);
}

TEST_F(LogManagerTest, TopicsPersistAcrossReopen) {
  create("a", 2, {{"retention.ms", "1000000"}});
  create("b");
  append("a", 1, 5);
  append("a", 1, 2);
  append("b", 0);
  ASSERT_TRUE(m_->alter_config("a", {{"segment.bytes", "100000"}}, true).is_ok());
  ASSERT_TRUE(m_->add_partitions("a", 4).is_ok());
  append("a", 3, 4);
  ASSERT_TRUE(m_->delete_topic("b").is_ok());
  auto records_a1 = read_all_records(*m_->partition("a", 1));
  ASSERT_TRUE(m_->close().is_ok());
  open();
  EXPECT_TRUE(report_.clean_shutdown);
  EXPECT_EQ(report_.topics, 1);
  EXPECT_EQ(report_.partitions, 4);
  EXPECT_EQ(report_.records, 11);
  EXPECT_TRUE(report_.problems.empty());
  EXPECT_EQ(m_->topic_names(), std::vector<std::string>{"a"});
  auto a = m_->describe_topic("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->partitions, 4);
  EXPECT_EQ(a->overrides, (ConfigOverrides{{"retention.ms", "1000000"}, {"segment.bytes", "100000"}}));
  EXPECT_EQ(a->config.segment_bytes, 100000);
  EXPECT_EQ(m_->partition("a", 1)->config().segment_bytes, 100000);
  EXPECT_EQ(read_all_records(*m_->partition("a", 1)), records_a1);
  EXPECT_EQ(m_->partition("a", 3)->high_watermark(), 4);
  EXPECT_EQ(m_->partition("a", 0)->high_watermark(), 0);
  EXPECT_FALSE(env_.dir_exists(topic_dir(kData, "b")));
}

TEST_F(LogManagerTest, AdminChangesSurviveAPowerCut) {
  create("a", 1);
  create("b", 2);
  create("c");
  ASSERT_TRUE(m_->alter_config("a", {{"retention.ms", "5000"}}, false).is_ok());
  ASSERT_TRUE(m_->add_partitions("b", 3).is_ok());
  ASSERT_TRUE(m_->delete_topic("c").is_ok());
  power_cut();
  open();
  EXPECT_FALSE(report_.clean_shutdown);
  EXPECT_EQ(m_->topic_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(m_->describe_topic("a")->config.retention_ms, 5000);
  EXPECT_EQ(m_->describe_topic("b")->partitions, 3);
  EXPECT_NE(m_->partition("b", 2), nullptr);
}

TEST_F(LogManagerTest, IncompleteTopicDirectoryIsRemovedAtOpen) {
  create("real");
  ASSERT_TRUE(m_->close().is_ok());
  ASSERT_TRUE(io::create_dirs(env_, partition_dir(kData, "ghost", 0)).is_ok());
  open();
  EXPECT_FALSE(env_.dir_exists(topic_dir(kData, "ghost")));
  EXPECT_TRUE(has_problem("ghost"));
  EXPECT_EQ(m_->topic_names(), std::vector<std::string>{"real"});
}

TEST_F(LogManagerTest, TopicWithoutMetaAfterAPowerCutDuringDeleteIsGone) {
  create("t", 2);
  append("t", 0);
  ASSERT_TRUE(m_->close().is_ok());
  // Deletion removes topic.meta first; a cut right after leaves the data.
  ASSERT_TRUE(env_.remove_file(topic_meta_path(kData, "t")).is_ok());
  open();
  EXPECT_TRUE(m_->topic_names().empty());
  EXPECT_FALSE(env_.dir_exists(topic_dir(kData, "t")));
  create("t");  // the name is free again, and the new topic starts empty
  EXPECT_EQ(m_->partition("t", 0)->high_watermark(), 0);
}

TEST_F(LogManagerTest, PartitionDirectoryBeyondTheCountIsRemoved) {
  create("t", 2);
  ASSERT_TRUE(m_->close().is_ok());
  ASSERT_TRUE(io::create_dirs(env_, partition_dir(kData, "t", 2)).is_ok());
  open();
  EXPECT_FALSE(env_.dir_exists(partition_dir(kData, "t", 2)));
  EXPECT_TRUE(has_problem("removed partition 2 of t"));
  EXPECT_EQ(m_->describe_topic("t")->partitions, 2);
}

TEST_F(LogManagerTest, CleanShutdownMarker) {
  EXPECT_FALSE(report_.clean_shutdown);  // a brand-new directory
  const std::string marker = clean_shutdown_path(kData);
  EXPECT_FALSE(env_.file_exists(marker));
  ASSERT_TRUE(m_->close().is_ok());
  EXPECT_TRUE(env_.file_exists(marker));
  EXPECT_TRUE(m_->close().is_ok());  // closing twice is harmless
  open();
  EXPECT_TRUE(report_.clean_shutdown);
  EXPECT_FALSE(env_.file_exists(marker));  // running: a crash from here on is unclean
  power_cut();
  EXPECT_FALSE(env_.file_exists(marker));
  open();
  EXPECT_FALSE(report_.clean_shutdown);
  m_.reset();  // the destructor closes cleanly too
  EXPECT_TRUE(env_.file_exists(marker));
  open();
  EXPECT_TRUE(report_.clean_shutdown);
}

TEST_F(LogManagerTest, UncleanOpenRepairsTheActiveSegment) {
  create("t");
  for (int i = 0; i < 5; ++i) append("t", 0);
  ASSERT_TRUE(m_->close().is_ok());
  std::string log = io::join_path(partition_dir(kData, "t", 0), segment_file_name(0, SegmentFileKind::kLog));
  std::string bytes = *env_.contents(log);
  ASSERT_TRUE(env_.set_contents(log, bytes.substr(0, bytes.size() - 10)).is_ok());
  ASSERT_TRUE(env_.remove_file(clean_shutdown_path(kData)).is_ok());
  open();
  EXPECT_FALSE(report_.clean_shutdown);
  EXPECT_TRUE(has_problem(log)) << (report_.problems.empty() ? "" : report_.problems[0]);
  EXPECT_EQ(m_->partition("t", 0)->high_watermark(), 12);
  EXPECT_EQ(read_all_records(*m_->partition("t", 0)).size(), 12u);
}

TEST_F(LogManagerTest, CleanOpenTrustsSegmentsUnlessAskedToVerify) {
  create("t");
  for (int i = 0; i < 5; ++i) append("t", 0);
  ASSERT_TRUE(m_->close().is_ok());
  std::string log = io::join_path(partition_dir(kData, "t", 0), segment_file_name(0, SegmentFileKind::kLog));
  ASSERT_TRUE(env_.flip_bit(log, *env_.file_size(log) - 3, 2).is_ok());
  open();
  EXPECT_TRUE(report_.clean_shutdown);
  EXPECT_TRUE(report_.problems.empty());  // headers are fine; CRCs are not checked
  EXPECT_EQ(m_->partition("t", 0)->high_watermark(), 15);
  ASSERT_TRUE(m_->close().is_ok());
  options_.verify_all_on_open = true;
  open();
  EXPECT_TRUE(has_problem("CRC")) << (report_.problems.empty() ? "" : report_.problems[0]);
  EXPECT_EQ(m_->partition("t", 0)->high_watermark(), 12);
}

TEST_F(LogManagerTest, SyncedDataSurvivesAPowerCutUnsyncedMayNot) {
  create("t");
  for (int i = 0; i < 4; ++i) append("t", 0);
  ASSERT_TRUE(m_->flush_all().is_ok());
  EXPECT_EQ(m_->partition("t", 0)->durable_offset(), 12);
  for (int i = 0; i < 4; ++i) append("t", 0);
  EXPECT_EQ(m_->partition("t", 0)->durable_offset(), 12);
  power_cut(77);
  open();
  auto p = m_->partition("t", 0);
  EXPECT_GE(p->high_watermark(), 12);
  EXPECT_LE(p->high_watermark(), 24);
  EXPECT_EQ(p->high_watermark() % 3, 0);  // whole batches only
  EXPECT_EQ(int64_t(read_all_records(*p).size()), p->high_watermark());
}

TEST_F(LogManagerTest, SecondOpenOfTheSameDirectoryIsRefused) {
  OpenReport report;
  auto second = LogManager::open(options_, &report);
  EXPECT_EQ(second.status().code(), ErrorCode::kBusy);
  // The failed open must not have marked the directory clean behind our back.
  EXPECT_FALSE(env_.file_exists(clean_shutdown_path(kData)));
  ASSERT_TRUE(m_->close().is_ok());
  auto third = LogManager::open(options_, &report);
  EXPECT_TRUE(third.is_ok()) << third.status().to_string();
}

TEST_F(LogManagerTest, AlterConfig) {
  create("t", 2, {{"retention.ms", "1000"}, {"segment.ms", "2000"}});
  // Incremental: merge, and an empty value removes the override.
  ASSERT_TRUE(m_->alter_config("t", {{"retention.bytes", "4096"}, {"segment.ms", ""}}, true).is_ok());
  auto t = m_->describe_topic("t");
  EXPECT_EQ(t->overrides, (ConfigOverrides{{"retention.bytes", "4096"}, {"retention.ms", "1000"}}));
  EXPECT_EQ(t->config.segment_ms, options_.defaults.segment_ms);
  EXPECT_EQ(m_->partition("t", 1)->config().retention_bytes, 4096);
  // Replace: only what is given stays.
  ASSERT_TRUE(m_->alter_config("t", {{"max.message.bytes", "2000"}}, false).is_ok());
  t = m_->describe_topic("t");
  EXPECT_EQ(t->overrides, (ConfigOverrides{{"max.message.bytes", "2000"}}));
  EXPECT_EQ(m_->partition("t", 0)->config().retention_ms, options_.defaults.retention_ms);
  EXPECT_EQ(m_->partition("t", 0)->config().max_message_bytes, 2000);
  // Invalid: nothing changes.
  EXPECT_EQ(m_->alter_config("t", {{"retention.ms", "-5"}}, true).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(m_->alter_config("t", {{"bogus", "1"}}, false).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(m_->describe_topic("t")->overrides, (ConfigOverrides{{"max.message.bytes", "2000"}}));
  EXPECT_EQ(m_->alter_config("nope", {}, true).code(), ErrorCode::kNotFound);
}

TEST_F(LogManagerTest, AddPartitions) {
  create("t", 2);
  EXPECT_EQ(m_->add_partitions("t", 2).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(m_->add_partitions("t", 1).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(m_->add_partitions("t", kPartitionsMax + 1).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(m_->add_partitions("nope", 5).code(), ErrorCode::kNotFound);
  auto p0 = m_->partition("t", 0);
  append("t", 0);
  ASSERT_TRUE(m_->add_partitions("t", 5).is_ok());
  EXPECT_EQ(m_->describe_topic("t")->partitions, 5);
  EXPECT_EQ(m_->partition("t", 0), p0);  // existing partitions are kept as they are
  EXPECT_EQ(p0->high_watermark(), 3);
  EXPECT_NE(m_->partition("t", 4), nullptr);
}

TEST_F(LogManagerTest, DeleteTopic) {
  create("t", 2);
  append("t", 1);
  auto held = m_->partition("t", 1);
  ASSERT_TRUE(m_->delete_topic("t").is_ok());
  EXPECT_EQ(m_->delete_topic("t").code(), ErrorCode::kNotFound);
  EXPECT_EQ(m_->partition("t", 1), nullptr);
  EXPECT_FALSE(m_->describe_topic("t"));
  EXPECT_FALSE(env_.dir_exists(topic_dir(kData, "t")));
  // A caller still holding the partition gets errors, not a crash.
  std::string batch = simple_batch(1, 0);
  EXPECT_FALSE(held->append(test::mutable_bytes(batch)).is_ok());
  create("t", 1);
  EXPECT_EQ(m_->partition("t", 0)->high_watermark(), 0);
}

TEST_F(LogManagerTest, EnforceRetentionAcrossTopics) {
  create("short", 1, {{"retention.ms", "1000"}});
  create("long", 1);
  append("short", 0);
  append("long", 0);
  ASSERT_TRUE(m_->partition("short", 0)->roll().is_ok());
  ASSERT_TRUE(m_->partition("long", 0)->roll().is_ok());
  append("short", 0);
  clock_.advance_ms(5000);
  auto deleted = m_->enforce_retention();
  ASSERT_TRUE(deleted.is_ok());
  EXPECT_EQ(*deleted, 2);  // short's two segments; long keeps its data
  EXPECT_EQ(m_->partition("short", 0)->log_start_offset(), 6);
  EXPECT_EQ(m_->partition("long", 0)->log_start_offset(), 0);
}

TEST_F(LogManagerTest, FlushAllMakesEverythingDurable) {
  create("a", 2);
  append("a", 0);
  append("a", 1);
  EXPECT_EQ(m_->partition("a", 0)->durable_offset(), 0);
  ASSERT_TRUE(m_->flush_all().is_ok());
  EXPECT_EQ(m_->partition("a", 0)->durable_offset(), 3);
  EXPECT_EQ(m_->partition("a", 1)->durable_offset(), 3);
}

TEST_F(LogManagerTest, FailedFlushOnCloseLeavesTheShutdownUnclean) {
  create("a");
  append("a", 0);
  env_.set_fail_syncs(true);
  EXPECT_FALSE(m_->close().is_ok());
  env_.set_fail_syncs(false);
  EXPECT_FALSE(env_.file_exists(clean_shutdown_path(kData)));
}

TEST_F(LogManagerTest, ServerDefaultsApply) {
  ASSERT_TRUE(m_->close().is_ok());
  options_.defaults.retention_ms = 42;
  open();
  create("t", 1, {{"segment.bytes", "2048"}});
  auto t = m_->describe_topic("t");
  EXPECT_EQ(t->config.retention_ms, 42);
  EXPECT_EQ(t->config.segment_bytes, 2048);
}

TEST(LogManagerPosix, RoundTripOnTheRealFileSystem) {
  evert::testing::TempDir dir;
  LogOptions options;
  options.data_dir = dir.path() + "/data";
  options.background = false;
  {
    OpenReport report;
    auto m = LogManager::open(options, &report);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    ASSERT_TRUE((*m)->create_topic("t", 2, {{"segment.bytes", "1024"}}).is_ok());
    for (int i = 0; i < 50; ++i) must_append(*(*m)->partition("t", i % 2), simple_batch(3, 1'700'000'000'000 + i));
    ASSERT_TRUE((*m)->close().is_ok());
  }
  OpenReport report;
  auto m = LogManager::open(options, &report);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_TRUE(report.clean_shutdown);
  EXPECT_EQ(report.records, 150);
  EXPECT_GT(report.segments, 4);
  auto p = (*m)->partition("t", 1);
  EXPECT_EQ(read_all_records(*p).size(), 75u);
  EXPECT_EQ(*p->offset_for_timestamp(1'700'000'000'000 + 49), std::optional<int64_t>(72));
}

}  // namespace
}  // namespace evert::log
