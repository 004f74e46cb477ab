// A fixed-size log-linear histogram of latencies in nanoseconds, for the
// `bench` commands: recording is O(1) with no allocation, and quantiles are
// within 1/kSubBuckets (0.8%) of the true value. Values below kSubBuckets ns
// are exact. Not thread-safe: one writer, or merge() per-thread copies.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace evert::cli {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t(1) << kSubBucketBits;
  // Octaves above the exact range, up to 2^64 ns.
  static constexpr size_t kBuckets = size_t(64 - kSubBucketBits + 1) * kSubBuckets;

  void record(uint64_t ns) {
    ++counts_[index_of(ns)];
    ++count_;
    max_ns_ = std::max(max_ns_, ns);
  }

  void merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ns_ = std::max(max_ns_, other.max_ns_);
  }

  void reset() { *this = LatencyHistogram(); }

  uint64_t count() const { return count_; }
  uint64_t max_ns() const { return max_ns_; }

  // The value at quantile q in [0, 1] (0.99 = p99); 0 when empty. Reports the
  // middle of the bucket holding it, never more than the maximum seen.
  uint64_t quantile_ns(double q) const {
    if (count_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    uint64_t rank = std::max<uint64_t>(1, uint64_t(q * double(count_) + 0.999999));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(max_ns_, middle_of(i));
    }
    return max_ns_;
  }

  static size_t index_of(uint64_t ns) {
    if (ns < kSubBuckets) return size_t(ns);
    int msb = 63 - std::countl_zero(ns);  // >= kSubBucketBits
    int shift = msb - kSubBucketBits;
    uint64_t top = ns >> shift;  // in [kSubBuckets, 2 * kSubBuckets)
    return size_t(shift + 1) * kSubBuckets + size_t(top - kSubBuckets);
  }

  static uint64_t lowest_of(size_t index) {
    if (index < kSubBuckets) return index;
    size_t group = index / kSubBuckets;  // >= 1
    uint64_t sub = index % kSubBuckets;
    return (kSubBuckets + sub) << (group - 1);
  }

  static uint64_t middle_of(size_t index) {
    if (index < kSubBuckets) return index;
    size_t group = index / kSubBuckets;
    return lowest_of(index) + ((uint64_t(1) << (group - 1)) >> 1);
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t max_ns_ = 0;
};

}  // namespace evert::cli
