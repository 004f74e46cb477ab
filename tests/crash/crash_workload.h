// What the crash writer writes, shared with the test that checks it.
//
// Each acknowledged append is reported on the writer's stdout as one line,
// "<partition> <base offset> <last offset> <seed>\n" (written with a single
// write(2) below PIPE_BUF, so a line is never torn). The batch's bytes are
// testing::make_seeded_batch(seed) with that base offset.
#pragma once

#include <cstdint>
#include <string>

#include "log/topic_config.h"

namespace evert::crash {

inline constexpr const char* kTopic = "crash";
inline constexpr int32_t kPartitions = 3;
// Small segments so that rolls happen during the test; dense indexes so that
// recovery has entries to rebuild and lookups have entries to use.
inline const log::ConfigOverrides kTopicOverrides = {
    {"segment.bytes", "65536"},
    {"index.interval.bytes", "1024"},
    {"retention.ms", "-1"},  // seeded timestamps are years old
};
// A writer stops (and waits to be killed) after this many batches per
// partition, which bounds the data a run can leave.
inline constexpr uint32_t kBatchesPerRunMax = 4000;

// Seeds are unique across runs: run number, partition, sequence in the run.
inline uint64_t workload_seed(uint32_t run, int32_t partition, uint32_t sequence) {
  return (uint64_t(run) << 32) | (uint64_t(uint32_t(partition)) << 24) | sequence;
}
inline int32_t seed_partition(uint64_t seed) { return int32_t((seed >> 24) & 0xff); }

}  // namespace evert::crash
