#include "base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
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

bool detect_vpclmul() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") &&
         __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq");
#else
  return false;
#endif
}

const bool kHardware = detect_hardware();
const bool kVpclmul = detect_vpclmul();

// a * b mod P for bit-reflected polynomials (bit 31 is x^0), as the CRC
// register holds them.
constexpr uint32_t multiply_mod_p(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; ++i) {
    if (a & (0x80000000u >> i)) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPolyReflected : b >> 1;  // b *= x
  }
  return product;
}

// x^n mod P, bit-reflected.
constexpr uint32_t x_pow_mod_p(uint64_t n) {
  uint32_t result = 0x80000000u;  // x^0
  uint32_t square = 0x40000000u;  // x^1, x^2, x^4, ...
  for (; n > 0; n >>= 1) {
    if (n & 1) result = multiply_mod_p(result, square);
    square = multiply_mod_p(square, square);
  }
  return result;
}

// Folding a 16-byte lane forward over `distance` bytes multiplies its first
// and second 8 bytes by x^(8*distance + 32) and x^(8*distance - 32) mod P. A
// carry-less product of reflected operands comes out one bit short, hence
// the exponents one lower. crc32c_test.cc checks the result against the
// software path.
struct FoldConstants {
  uint64_t first;
  uint64_t second;
};
constexpr FoldConstants fold_constants(uint64_t distance) {
  return {x_pow_mod_p(8 * distance + 32 - 1), x_pow_mod_p(8 * distance - 32 - 1)};
}
constexpr FoldConstants kFold256 = fold_constants(256);
constexpr FoldConstants kFold64 = fold_constants(64);
constexpr FoldConstants kFold16 = fold_constants(16);
static_assert(x_pow_mod_p(32) == kPolyReflected);  // x^32 mod P is P without its x^32 term

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

#define EVERT_VPCLMUL_TARGET __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))

EVERT_VPCLMUL_TARGET inline __m512i broadcast_512(FoldConstants k) {
  auto first = int64_t(k.first);
  auto second = int64_t(k.second);
  return _mm512_set_epi64(second, first, second, first, second, first, second, first);
}

EVERT_VPCLMUL_TARGET inline __m512i fold_512(__m512i x, __m512i k, __m512i next) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), next,
                                   0x96);  // a ^ b ^ c
}

EVERT_VPCLMUL_TARGET inline __m128i fold_128(__m128i x, __m128i k, __m128i next) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

// The crc32 instruction retires 8 bytes a cycle at best. Folding with
// carry-less multiplies over four 512-bit lanes moves 256 bytes per step:
// each 16-byte lane is multiplied forward onto the bytes 256 further on
// until the data ends, the lanes are folded onto the last 16 bytes, and
// those 16 bytes, which now stand for everything before them, go through the
// crc32 instruction.
EVERT_VPCLMUL_TARGET uint32_t crc32c_extend_vpclmul(uint32_t crc, const void* data, size_t size) {
  constexpr size_t kBlock = 256;
  if (size < 2 * kBlock) return crc32c_extend_hardware(crc, data, size);
  const auto* p = static_cast<const uint8_t*>(data);
  // Loads that straddle cache lines cost up to a quarter of the speed, and a
  // batch's CRC starts 21 bytes in: the crc32 instruction takes the bytes up
  // to the next 64-byte boundary.
  size_t head = (64 - (reinterpret_cast<uintptr_t>(p) & 63)) & 63;
  crc = crc32c_extend_hardware(crc, p, head);
  p += head;
  size -= head;
  const __m512i k256 = broadcast_512(kFold256);
  const __m512i k64 = broadcast_512(kFold64);
  const __m128i k16 = _mm_set_epi64x(int64_t(kFold16.second), int64_t(kFold16.first));
  // Starting from register ~crc is the same as starting from 0 with ~crc
  // XORed into the first four bytes.
  __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, int64_t(~crc)));
  __m512i x1 = _mm512_loadu_si512(p + 64);
  __m512i x2 = _mm512_loadu_si512(p + 128);
  __m512i x3 = _mm512_loadu_si512(p + 192);
  p += kBlock;
  size -= kBlock;
  while (size >= kBlock) {
    x0 = fold_512(x0, k256, _mm512_loadu_si512(p));
    x1 = fold_512(x1, k256, _mm512_loadu_si512(p + 64));
    x2 = fold_512(x2, k256, _mm512_loadu_si512(p + 128));
    x3 = fold_512(x3, k256, _mm512_loadu_si512(p + 192));
    p += kBlock;
    size -= kBlock;
  }
  x1 = fold_512(x0, k64, x1);
  x2 = fold_512(x1, k64, x2);
  x3 = fold_512(x2, k64, x3);
  // (The maskz forms: GCC 12 warns about the undefined lanes of the others.)
  __m128i v = _mm512_maskz_extracti32x4_epi32(0xF, x3, 0);
  v = fold_128(v, k16, _mm512_maskz_extracti32x4_epi32(0xF, x3, 1));
  v = fold_128(v, k16, _mm512_maskz_extracti32x4_epi32(0xF, x3, 2));
  v = fold_128(v, k16, _mm512_maskz_extracti32x4_epi32(0xF, x3, 3));
  uint64_t c = _mm_crc32_u64(0, uint64_t(_mm_cvtsi128_si64(v)));
  c = _mm_crc32_u64(c, uint64_t(_mm_extract_epi64(v, 1)));
  return crc32c_extend_hardware(~uint32_t(c), p, size);
}
#undef EVERT_VPCLMUL_TARGET
#else
uint32_t crc32c_extend_hardware(uint32_t crc, const void* data, size_t size) {
  return crc32c_extend_software(crc, data, size);
}
uint32_t crc32c_extend_vpclmul(uint32_t crc, const void* data, size_t size) {
  return crc32c_extend_software(crc, data, size);
}
#endif

bool crc32c_hardware_available() { return kHardware; }
bool crc32c_vpclmul_available() { return kVpclmul; }

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) {
  if (kVpclmul) return crc32c_extend_vpclmul(crc, data, size);
  return kHardware ? crc32c_extend_hardware(crc, data, size) : crc32c_extend_software(crc, data, size);
}

}  // namespace evert
