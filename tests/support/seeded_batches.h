// Batches whose every byte follows from one 64-bit seed, so a checker can
// rebuild exactly what a writer appended from the seed alone (the crash
// writer reports only seeds; the parent recomputes the bytes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/bytes.h"

namespace evert::testing {

// An uncompressed RecordBatch v2 (base offset 0) of 1-8 records; keys,
// values (binary, 0-599 bytes, some null), headers and timestamps are drawn
// from `seed`. Record 0's key is "seed-<seed as 16 hex digits>".
std::string make_seeded_batch(uint64_t seed);

// The seed a seeded batch carries in its first key; nullopt for any other
// batch (or one whose records do not decode).
std::optional<uint64_t> seed_of_batch(ByteSpan batch);

// make_seeded_batch(seed) with its base offset set, as the log stores it.
std::string expected_stored_batch(uint64_t seed, int64_t base_offset);

}  // namespace evert::testing
