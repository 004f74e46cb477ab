// Kafka RecordBatch v2 (magic 2) — the unit evert stores, byte by byte.
//
// A segment file is nothing but these batches back to back, exactly as a
// producer sent them, except that the log overwrites `base_offset` when it
// appends. All integers are big-endian.
//
//   pos size field
//     0    8 base_offset            first offset of the batch (assigned by the log)
//     8    4 batch_length           bytes after this field (total size - 12)
//    12    4 partition_leader_epoch
//    16    1 magic                  must be 2
//    17    4 crc                    CRC32C of bytes [21, end)
//    21    2 attributes             bits 0-2 codec (0 none, 1 gzip, 2 snappy,
//                                   3 lz4, 4 zstd), bit 3 timestamp type
//                                   (1 = log append time), bit 4 transactional,
//                                   bit 5 control
//    23    4 last_offset_delta      last offset = base_offset + this
//    27    8 base_timestamp         ms since epoch (first record's timestamp)
//    35    8 max_timestamp          largest record timestamp
//    43    8 producer_id            -1 when not idempotent
//    51    2 producer_epoch
//    53    4 base_sequence
//    57    4 records_count
//    61    … records                (compressed as a whole when codec != 0)
//
// The CRC does not cover base_offset, batch_length, partition_leader_epoch or
// magic, so the log may assign base_offset without recomputing it.
//
// Each record (uncompressed form):
//   varint length (bytes after it), i8 attributes (unused), varlong
//   timestamp_delta, varint offset_delta, varint key_length (-1 = null), key,
//   varint value_length (-1 = null), value, varint header_count, then per
//   header: varint key_length, key, varint value_length (-1 = null), value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace evert::log {

namespace batch_layout {
inline constexpr size_t kBaseOffset = 0;
inline constexpr size_t kBatchLength = 8;
inline constexpr size_t kPartitionLeaderEpoch = 12;
inline constexpr size_t kMagic = 16;
inline constexpr size_t kCrc = 17;
inline constexpr size_t kAttributes = 21;
inline constexpr size_t kLastOffsetDelta = 23;
inline constexpr size_t kBaseTimestamp = 27;
inline constexpr size_t kMaxTimestamp = 35;
inline constexpr size_t kProducerId = 43;
inline constexpr size_t kProducerEpoch = 51;
inline constexpr size_t kBaseSequence = 53;
inline constexpr size_t kRecordsCount = 57;
inline constexpr size_t kRecords = 61;
// The smallest prefix that tells how long the batch is.
inline constexpr size_t kLengthPrefix = kBatchLength + 4;
inline constexpr size_t kHeaderSize = kRecords;
inline constexpr int8_t kMagicV2 = 2;
static_assert(kCrc + 4 == kAttributes);
static_assert(kRecordsCount + 4 == kHeaderSize);
static_assert(kHeaderSize == 61);
}  // namespace batch_layout

// Upper bound on one batch, checked before any allocation (STYLE.md habit 7).
inline constexpr uint32_t kBatchBytesMax = 64u << 20;

enum class Compression : uint8_t { kNone = 0, kGzip = 1, kSnappy = 2, kLz4 = 3, kZstd = 4 };
const char* compression_name(Compression c);

// The decoded fixed header of one batch.
struct BatchHeader {
  int64_t base_offset = 0;
  int32_t batch_length = 0;
  int32_t partition_leader_epoch = 0;
  int8_t magic = 0;
  uint32_t crc = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t records_count = 0;

  uint32_t total_size() const { return uint32_t(batch_length) + uint32_t(batch_layout::kLengthPrefix); }
  int64_t last_offset() const { return base_offset + last_offset_delta; }
  Compression compression() const { return Compression(attributes & 0x7); }
  bool log_append_time() const { return (attributes & 0x8) != 0; }
  bool transactional() const { return (attributes & 0x10) != 0; }
  bool control() const { return (attributes & 0x20) != 0; }
};

// Decodes the 61-byte header. Needs at least kHeaderSize bytes.
BatchHeader decode_batch_header(ByteSpan bytes);

// Checks what can be checked without trusting anything: magic, a length
// within [kHeaderSize - 12, kBatchBytesMax], last_offset_delta >= 0,
// records_count consistent with it. Does not check the CRC.
Status check_batch_header(const BatchHeader& header);

// Checks header and CRC of a complete batch (bytes.size() == total_size()).
Status validate_batch(ByteSpan bytes);

uint32_t compute_batch_crc(ByteSpan whole_batch);

// Overwrites base_offset in place (not covered by the CRC).
void set_base_offset(MutableByteSpan batch, int64_t base_offset);
// Overwrites max_timestamp (and the timestamp-type bit) and recomputes the
// CRC; used when a topic stamps log-append time.
void set_max_timestamp_and_crc(MutableByteSpan batch, int64_t max_timestamp, bool log_append_time);

struct RecordHeader {
  std::string_view key;
  std::optional<std::string_view> value;
};

// One record of an uncompressed batch; views point into the batch bytes.
struct Record {
  int64_t offset = 0;
  int64_t timestamp = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::vector<RecordHeader> headers;
};

// Parses the records of an uncompressed batch. Fails on compressed batches
// (kUnsupported) and on malformed record bytes (kCorruption); never reads
// outside `batch`.
Result<std::vector<Record>> decode_records(ByteSpan batch);
// Also reads compressed batches: their payload is decompressed into
// *decompressed (compression.h), which the returned views point into.
Result<std::vector<Record>> decode_records(ByteSpan batch, std::string* decompressed);
// The same into a vector the caller reuses (readers of many batches).
Status decode_records(ByteSpan batch, std::string* decompressed, std::vector<Record>* records);
// Parses the (uncompressed) records payload of a batch with header `h`.
Result<std::vector<Record>> parse_records(const BatchHeader& h, ByteSpan payload);
Status parse_records(const BatchHeader& h, ByteSpan payload, std::vector<Record>* records);

// Builds an uncompressed batch; used by evert's own producers (CLI, SQL
// INSERT), tests and benchmarks.
class BatchBuilder {
 public:
  explicit BatchBuilder(int64_t base_timestamp_ms);
  void set_producer(int64_t producer_id, int16_t epoch, int32_t base_sequence);
  void add(std::optional<std::string_view> key, std::optional<std::string_view> value,
           int64_t timestamp_ms, const std::vector<RecordHeader>& headers = {});
  size_t record_count() const { return count_; }
  // Bytes the finished batch will take.
  size_t size_bytes() const { return batch_layout::kHeaderSize + records_.size(); }
  // Produces the batch (base offset 0) and resets the builder.
  std::string finish();

 private:
  int64_t base_timestamp_ms_;
  int64_t max_timestamp_ms_;
  int64_t producer_id_ = -1;
  int16_t producer_epoch_ = -1;
  int32_t base_sequence_ = -1;
  size_t count_ = 0;
  std::string records_;
  std::string scratch_;
};

}  // namespace evert::log
