// Helpers shared by the log unit tests (header-only; not part of evert_log):
// build batches from plain records, and turn slices and partitions back into
// plain records so tests compare values, not bytes.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "log/partition.h"
#include "log/record_batch.h"
#include "log/segment.h"

namespace evert::log::test {

// A record that owns its bytes.
struct TestRecord {
  int64_t offset = -1;
  std::optional<std::string> key;
  std::optional<std::string> value;
  int64_t timestamp = 0;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;

  bool operator==(const TestRecord&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const TestRecord& r) {
  os << "{offset " << r.offset << " ts " << r.timestamp << " key " << (r.key ? "'" + *r.key + "'" : "null")
     << " value " << (r.value ? std::to_string(r.value->size()) + " bytes" : "null") << " headers "
     << r.headers.size() << "}";
  return os;
}

inline TestRecord owned(const Record& r) {
  TestRecord t;
  t.offset = r.offset;
  t.timestamp = r.timestamp;
  if (r.key) t.key = std::string(*r.key);
  if (r.value) t.value = std::string(*r.value);
  for (const auto& h : r.headers)
    t.headers.emplace_back(std::string(h.key), h.value ? std::optional<std::string>(std::string(*h.value)) : std::nullopt);
  return t;
}

// Builds one batch (base offset 0) holding `records` in order; their
// `offset` fields are ignored.
inline std::string build_batch(const std::vector<TestRecord>& records) {
  BatchBuilder builder(records.empty() ? 0 : records.front().timestamp);
  for (const auto& r : records) {
    std::vector<RecordHeader> headers;
    for (const auto& [k, v] : r.headers)
      headers.push_back(RecordHeader{k, v ? std::optional<std::string_view>(*v) : std::nullopt});
    builder.add(r.key ? std::optional<std::string_view>(*r.key) : std::nullopt,
                r.value ? std::optional<std::string_view>(*r.value) : std::nullopt, r.timestamp, headers);
  }
  return builder.finish();
}

// A batch of `count` records "k<i>" -> "v<i>" at `timestamp`.
inline std::string simple_batch(int count, int64_t timestamp, size_t value_bytes = 8) {
  std::vector<TestRecord> records;
  for (int i = 0; i < count; ++i) {
    TestRecord r;
    r.key = "k" + std::to_string(i);
    r.value = std::string(value_bytes, char('a' + i % 26));
    r.timestamp = timestamp;
    records.push_back(std::move(r));
  }
  return build_batch(records);
}

inline MutableByteSpan mutable_bytes(std::string& s) {
  return MutableByteSpan(reinterpret_cast<uint8_t*>(s.data()), s.size());
}

inline std::string slice_bytes(const FileSlice& slice) {
  std::string out(slice.size_bytes, '\0');
  auto n = slice.file->read_at(slice.position, mutable_bytes(out));
  EXPECT_TRUE(n.is_ok()) << n.status().to_string();
  if (n.is_ok()) out.resize(*n);
  return out;
}

// The whole batches at the front of `bytes`, as header + records. A partial
// trailing batch (which a fetch may end with) is skipped and reported.
struct DecodedBatch {
  BatchHeader header;
  std::vector<TestRecord> records;
};
inline std::vector<DecodedBatch> decode_batches(std::string_view bytes, bool* partial_tail = nullptr) {
  std::vector<DecodedBatch> out;
  size_t pos = 0;
  if (partial_tail) *partial_tail = false;
  while (pos < bytes.size()) {
    ByteSpan rest = as_bytes(bytes.substr(pos));
    if (rest.size() < batch_layout::kHeaderSize) {
      if (partial_tail) *partial_tail = true;
      break;
    }
    BatchHeader h = decode_batch_header(rest);
    if (h.total_size() > rest.size()) {
      if (partial_tail) *partial_tail = true;
      break;
    }
    auto records = decode_records(rest.subspan(0, h.total_size()));
    EXPECT_TRUE(records.is_ok()) << "batch at byte " << pos << ": " << records.status().to_string();
    if (!records.is_ok()) break;
    DecodedBatch b{h, {}};
    for (const auto& r : *records) b.records.push_back(owned(r));
    out.push_back(std::move(b));
    pos += h.total_size();
  }
  return out;
}

inline std::vector<TestRecord> records_of(const std::vector<DecodedBatch>& batches) {
  std::vector<TestRecord> out;
  for (const auto& b : batches) out.insert(out.end(), b.records.begin(), b.records.end());
  return out;
}

// Every record from `from` to the high watermark, read with fetches of
// `max_bytes`; records before `from` in the first batch are dropped.
inline std::vector<TestRecord> read_records(const Partition& p, int64_t from, uint64_t max_bytes = 64 * 1024) {
  std::vector<TestRecord> out;
  int64_t offset = from;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    auto r = p.read(offset, max_bytes);
    EXPECT_TRUE(r.is_ok()) << "read at " << offset << ": " << r.status().to_string();
    if (!r.is_ok() || !r->slice) break;
    auto batches = decode_batches(slice_bytes(*r->slice));
    EXPECT_FALSE(batches.empty()) << "read at " << offset << " returned no whole batch";
    if (batches.empty()) break;
    for (const auto& b : batches)
      for (const auto& rec : b.records)
        if (rec.offset >= offset) out.push_back(rec);
    offset = batches.back().header.last_offset() + 1;
  }
  return out;
}

inline std::vector<TestRecord> read_all_records(const Partition& p) { return read_records(p, p.log_start_offset()); }

// Appends and expects success.
inline AppendResult must_append(Partition& p, std::string batches) {
  auto r = p.append(mutable_bytes(batches));
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : AppendResult{};
}

}  // namespace evert::log::test
