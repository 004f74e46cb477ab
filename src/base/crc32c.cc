#include "base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace evert {
namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78u;

// Slicing-by-8 tables, built at compile time.
struct Tables {
  uint32_t t[8][256];
};

constexpr Tables make_tables() {
  Tables tables{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolyReflected : c >> 1;
    tables.t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) {
      uint32_t prev = tables.t[s - 1][i];
      tables.t[s][i] = (prev >> 8) ^ tables.t[0][prev & 0xff];
    }
  }
  return tables;
}

constexpr Tables kTables = make_tables();

bool detect_hardware() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

const bool kHardware = detect_hardware();

// Advances a raw (non-inverted) CRC register over n zero bytes.
uint32_t shift_raw_slow(uint32_t c, size_t n) {
  while (n-- > 0) c = (c >> 8) ^ kTables.t[0][c & 0xff];
  return c;
}

// shift_raw_slow(x, kStripeBytes) is linear in x, so it is a XOR of four
// per-byte lookups.
constexpr size_t kStripeBytes = 256;
struct ShiftTables {
  uint32_t t[4][256];
  ShiftTables() {
    for (int b = 0; b < 4; ++b)
      for (uint32_t v = 0; v < 256; ++v) t[b][v] = shift_raw_slow(v << (8 * b), kStripeBytes);
  }
};
const ShiftTables kShift;

[[maybe_unused]] uint32_t combine_shift(uint32_t c, size_t n) {
  (void)n;  // always kStripeBytes
  return kShift.t[0][c & 0xff] ^ kShift.t[1][(c >> 8) & 0xff] ^ kShift.t[2][(c >> 16) & 0xff] ^
         kShift.t[3][c >> 24];
}

}  // namespace

uint32_t crc32c_extend_software(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (size >= 8) {
    uint32_t lo;
    uint32_t hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;  // little-endian hosts only; evert targets x86_64/aarch64 LE
    c = kTables.t[7][lo & 0xff] ^ kTables.t[6][(lo >> 8) & 0xff] ^ kTables.t[5][(lo >> 16) & 0xff] ^
        kTables.t[4][lo >> 24] ^ kTables.t[3][hi & 0xff] ^ kTables.t[2][(hi >> 8) & 0xff] ^
        kTables.t[1][(hi >> 16) & 0xff] ^ kTables.t[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) c = (c >> 8) ^ kTables.t[0][(c ^ *p++) & 0xff];
  return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_extend_hardware(uint32_t crc, const void* data,
                                                                  size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  while (size > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(uint32_t(c), *p++);
    --size;
  }
  // Three independent streams hide the instruction's 3-cycle latency.
  constexpr size_t kStripe = kStripeBytes;
  while (size >= 3 * kStripe) {
    uint64_t c1 = 0;
    uint64_t c2 = 0;
    for (size_t i = 0; i < kStripe; i += 8) {
      uint64_t a, b, d;
      std::memcpy(&a, p + i, 8);
      std::memcpy(&b, p + kStripe + i, 8);
      std::memcpy(&d, p + 2 * kStripe + i, 8);
      c = _mm_crc32_u64(c, a);
      c1 = _mm_crc32_u64(c1, b);
      c2 = _mm_crc32_u64(c2, d);
    }
    // crc(A||B) = shift(crc(A), |B|) ^ crc_from_zero(B): fold the streams.
    c = combine_shift(uint32_t(c), kStripe) ^ uint32_t(c1);
    c = combine_shift(uint32_t(c), kStripe) ^ uint32_t(c2);
    p += 3 * kStripe;
    size -= 3 * kStripe;
  }
  while (size >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    size -= 8;
  }
  while (size-- > 0) c = _mm_crc32_u8(uint32_t(c), *p++);
  return ~uint32_t(c);
}
#else
uint32_t crc32c_extend_hardware(uint32_t crc, const void* data, size_t size) {
  return crc32c_extend_software(crc, data, size);
}
#endif

bool crc32c_hardware_available() { return kHardware; }

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) {
  return kHardware ? crc32c_extend_hardware(crc, data, size) : crc32c_extend_software(crc, data, size);
}

}  // namespace evert
