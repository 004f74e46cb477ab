// Reads a whole partition back the way a consumer would (Partition::read,
// offset after offset), for tests that compare it with what was written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "log/partition.h"

namespace evert::testing {

struct StoredBatch {
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  std::string bytes;  // the whole batch as stored
};

// Every batch from the log start offset to the high watermark, in order.
// Fails when a read errors, returns nothing below the high watermark, or
// returns batches that do not move forward. Gaps (offsets cut by recovery)
// are allowed; callers check contiguity when they expect it.
Result<std::vector<StoredBatch>> read_partition(const log::Partition& partition);

}  // namespace evert::testing
