#include "log/producer_state.h"

#include <fmt/format.h>

#include "base/bytes.h"
#include "base/crc32c.h"

namespace evert::log {
namespace {
constexpr uint32_t kSnapshotMagic = 0x45565053;  // "EVPS"
constexpr uint16_t kSnapshotVersion = 1;

int32_t next_sequence(int32_t seq) { return seq == INT32_MAX ? 0 : seq + 1; }
}  // namespace

int32_t batch_last_sequence(const BatchHeader& h) {
  int64_t last = int64_t(h.base_sequence) + h.last_offset_delta;
  return int32_t(last > INT32_MAX ? last - INT32_MAX - 1 : last);
}

Result<SequenceCheck> ProducerStateTable::check(const BatchHeader& h, ProducerBatch* duplicate_of) const {
  auto it = producers_.find(h.producer_id);
  if (it == producers_.end()) return SequenceCheck::kAccept;  // unknown or expired: any sequence starts it
  const ProducerEntry& e = it->second;
  if (h.producer_epoch < e.epoch)
    return error(ErrorCode::kFenced,
                 fmt::format("producer {} epoch {} is older than {}", h.producer_id, h.producer_epoch, e.epoch));
  if (h.producer_epoch > e.epoch) {
    if (h.base_sequence != 0)
      return error(ErrorCode::kSequenceError, fmt::format("producer {} new epoch {} must start at sequence 0, not {}",
                                                          h.producer_id, h.producer_epoch, h.base_sequence));
    return SequenceCheck::kAccept;
  }
  int32_t last = batch_last_sequence(h);
  for (const auto& b : e.batches) {
    if (b.first_sequence == h.base_sequence && b.last_sequence == last) {
      *duplicate_of = b;
      return SequenceCheck::kDuplicate;
    }
  }
  if (e.batches.empty()) return SequenceCheck::kAccept;
  int32_t expected = next_sequence(e.batches.back().last_sequence);
  if (h.base_sequence != expected)
    return error(ErrorCode::kSequenceError, fmt::format("producer {} sent sequence {}, expected {}", h.producer_id,
                                                        h.base_sequence, expected));
  return SequenceCheck::kAccept;
}

void ProducerStateTable::record(const BatchHeader& h, int64_t base_offset) {
  ProducerEntry& e = producers_[h.producer_id];
  if (h.producer_epoch != e.epoch) e.batches.clear();
  e.epoch = h.producer_epoch;
  e.batches.push_back(ProducerBatch{h.base_sequence, batch_last_sequence(h), base_offset,
                                    base_offset + h.last_offset_delta});
  while (e.batches.size() > kProducerBatchWindow) e.batches.pop_front();
}

std::string ProducerStateTable::encode_snapshot(int64_t offset) const {
  std::string out;
  auto put = [&out](uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(char(uint8_t(v >> (8 * i))));
  };
  put(kSnapshotMagic, 4);
  put(kSnapshotVersion, 2);
  put(uint64_t(offset), 8);
  put(producers_.size(), 4);
  for (const auto& [pid, e] : producers_) {
    put(uint64_t(pid), 8);
    put(uint16_t(e.epoch), 2);
    put(e.batches.size(), 1);
    for (const auto& b : e.batches) {
      put(uint32_t(b.first_sequence), 4);
      put(uint32_t(b.last_sequence), 4);
      put(uint64_t(b.base_offset), 8);
      put(uint64_t(b.last_offset), 8);
    }
  }
  put(crc32c(out.data(), out.size()), 4);
  return out;
}

Result<int64_t> ProducerStateTable::decode_snapshot(const std::string& bytes) {
  if (bytes.size() < 22) return error(ErrorCode::kCorruption, "producer snapshot too short");
  uint32_t stored = load_be32(reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size() - 4);
  if (crc32c(bytes.data(), bytes.size() - 4) != stored) return error(ErrorCode::kCorruption, "producer snapshot CRC");
  ByteReader r(as_bytes(std::string_view(bytes).substr(0, bytes.size() - 4)));
  if (r.u32() != kSnapshotMagic) return error(ErrorCode::kCorruption, "producer snapshot magic");
  uint16_t version = uint16_t(r.i16());
  if (version != kSnapshotVersion)
    return error(ErrorCode::kUnsupported, fmt::format("producer snapshot version {}", version));
  int64_t offset = r.i64();
  uint32_t count = r.u32();
  std::map<int64_t, ProducerEntry> producers;
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    int64_t pid = r.i64();
    ProducerEntry e;
    e.epoch = r.i16();
    int n = uint8_t(r.i8());
    for (int k = 0; k < n && r.ok(); ++k) {
      ProducerBatch b;
      b.first_sequence = r.i32();
      b.last_sequence = r.i32();
      b.base_offset = r.i64();
      b.last_offset = r.i64();
      e.batches.push_back(b);
    }
    producers[pid] = std::move(e);
  }
  if (!r.ok() || !r.at_end()) return error(ErrorCode::kCorruption, "producer snapshot truncated");
  producers_ = std::move(producers);
  return offset;
}

}  // namespace evert::log
