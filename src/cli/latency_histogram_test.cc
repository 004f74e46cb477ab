#include "cli/latency_histogram.h"

#include <gtest/gtest.h>

#include <memory>

namespace evert::cli {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  auto h = std::make_unique<LatencyHistogram>();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->quantile_ns(0.5), 0u);
  EXPECT_EQ(h->max_ns(), 0u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  auto h = std::make_unique<LatencyHistogram>();
  for (uint64_t v = 1; v <= 100; ++v) h->record(v);
  EXPECT_EQ(h->quantile_ns(0.5), 50u);
  EXPECT_EQ(h->quantile_ns(0.99), 99u);
  EXPECT_EQ(h->quantile_ns(1.0), 100u);
  EXPECT_EQ(h->max_ns(), 100u);
}

TEST(LatencyHistogramTest, BucketsAreContiguousAndCoverTheRange) {
  for (size_t i = 1; i < LatencyHistogram::kBuckets; ++i) {
    uint64_t low = LatencyHistogram::lowest_of(i);
    ASSERT_EQ(LatencyHistogram::index_of(low), i);
    ASSERT_EQ(LatencyHistogram::index_of(low - 1), i - 1);
  }
  EXPECT_EQ(LatencyHistogram::index_of(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogramTest, QuantilesWithinOnePercent) {
  auto h = std::make_unique<LatencyHistogram>();
  // 1 us .. 10 ms in 1 us steps: the true p-th quantile is p * 10 ms.
  for (uint64_t us = 1; us <= 10'000; ++us) h->record(us * 1000);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double want = q * 10'000'000;
    EXPECT_NEAR(double(h->quantile_ns(q)), want, want * 0.01) << q;
  }
  EXPECT_EQ(h->max_ns(), 10'000'000u);
}

TEST(LatencyHistogramTest, MergeAddsCounts) {
  auto a = std::make_unique<LatencyHistogram>();
  auto b = std::make_unique<LatencyHistogram>();
  a->record(10);
  b->record(1'000'000);
  a->merge(*b);
  EXPECT_EQ(a->count(), 2u);
  EXPECT_EQ(a->max_ns(), 1'000'000u);
  a->reset();
  EXPECT_EQ(a->count(), 0u);
}

}  // namespace
}  // namespace evert::cli
