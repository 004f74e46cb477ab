#include "log/record_batch.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "log/log_test_util.h"

namespace evert::log {
namespace {

namespace L = batch_layout;
using test::build_batch;
using test::mutable_bytes;
using test::TestRecord;

uint8_t* raw(std::string& s) { return reinterpret_cast<uint8_t*>(s.data()); }
void fix_crc(std::string& batch) { store_be32(raw(batch) + L::kCrc, compute_batch_crc(as_bytes(batch))); }

std::vector<TestRecord> sample_records() {
  std::vector<TestRecord> records(5);
  records[0].key = "key-0";
  records[0].value = "value-0";
  records[0].timestamp = 1'700'000'000'000;
  records[1].key = std::nullopt;  // null key
  records[1].value = "no key";
  records[1].timestamp = 1'700'000'000'500;
  records[2].key = "tombstone";
  records[2].value = std::nullopt;  // null value
  records[2].timestamp = 1'699'999'999'000;  // earlier than the first: timestamps need not increase
  records[3].key = "";
  records[3].value = "";
  records[3].timestamp = 1'700'000'000'200;
  records[3].headers = {{"h1", "v1"}, {"null-header", std::nullopt}, {"", ""}};
  records[4].key = std::string(300, 'k');
  records[4].value = std::string(5000, '\0');
  records[4].timestamp = 1'700'000'000'100;
  records[4].headers = {{"trace", std::string(200, 't')}};
  return records;
}

std::vector<TestRecord> decoded(const std::string& batch) {
  auto records = decode_records(as_bytes(batch));
  EXPECT_TRUE(records.is_ok()) << records.status().to_string();
  std::vector<TestRecord> out;
  if (records.is_ok())
    for (const auto& r : *records) out.push_back(test::owned(r));
  return out;
}

// Expects `batch` to be rejected as corrupt by validate_batch (and by decode_records).
void expect_corrupt(const std::string& batch, const std::string& reason_part) {
  Status s = validate_batch(as_bytes(batch));
  EXPECT_EQ(s.code(), ErrorCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find(reason_part), std::string::npos) << s.message();
  EXPECT_EQ(decode_records(as_bytes(batch)).status().code(), ErrorCode::kCorruption);
}

TEST(RecordBatch, RoundTripsRecordsWithNullsAndHeaders) {
  auto records = sample_records();
  std::string batch = build_batch(records);
  ASSERT_TRUE(validate_batch(as_bytes(batch)).is_ok());
  auto out = decoded(batch);
  ASSERT_EQ(out.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    records[i].offset = int64_t(i);
    EXPECT_EQ(out[i], records[i]) << "record " << i;
  }
}

TEST(RecordBatch, HeaderDescribesTheBatch) {
  auto records = sample_records();
  std::string batch = build_batch(records);
  BatchHeader h = decode_batch_header(as_bytes(batch));
  EXPECT_EQ(h.base_offset, 0);
  EXPECT_EQ(h.total_size(), batch.size());
  EXPECT_EQ(h.magic, 2);
  EXPECT_EQ(h.records_count, 5);
  EXPECT_EQ(h.last_offset_delta, 4);
  EXPECT_EQ(h.base_timestamp, records[0].timestamp);
  EXPECT_EQ(h.max_timestamp, 1'700'000'000'500);
  EXPECT_EQ(h.producer_id, -1);
  EXPECT_EQ(h.producer_epoch, -1);
  EXPECT_EQ(h.base_sequence, -1);
  EXPECT_EQ(h.compression(), Compression::kNone);
  EXPECT_FALSE(h.log_append_time());
  EXPECT_FALSE(h.transactional());
  EXPECT_FALSE(h.control());
  EXPECT_EQ(h.crc, compute_batch_crc(as_bytes(batch)));
  EXPECT_TRUE(check_batch_header(h).is_ok());
}

TEST(RecordBatch, ProducerFieldsAreStored) {
  BatchBuilder b(0);
  b.set_producer(77, 3, 1000);
  b.add("k", "v", 10);
  EXPECT_EQ(b.record_count(), 1u);
  size_t expected_size = b.size_bytes();
  std::string batch = b.finish();
  EXPECT_EQ(batch.size(), expected_size);
  BatchHeader h = decode_batch_header(as_bytes(batch));
  EXPECT_EQ(h.producer_id, 77);
  EXPECT_EQ(h.producer_epoch, 3);
  EXPECT_EQ(h.base_sequence, 1000);
  EXPECT_TRUE(validate_batch(as_bytes(batch)).is_ok());
}

TEST(RecordBatch, BuilderResetsAfterFinish) {
  BatchBuilder b(0);
  b.add("a", "1", 5);
  b.add("b", "2", 6);
  std::string first = b.finish();
  EXPECT_EQ(b.record_count(), 0u);
  b.add("c", "3", 100);
  std::string second = b.finish();
  auto out = decoded(second);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(*out[0].key, "c");
  EXPECT_EQ(out[0].offset, 0);
  EXPECT_EQ(out[0].timestamp, 100);
}

TEST(RecordBatch, BaseOffsetIsNotCoveredByTheCrc) {
  std::string batch = build_batch(sample_records());
  set_base_offset(mutable_bytes(batch), 1'000'000);
  ASSERT_TRUE(validate_batch(as_bytes(batch)).is_ok());
  auto out = decoded(batch);
  ASSERT_EQ(out.size(), 5u);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].offset, 1'000'000 + int64_t(i));
  EXPECT_EQ(decode_batch_header(as_bytes(batch)).last_offset(), 1'000'004);
}

TEST(RecordBatch, LogAppendTimeStampsEveryRecord) {
  std::string batch = build_batch(sample_records());
  set_max_timestamp_and_crc(mutable_bytes(batch), 42'000, true);
  ASSERT_TRUE(validate_batch(as_bytes(batch)).is_ok());
  BatchHeader h = decode_batch_header(as_bytes(batch));
  EXPECT_TRUE(h.log_append_time());
  EXPECT_EQ(h.max_timestamp, 42'000);
  for (const auto& r : decoded(batch)) EXPECT_EQ(r.timestamp, 42'000);
  // And back to create time.
  set_max_timestamp_and_crc(mutable_bytes(batch), 1'700'000'000'500, false);
  ASSERT_TRUE(validate_batch(as_bytes(batch)).is_ok());
  EXPECT_FALSE(decode_batch_header(as_bytes(batch)).log_append_time());
  EXPECT_EQ(decoded(batch)[0].timestamp, 1'700'000'000'000);
}

// --- One test per corruption case. -----------------------------------------

TEST(RecordBatchCorruption, LengthBelowHeaderSize) {
  std::string batch = build_batch(sample_records());
  store_be32(raw(batch) + L::kBatchLength, uint32_t(L::kHeaderSize - L::kLengthPrefix - 1));
  expect_corrupt(batch, "length");
}

TEST(RecordBatchCorruption, LengthAboveTheBatchLimit) {
  std::string batch = build_batch(sample_records());
  store_be32(raw(batch) + L::kBatchLength, kBatchBytesMax);
  expect_corrupt(batch, "length");
  store_be32(raw(batch) + L::kBatchLength, 0xffffffffu);  // negative as int32
  expect_corrupt(batch, "length");
}

TEST(RecordBatchCorruption, LengthDisagreesWithTheBytes) {
  std::string batch = build_batch(sample_records());
  BatchHeader h = decode_batch_header(as_bytes(batch));
  store_be32(raw(batch) + L::kBatchLength, uint32_t(h.batch_length - 1));
  expect_corrupt(batch, "length says");
}

TEST(RecordBatchCorruption, BadCrcInARecord) {
  std::string batch = build_batch(sample_records());
  batch[batch.size() - 10] ^= 0x10;
  expect_corrupt(batch, "CRC");
}

TEST(RecordBatchCorruption, BadCrcInACoveredHeaderField) {
  std::string batch = build_batch(sample_records());
  batch[L::kMaxTimestamp + 7] ^= 0x01;
  expect_corrupt(batch, "CRC");
}

TEST(RecordBatchCorruption, BadStoredCrc) {
  std::string batch = build_batch(sample_records());
  batch[L::kCrc] ^= 0x80;
  expect_corrupt(batch, "CRC");
}

TEST(RecordBatchCorruption, TornBatch) {
  std::string batch = build_batch(sample_records());
  std::string torn = batch.substr(0, batch.size() - 1);
  expect_corrupt(torn, "length says");
  std::string half = batch.substr(0, batch.size() / 2);
  expect_corrupt(half, "length says");
}

TEST(RecordBatchCorruption, ShorterThanItsHeader) {
  std::string batch = build_batch(sample_records());
  expect_corrupt(batch.substr(0, L::kHeaderSize - 1), "shorter than its header");
  expect_corrupt("", "shorter than its header");
}

TEST(RecordBatchCorruption, UnknownMagic) {
  for (uint8_t magic : {0, 1, 3, 0xff}) {
    std::string batch = build_batch(sample_records());
    batch[L::kMagic] = char(magic);
    expect_corrupt(batch, "magic");
  }
}

TEST(RecordBatchCorruption, RecordsCountLiesHigh) {
  std::string batch = build_batch(sample_records());
  // Claims one record more, with a consistent last offset delta and a valid CRC:
  // only walking the records can tell.
  store_be32(raw(batch) + L::kRecordsCount, 6);
  store_be32(raw(batch) + L::kLastOffsetDelta, 5);
  fix_crc(batch);
  ASSERT_TRUE(validate_batch(as_bytes(batch)).is_ok());
  auto r = decode_records(as_bytes(batch));
  EXPECT_EQ(r.status().code(), ErrorCode::kCorruption);
}

TEST(RecordBatchCorruption, RecordsCountLiesLow) {
  std::string batch = build_batch(sample_records());
  store_be32(raw(batch) + L::kRecordsCount, 4);
  fix_crc(batch);
  ASSERT_TRUE(validate_batch(as_bytes(batch)).is_ok());
  auto r = decode_records(as_bytes(batch));
  EXPECT_EQ(r.status().code(), ErrorCode::kCorruption);
  EXPECT_NE(r.status().message().find("after the last record"), std::string::npos) << r.status().message();
}

TEST(RecordBatchCorruption, RecordsCountBeyondLastOffsetDelta) {
  std::string batch = build_batch(sample_records());
  store_be32(raw(batch) + L::kRecordsCount, 6);  // 6 records cannot fit offsets 0..4
  fix_crc(batch);
  expect_corrupt(batch, "records count");
}

TEST(RecordBatchCorruption, RecordsCountHuge) {
  std::string batch = build_batch(sample_records());
  store_be32(raw(batch) + L::kRecordsCount, 0x7fffffff);
  store_be32(raw(batch) + L::kLastOffsetDelta, 0x7fffffff);
  fix_crc(batch);
  auto r = decode_records(as_bytes(batch));  // must not try to reserve 2^31 records
  EXPECT_EQ(r.status().code(), ErrorCode::kCorruption);
}

TEST(RecordBatchCorruption, NegativeRecordsCount) {
  std::string batch = build_batch(sample_records());
  store_be32(raw(batch) + L::kRecordsCount, 0xffffffffu);
  fix_crc(batch);
  expect_corrupt(batch, "records count");
}

TEST(RecordBatchCorruption, NegativeLastOffsetDelta) {
  std::string batch = build_batch(sample_records());
  store_be32(raw(batch) + L::kLastOffsetDelta, 0xffffffffu);
  fix_crc(batch);
  expect_corrupt(batch, "last offset delta");
}

TEST(RecordBatchCorruption, NegativeBaseOffset) {
  std::string batch = build_batch(sample_records());
  set_base_offset(mutable_bytes(batch), -5);
  expect_corrupt(batch, "base offset");
}

TEST(RecordBatchCorruption, RecordLengthPastTheEnd) {
  std::string batch = build_batch(sample_records());
  // The first record's length varint sits right after the header.
  batch[L::kRecords] = char(0x7e);  // 63 after zig-zag; the first record is longer
  fix_crc(batch);
  ASSERT_TRUE(validate_batch(as_bytes(batch)).is_ok());
  EXPECT_EQ(decode_records(as_bytes(batch)).status().code(), ErrorCode::kCorruption);
}

TEST(RecordBatchCorruption, CompressedBatchIsUnsupported) {
  std::string batch = build_batch(sample_records());
  store_be16(raw(batch) + L::kAttributes, uint16_t(Compression::kZstd));
  fix_crc(batch);
  ASSERT_TRUE(validate_batch(as_bytes(batch)).is_ok());
  EXPECT_EQ(decode_batch_header(as_bytes(batch)).compression(), Compression::kZstd);
  EXPECT_EQ(decode_records(as_bytes(batch)).status().code(), ErrorCode::kUnsupported);
}

TEST(RecordBatchCorruption, EverySingleBitFlipUnderTheCrcIsCaught) {
  std::vector<TestRecord> records(3);
  for (int i = 0; i < 3; ++i) {
    records[size_t(i)].key = "k" + std::to_string(i);
    records[size_t(i)].value = "value" + std::to_string(i);
    records[size_t(i)].timestamp = 1000 + i;
  }
  std::string batch = build_batch(records);
  for (size_t byte = L::kCrc; byte < batch.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = batch;
      bad[byte] ^= char(1 << bit);
      ASSERT_FALSE(validate_batch(as_bytes(bad)).is_ok()) << "byte " << byte << " bit " << bit;
    }
  }
}

// Records rewritten at random (with a correct CRC) must decode or fail
// cleanly, never read outside the batch (ASan builds check the "never").
TEST(RecordBatchCorruption, GarbageRecordsWithAValidCrcFailCleanly) {
  std::mt19937_64 rng(5);
  std::string good = build_batch(sample_records());
  int failures = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string batch = good;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) batch[L::kRecords + rng() % (batch.size() - L::kRecords)] = char(rng());
    fix_crc(batch);
    auto r = decode_records(as_bytes(batch));
    if (!r.is_ok()) {
      ++failures;
      EXPECT_EQ(r.status().code(), ErrorCode::kCorruption) << r.status().to_string();
    }
  }
  EXPECT_GT(failures, 0);
}

TEST(RecordBatch, CompressionNames) {
  EXPECT_STREQ(compression_name(Compression::kNone), "none");
  EXPECT_STREQ(compression_name(Compression::kGzip), "gzip");
  EXPECT_STREQ(compression_name(Compression::kSnappy), "snappy");
  EXPECT_STREQ(compression_name(Compression::kLz4), "lz4");
  EXPECT_STREQ(compression_name(Compression::kZstd), "zstd");
}

}  // namespace
}  // namespace evert::log
