// Hands out idempotent-producer ids that are never reused, across restarts:
// ids are reserved in blocks whose upper end is persisted (file
// `producer.ids` in the data directory: one decimal number, written
// atomically) before any id of the block is used.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "base/status.h"
#include "io/env.h"

namespace evert::kafka {

class ProducerIdAllocator {
 public:
  ProducerIdAllocator(io::Env* env, std::string path) : env_(env), path_(std::move(path)) {}
  Result<int64_t> next();

 private:
  static constexpr int64_t kBlock = 1000;
  io::Env* env_;
  std::string path_;
  std::mutex mu_;
  int64_t next_ = -1;   // -1: not loaded
  int64_t limit_ = 0;   // first id not reserved yet
};

}  // namespace evert::kafka
