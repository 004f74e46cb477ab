// Read-only verification of a data directory: every batch's length, magic,
// offsets and CRC32C, and every index entry against the batches. Changes
// nothing on disk (recovery is Partition::open's job).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "io/env.h"

namespace evert::log {

struct CheckReport {
  int topics = 0;
  int partitions = 0;
  int segments = 0;
  int64_t batches = 0;
  int64_t records = 0;
  uint64_t bytes = 0;
  std::vector<std::string> problems;  // "file at byte N: what is wrong"
  bool ok() const { return problems.empty(); }
};

// Checks one partition directory, adding to `report`.
Status check_partition_dir(io::Env& env, const std::string& dir, CheckReport* report);
// Checks every topic and partition under a data directory.
Result<CheckReport> check_data_dir(io::Env& env, const std::string& data_dir);

}  // namespace evert::log
