#include "log/record_batch.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "log/compression.h"

namespace evert::log {
namespace L = batch_layout;

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kSnappy: return "snappy";
    case Compression::kLz4: return "lz4";
    case Compression::kZstd: return "zstd";
  }
  return "unknown";
}

BatchHeader decode_batch_header(ByteSpan b) {
  EVERT_CHECK(b.size() >= L::kHeaderSize);
  const uint8_t* p = b.data();
  BatchHeader h;
  h.base_offset = int64_t(load_be64(p + L::kBaseOffset));
  h.batch_length = int32_t(load_be32(p + L::kBatchLength));
  h.partition_leader_epoch = int32_t(load_be32(p + L::kPartitionLeaderEpoch));
  h.magic = int8_t(p[L::kMagic]);
  h.crc = load_be32(p + L::kCrc);
  h.attributes = int16_t(load_be16(p + L::kAttributes));
  h.last_offset_delta = int32_t(load_be32(p + L::kLastOffsetDelta));
  h.base_timestamp = int64_t(load_be64(p + L::kBaseTimestamp));
  h.max_timestamp = int64_t(load_be64(p + L::kMaxTimestamp));
  h.producer_id = int64_t(load_be64(p + L::kProducerId));
  h.producer_epoch = int16_t(load_be16(p + L::kProducerEpoch));
  h.base_sequence = int32_t(load_be32(p + L::kBaseSequence));
  h.records_count = int32_t(load_be32(p + L::kRecordsCount));
  return h;
}

Status check_batch_header(const BatchHeader& h) {
  if (h.magic != L::kMagicV2) return error(ErrorCode::kCorruption, fmt::format("magic {} is not 2", h.magic));
  if (h.batch_length < int32_t(L::kHeaderSize - L::kLengthPrefix) ||
      uint32_t(h.batch_length) > kBatchBytesMax - L::kLengthPrefix)
    return error(ErrorCode::kCorruption, fmt::format("batch length {} out of range", h.batch_length));
  if (h.last_offset_delta < 0) return error(ErrorCode::kCorruption, "negative last offset delta");
  if (h.records_count < 0 || (h.records_count > 0 && h.last_offset_delta < h.records_count - 1))
    return error(ErrorCode::kCorruption,
                 fmt::format("records count {} inconsistent with last offset delta {}", h.records_count,
                             h.last_offset_delta));
  if (h.base_offset < 0) return error(ErrorCode::kCorruption, "negative base offset");
  return Status::ok();
}

uint32_t compute_batch_crc(ByteSpan whole) {
  EVERT_CHECK(whole.size() >= L::kHeaderSize);
  return crc32c(whole.data() + L::kAttributes, whole.size() - L::kAttributes);
}

Status validate_batch(ByteSpan bytes) {
  if (bytes.size() < L::kHeaderSize) return error(ErrorCode::kCorruption, "batch shorter than its header");
  BatchHeader h = decode_batch_header(bytes);
  EVERT_RETURN_IF_ERROR(check_batch_header(h));
  if (h.total_size() != bytes.size())
    return error(ErrorCode::kCorruption,
                 fmt::format("batch length says {} bytes, have {}", h.total_size(), bytes.size()));
  uint32_t actual = compute_batch_crc(bytes);
  if (actual != h.crc)
    return error(ErrorCode::kCorruption, fmt::format("CRC mismatch: stored {:08x}, computed {:08x}", h.crc, actual));
  return Status::ok();
}

void set_base_offset(MutableByteSpan batch, int64_t base_offset) {
  EVERT_CHECK(batch.size() >= L::kHeaderSize);
  store_be64(batch.data() + L::kBaseOffset, uint64_t(base_offset));
}

void set_max_timestamp_and_crc(MutableByteSpan batch, int64_t max_timestamp, bool log_append_time) {
  EVERT_CHECK(batch.size() >= L::kHeaderSize);
  store_be64(batch.data() + L::kMaxTimestamp, uint64_t(max_timestamp));
  uint16_t attrs = load_be16(batch.data() + L::kAttributes);
  attrs = log_append_time ? uint16_t(attrs | 0x8) : uint16_t(attrs & ~0x8);
  store_be16(batch.data() + L::kAttributes, attrs);
  store_be32(batch.data() + L::kCrc, compute_batch_crc(batch));
}

namespace {

std::optional<std::string_view> read_nullable(ByteReader& r) {
  int32_t len = r.varint();
  if (!r.ok() || len < 0) {
    if (len < -1) r.fail();
    return std::nullopt;
  }
  return as_string_view(r.bytes(size_t(len)));
}

}  // namespace

Result<std::vector<Record>> decode_records(ByteSpan batch) {
  EVERT_RETURN_IF_ERROR(validate_batch(batch));
  BatchHeader h = decode_batch_header(batch);
  if (h.compression() != Compression::kNone)
    return error(ErrorCode::kUnsupported,
                 fmt::format("batch at offset {} is {}-compressed", h.base_offset, compression_name(h.compression())));
  return parse_records(h, batch.subspan(L::kHeaderSize));
}

Result<std::vector<Record>> decode_records(ByteSpan batch, std::string* decompressed) {
  std::vector<Record> records;
  EVERT_RETURN_IF_ERROR(decode_records(batch, decompressed, &records));
  return records;
}

Status decode_records(ByteSpan batch, std::string* decompressed, std::vector<Record>* records) {
  EVERT_RETURN_IF_ERROR(validate_batch(batch));
  BatchHeader h = decode_batch_header(batch);
  if (h.compression() == Compression::kNone) return parse_records(h, batch.subspan(L::kHeaderSize), records);
  auto inflated = decompress(h.compression(), batch.subspan(L::kHeaderSize));
  if (!inflated.is_ok()) return inflated.status().with_context(fmt::format("batch at offset {}", h.base_offset));
  *decompressed = std::move(inflated).value();
  return parse_records(h, as_bytes(*decompressed), records);
}

Result<std::vector<Record>> parse_records(const BatchHeader& h, ByteSpan payload) {
  std::vector<Record> records;
  EVERT_RETURN_IF_ERROR(parse_records(h, payload, &records));
  return records;
}

Status parse_records(const BatchHeader& h, ByteSpan payload, std::vector<Record>* out_records) {
  // Each record takes at least 7 bytes, so the count is bounded by the size.
  if (size_t(h.records_count) > payload.size() / 7 + 1)
    return error(ErrorCode::kCorruption, "records count larger than the batch can hold");
  std::vector<Record>& records = *out_records;
  // The caller's records (and their header vectors) are reused in place:
  // readers of many batches parse millions of records through one vector.
  records.resize(size_t(std::max<int32_t>(h.records_count, 0)));
  // One reader over the payload; a record whose fields end anywhere but at
  // its declared length is malformed.
  ByteReader r(payload);
  for (int32_t i = 0; i < h.records_count; ++i) {
    int32_t length = r.varint();
    if (!r.ok() || length < 0 || size_t(length) > r.remaining()) {
      records.clear();
      return error(ErrorCode::kCorruption, fmt::format("record {} of batch {}: bad length", i, h.base_offset));
    }
    size_t end = r.position() + size_t(length);
    Record& out = records[size_t(i)];
    r.i8();  // attributes: unused in v2
    int64_t timestamp_delta = r.varlong();
    // Under log-append time the batch's max_timestamp is every record's time.
    out.timestamp = h.log_append_time() ? h.max_timestamp : h.base_timestamp + timestamp_delta;
    out.offset = h.base_offset + r.varint();
    out.key = read_nullable(r);
    out.value = read_nullable(r);
    int32_t header_count = r.varint();
    out.headers.clear();
    if (header_count < 0 || r.position() > end || size_t(header_count) > end - r.position()) r.fail();
    for (int32_t k = 0; r.ok() && k < header_count; ++k) {
      int32_t key_len = r.varint();
      if (key_len < 0) {
        r.fail();
        break;
      }
      RecordHeader hdr;
      hdr.key = as_string_view(r.bytes(size_t(key_len)));
      hdr.value = read_nullable(r);
      out.headers.push_back(hdr);
    }
    if (!r.ok() || r.position() != end) {
      records.clear();
      return error(ErrorCode::kCorruption, fmt::format("record {} of batch {}: malformed fields", i, h.base_offset));
    }
  }
  if (!r.at_end()) {
    records.clear();
    return error(ErrorCode::kCorruption, fmt::format("batch {}: bytes after the last record", h.base_offset));
  }
  return Status::ok();
}

BatchBuilder::BatchBuilder(int64_t base_timestamp_ms)
    : base_timestamp_ms_(base_timestamp_ms), max_timestamp_ms_(base_timestamp_ms) {}

void BatchBuilder::set_producer(int64_t producer_id, int16_t epoch, int32_t base_sequence) {
  producer_id_ = producer_id;
  producer_epoch_ = epoch;
  base_sequence_ = base_sequence;
}

void BatchBuilder::add(std::optional<std::string_view> key, std::optional<std::string_view> value,
                       int64_t timestamp_ms, const std::vector<RecordHeader>& headers) {
  if (count_ == 0) {
    base_timestamp_ms_ = timestamp_ms;
    max_timestamp_ms_ = timestamp_ms;
  }
  max_timestamp_ms_ = std::max(max_timestamp_ms_, timestamp_ms);
  std::string& body = scratch_;
  body.clear();
  body.push_back(0);  // attributes
  put_varint(body, timestamp_ms - base_timestamp_ms_);
  put_varint(body, int64_t(count_));
  auto put_nullable = [&body](std::optional<std::string_view> s) {
    if (!s) {
      put_varint(body, -1);
    } else {
      put_varint(body, int64_t(s->size()));
      body.append(*s);
    }
  };
  put_nullable(key);
  put_nullable(value);
  put_varint(body, int64_t(headers.size()));
  for (const auto& h : headers) {
    put_varint(body, int64_t(h.key.size()));
    body.append(h.key);
    put_nullable(h.value);
  }
  put_varint(records_, int64_t(body.size()));
  records_.append(body);
  ++count_;
}

std::string BatchBuilder::finish() {
  EVERT_CHECK(count_ > 0);
  std::string out(L::kHeaderSize, '\0');
  out.append(records_);
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  store_be64(p + L::kBaseOffset, 0);
  store_be32(p + L::kBatchLength, uint32_t(out.size() - L::kLengthPrefix));
  store_be32(p + L::kPartitionLeaderEpoch, 0);
  p[L::kMagic] = uint8_t(L::kMagicV2);
  store_be16(p + L::kAttributes, 0);
  store_be32(p + L::kLastOffsetDelta, uint32_t(count_ - 1));
  store_be64(p + L::kBaseTimestamp, uint64_t(base_timestamp_ms_));
  store_be64(p + L::kMaxTimestamp, uint64_t(max_timestamp_ms_));
  store_be64(p + L::kProducerId, uint64_t(producer_id_));
  store_be16(p + L::kProducerEpoch, uint16_t(producer_epoch_));
  store_be32(p + L::kBaseSequence, uint32_t(base_sequence_));
  store_be32(p + L::kRecordsCount, uint32_t(count_));
  store_be32(p + L::kCrc, compute_batch_crc(ByteSpan(p, out.size())));
  count_ = 0;
  records_.clear();
  return out;
}

}  // namespace evert::log
