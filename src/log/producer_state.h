// Idempotent-producer state of one partition: for each producer id, its
// epoch and the offsets of its last five batches (Kafka's window of
// in-flight requests), so a retried batch is recognised and answered with
// its original offsets instead of being appended twice.
//
// Snapshot file `<offset, 20 digits>.producers` (state as of that offset),
// written atomically at segment roll and clean close; big-endian:
//   u32 magic 'EVPS', u16 version 1, i64 offset, u32 producer count, then per
//   producer: i64 producer id, i16 epoch, u8 batch count, then per batch:
//   i32 first sequence, i32 last sequence, i64 base offset, i64 last offset;
//   finally u32 CRC32C of everything before it.
// After a crash the state is rebuilt from the newest snapshot plus the batch
// headers appended after it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "base/status.h"
#include "log/record_batch.h"

namespace evert::log {

inline constexpr size_t kProducerBatchWindow = 5;

struct ProducerBatch {
  int32_t first_sequence = 0;
  int32_t last_sequence = 0;
  int64_t base_offset = 0;
  int64_t last_offset = 0;
};

struct ProducerEntry {
  int16_t epoch = 0;
  std::deque<ProducerBatch> batches;  // oldest first, at most kProducerBatchWindow
};

enum class SequenceCheck { kAccept, kDuplicate };

class ProducerStateTable {
 public:
  // Decides what to do with an idempotent batch (header.producer_id >= 0).
  // kDuplicate sets *duplicate_of to the batch already stored. Errors:
  // kFenced (an epoch older than known), kSequenceError (a gap or a
  // sequence that does not start at 0 for a new epoch).
  Result<SequenceCheck> check(const BatchHeader& header, ProducerBatch* duplicate_of) const;
  // Records a batch that was appended.
  void record(const BatchHeader& header, int64_t base_offset);

  std::string encode_snapshot(int64_t offset) const;
  // Loads a snapshot; returns the offset it describes.
  Result<int64_t> decode_snapshot(const std::string& bytes);

  size_t producer_count() const { return producers_.size(); }
  const std::map<int64_t, ProducerEntry>& producers() const { return producers_; }

 private:
  std::map<int64_t, ProducerEntry> producers_;
};

// The last sequence number of a batch (sequences wrap at INT32_MAX).
int32_t batch_last_sequence(const BatchHeader& header);

}  // namespace evert::log
