#include "support/seeded_batches.h"

#include <fmt/format.h>

#include <charconv>
#include <vector>

#include "log/record_batch.h"

namespace evert::testing {
namespace {

constexpr std::string_view kSeedKeyPrefix = "seed-";
constexpr int kRecordsMax = 8;
constexpr uint64_t kValueBytesMax = 600;
constexpr int64_t kTimestampBaseMs = 1'600'000'000'000;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::string make_seeded_batch(uint64_t seed) {
  uint64_t state = seed;
  auto next = [&state] { return splitmix64(state); };
  // Within about a day, so segment.ms (7 days) never rolls a segment.
  int64_t first_ts = kTimestampBaseMs + int64_t(next() % 100'000'000);
  int records = 1 + int(next() % kRecordsMax);
  log::BatchBuilder builder(first_ts);
  for (int i = 0; i < records; ++i) {
    std::optional<std::string> key;
    if (i == 0) {
      key = fmt::format("{}{:016x}", kSeedKeyPrefix, seed);
    } else if (next() % 5 != 0) {
      key = fmt::format("k-{}-{}", seed, i);
    }
    std::optional<std::string> value;
    if (next() % 7 != 0) {
      value.emplace(size_t(next() % kValueBytesMax), '\0');
      for (char& c : *value) c = char(next() & 0xff);
    }
    std::string header_value = fmt::format("v{}", i);
    std::vector<log::RecordHeader> headers;
    if (next() % 3 == 0) headers.push_back(log::RecordHeader{"h", header_value});
    builder.add(key, value, first_ts + int64_t(next() % 1000), headers);
  }
  return builder.finish();
}

std::optional<uint64_t> seed_of_batch(ByteSpan batch) {
  auto records = log::decode_records(batch);
  if (!records.is_ok() || records->empty() || !records->front().key) return std::nullopt;
  std::string_view key = *records->front().key;
  if (key.size() != kSeedKeyPrefix.size() + 16 || key.substr(0, kSeedKeyPrefix.size()) != kSeedKeyPrefix)
    return std::nullopt;
  uint64_t seed = 0;
  const char* digits = key.data() + kSeedKeyPrefix.size();
  auto [end, ec] = std::from_chars(digits, key.data() + key.size(), seed, 16);
  if (ec != std::errc() || end != key.data() + key.size()) return std::nullopt;
  return seed;
}

std::string expected_stored_batch(uint64_t seed, int64_t base_offset) {
  std::string batch = make_seeded_batch(seed);
  log::set_base_offset(MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()), batch.size()), base_offset);
  return batch;
}

}  // namespace evert::testing
