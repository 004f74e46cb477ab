#include "kafka/server/group_coordinator.h"

#include <gtest/gtest.h>

#include <future>

#include "testing/mem_env.h"

namespace evert::kafka {
namespace {

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  void open() {
    log::LogOptions lo;
    lo.data_dir = "/data";
    lo.env = &env_;
    lo.clock = &clock_;
    lo.background = false;
    log::OpenReport report;
    auto log = log::LogManager::open(lo, &report);
    ASSERT_TRUE(log.is_ok()) << log.status().to_string();
    log_ = std::move(log).value();
    GroupConfig gc;
    gc.offsets_topic_segment_bytes = 16 * 1024;
    gc.offsets_topic_compact_bytes = 64 * 1024;
    auto c = GroupCoordinator::open(log_.get(), gc, &clock_);
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    coordinator_ = std::move(c).value();
  }

  void close() {
    coordinator_.reset();
    ASSERT_TRUE(log_->close().is_ok());
    log_.reset();
  }

  std::vector<int16_t> commit(const std::string& group, std::vector<CommitEntry> entries) {
    std::promise<std::vector<int16_t>> done;
    coordinator_->commit_offsets(group, -1, "", std::nullopt, std::move(entries),
                                 [&](std::vector<int16_t> codes) { done.set_value(codes); });
    return done.get_future().get();
  }

  testing::MemEnv env_;
  ManualClock clock_;
  std::unique_ptr<log::LogManager> log_;
  std::unique_ptr<GroupCoordinator> coordinator_;
};

TEST_F(GroupCoordinatorTest, CommittedOffsetsSurviveReopen) {
  open();
  auto codes = commit("g", {{"t", 0, 42, std::string("meta")}, {"t", 1, 7, std::nullopt}});
  EXPECT_EQ(codes, (std::vector<int16_t>{0, 0}));
  close();
  open();
  auto offsets = coordinator_->fetch_offsets("g", std::nullopt);
  ASSERT_EQ(offsets.size(), 2u);
  EXPECT_EQ(offsets[0].offset, 42);
  EXPECT_EQ(offsets[0].metadata, std::optional<std::string>("meta"));
  EXPECT_EQ(offsets[1].offset, 7);
  auto missing = coordinator_->fetch_offsets("nobody", std::vector<std::pair<std::string, int32_t>>{{"t", 0}});
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].offset, -1);
  close();
}

TEST_F(GroupCoordinatorTest, InternalTopicStaysBoundedAndKeepsTheLatestState) {
  open();
  constexpr int kPartitions = 40;
  constexpr int kRounds = 300;
  uint64_t largest = 0;
  for (int round = 1; round <= kRounds; ++round) {
    std::vector<CommitEntry> entries;
    for (int p = 0; p < kPartitions; ++p) entries.push_back({"orders", p, int64_t(round) * 100 + p, std::nullopt});
    ASSERT_EQ(commit("g", entries), std::vector<int16_t>(kPartitions, 0));
    largest = std::max<uint64_t>(largest, log_->partition(kOffsetsTopic, 0)->size_bytes());
  }
  auto partition = log_->partition(kOffsetsTopic, 0);
  // About 1 MiB was written in all; without trimming it would all still be there.
  EXPECT_GT(partition->log_start_offset(), 0);
  EXPECT_LT(largest, 4u * 64 * 1024);
  close();
  open();
  auto offsets = coordinator_->fetch_offsets("g", std::nullopt);
  ASSERT_EQ(offsets.size(), size_t(kPartitions));
  for (const auto& f : offsets) EXPECT_EQ(f.offset, int64_t(kRounds) * 100 + f.partition);
  close();
}

TEST_F(GroupCoordinatorTest, DeletedGroupStaysDeletedAfterReopen) {
  open();
  commit("gone", {{"t", 0, 5, std::nullopt}});
  EXPECT_EQ(coordinator_->delete_group("gone"), 0);
  EXPECT_EQ(coordinator_->delete_group("gone"), 69);  // GROUP_ID_NOT_FOUND
  close();
  open();
  EXPECT_TRUE(coordinator_->fetch_offsets("gone", std::nullopt).empty());
  EXPECT_EQ(coordinator_->describe("gone").state, "Dead");
  close();
}

}  // namespace
}  // namespace evert::kafka
