#include "views/parallel_decoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace evert::views {
namespace {

using Unit = ParallelDecoder::Unit;

// Every partition's records [from, to) are covered once, in order, by the
// stretches of that partition; none is empty or longer than `longest`.
void expect_covers(const std::vector<Unit>& units, const std::vector<int64_t>& from, const std::vector<int64_t>& to,
                   int64_t longest) {
  std::vector<int64_t> next(from);
  for (const Unit& u : units) {
    ASSERT_GE(u.partition, 0);
    ASSERT_LT(size_t(u.partition), from.size());
    EXPECT_EQ(u.from, next[size_t(u.partition)]) << "partition " << u.partition;
    EXPECT_LT(u.from, u.to);
    EXPECT_LE(u.to - u.from, longest);
    next[size_t(u.partition)] = u.to;
  }
  for (size_t p = 0; p < from.size(); ++p) EXPECT_EQ(next[p], std::max(from[p], to[p])) << "partition " << p;
}

TEST(SummingStretchesTest, ShortenTowardTheEndSoThreadsFinishTogether) {
  // The benchmark's backfill: one partition, two threads.
  const int64_t longest = int64_t(1) << 22;
  auto units = ParallelDecoder::summing_stretches({0}, {10'000'000}, 2, longest);
  expect_covers(units, {0}, {10'000'000}, longest);
  ASSERT_GE(units.size(), 6u);
  for (size_t i = 1; i < units.size(); ++i) {
    EXPECT_LE(units[i].to - units[i].from, units[i - 1].to - units[i - 1].from) << i;
  }
  // The last stretches are a small share of the whole.
  EXPECT_LE(units.back().to - units.back().from, 10'000'000 / 32);
  EXPECT_LE(units[units.size() - 2].to - units[units.size() - 2].from, 10'000'000 / 32);
}

TEST(SummingStretchesTest, LargeBackfillsStillEndInShortStretches) {
  // Far more records than threads * longest: the first stretches are the
  // longest allowed, the last no more than an eighth of it.
  const int64_t longest = int64_t(1) << 22;
  const int64_t total = int64_t(2) << 30;
  for (int threads : {1, 2, 16}) {
    auto units = ParallelDecoder::summing_stretches({0}, {total}, threads, longest);
    expect_covers(units, {0}, {total}, longest);
    EXPECT_EQ(units.front().to - units.front().from, longest) << threads;
    EXPECT_LE(units.back().to - units.back().from, longest / 8) << threads;
  }
}

TEST(SummingStretchesTest, PartitionsEmptyBackwardAndTiny) {
  // Partitions in turn; an empty one, one whose range is backward, and
  // totals smaller than the threads.
  std::vector<int64_t> from = {0, 5, 7, 100, 3};
  std::vector<int64_t> to = {1000, 5, 2, 100'000, 4};
  for (int threads : {1, 2, 16}) {
    for (int64_t longest : {int64_t(1), int64_t(3), int64_t(1000), int64_t(1) << 22}) {
      auto units = ParallelDecoder::summing_stretches(from, to, threads, longest);
      expect_covers(units, from, to, longest);
    }
  }
  EXPECT_TRUE(ParallelDecoder::summing_stretches({}, {}, 2, 100).empty());
  EXPECT_TRUE(ParallelDecoder::summing_stretches({4, 9}, {4, 2}, 2, 100).empty());
  auto one = ParallelDecoder::summing_stretches({41}, {42}, 16, 100);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].from, 41);
  EXPECT_EQ(one[0].to, 42);
  // Every partition moves on from the start: the first stretches are one
  // per partition with records.
  auto turns = ParallelDecoder::summing_stretches({0, 0, 0}, {1'000'000, 1'000'000, 1'000'000}, 2, 100'000);
  ASSERT_GE(turns.size(), 3u);
  EXPECT_EQ(turns[0].partition, 0);
  EXPECT_EQ(turns[1].partition, 1);
  EXPECT_EQ(turns[2].partition, 2);
}

TEST(SummingStretchesTest, RandomRangesAreCoveredExactly) {
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    size_t n = 1 + rng() % 6;
    std::vector<int64_t> from(n), to(n);
    for (size_t p = 0; p < n; ++p) {
      from[p] = rng() % 1000;
      to[p] = from[p] + int64_t(rng() % 50'000) - 100;
    }
    int threads = 1 + int(rng() % 4);
    int64_t longest = 1 + rng() % 20'000;
    expect_covers(ParallelDecoder::summing_stretches(from, to, threads, longest), from, to, longest);
  }
}

}  // namespace
}  // namespace evert::views
