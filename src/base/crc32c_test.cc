#include "base/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace evert {
namespace {

std::vector<uint8_t> filled(size_t n, uint8_t value) { return std::vector<uint8_t>(n, value); }

// Published CRC32C vectors (RFC 3720, appendix B.4, and the usual check value).
struct Vector {
  const char* name;
  std::vector<uint8_t> data;
  uint32_t crc;
};

std::vector<Vector> published_vectors() {
  std::vector<uint8_t> ascending(32);
  std::vector<uint8_t> descending(32);
  for (size_t i = 0; i < 32; ++i) {
    ascending[i] = uint8_t(i);
    descending[i] = uint8_t(31 - i);
  }
  std::string check = "123456789";
  std::vector<uint8_t> iscsi_read_pdu = {0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                                         0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  return {
      {"empty", {}, 0x00000000},
      {"check", std::vector<uint8_t>(check.begin(), check.end()), 0xE3069283},
      {"32 zeros", filled(32, 0x00), 0x8A9136AA},
      {"32 ones", filled(32, 0xFF), 0x62A8AB43},
      {"ascending", ascending, 0x46DD794E},
      {"descending", descending, 0x113FDB5C},
      {"iscsi read pdu", iscsi_read_pdu, 0xD9963A56},
  };
}

TEST(Crc32c, PublishedVectors) {
  for (const auto& v : published_vectors()) {
    SCOPED_TRACE(v.name);
    EXPECT_EQ(crc32c(v.data.data(), v.data.size()), v.crc);
    EXPECT_EQ(crc32c_extend_software(0, v.data.data(), v.data.size()), v.crc);
  }
}

TEST(Crc32c, HardwarePathMatchesPublishedVectors) {
  if (!crc32c_hardware_available()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  for (const auto& v : published_vectors()) {
    SCOPED_TRACE(v.name);
    EXPECT_EQ(crc32c_extend_hardware(0, v.data.data(), v.data.size()), v.crc);
  }
}

// The hardware path folds three 256-byte stripes; sizes and alignments around
// those boundaries are where a folding mistake would show.
TEST(Crc32c, HardwareAndSoftwareAgreeOnEverySizeAndAlignment) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> data(4096 + 16);
  for (auto& b : data) b = uint8_t(rng());
  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 64; ++n) sizes.push_back(n);
  for (size_t n : {255u, 256u, 257u, 767u, 768u, 769u, 1023u, 1536u, 2304u, 2305u, 3000u, 4096u}) sizes.push_back(n);
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n : sizes) {
      SCOPED_TRACE(::testing::Message() << "offset " << offset << " size " << n);
      uint32_t sw = crc32c_extend_software(0, data.data() + offset, n);
      EXPECT_EQ(crc32c_extend_hardware(0, data.data() + offset, n), sw);
      EXPECT_EQ(crc32c(data.data() + offset, n), sw);
    }
  }
}

TEST(Crc32c, ExtendInPiecesEqualsWhole) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> data(5000);
  for (auto& b : data) b = uint8_t(rng());
  uint32_t whole = crc32c(data.data(), data.size());
  for (size_t split : {size_t(0), size_t(1), size_t(7), size_t(768), size_t(2500), data.size()}) {
    SCOPED_TRACE(split);
    uint32_t c = crc32c(data.data(), split);
    c = crc32c_extend(c, data.data() + split, data.size() - split);
    EXPECT_EQ(c, whole);
    uint32_t s = crc32c_extend_software(0, data.data(), split);
    s = crc32c_extend_software(s, data.data() + split, data.size() - split);
    EXPECT_EQ(s, whole);
  }
}

// The VPCLMULQDQ path folds 256-byte blocks of four 512-bit lanes and hands
// the tail to the crc32 instruction: check sizes around those steps, every
// alignment, and a non-zero starting CRC.
TEST(Crc32c, VpclmulAndSoftwareAgreeOnEverySizeAndAlignment) {
  if (!crc32c_vpclmul_available()) GTEST_SKIP() << "no AVX-512 VPCLMULQDQ on this CPU";
  std::mt19937_64 rng(43);
  std::vector<uint8_t> data((64u << 10) + 64);
  for (auto& b : data) b = uint8_t(rng());
  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 1100; ++n) sizes.push_back(n);
  for (size_t blocks : {4u, 5u, 63u, 64u, 255u})
    for (size_t extra : {0u, 1u, 15u, 16u, 17u, 63u, 64u, 255u}) sizes.push_back(blocks * 256 + extra);
  sizes.push_back(64u << 10);
  for (size_t offset = 0; offset < 64; offset += 7) {
    for (size_t n : sizes) {
      SCOPED_TRACE(::testing::Message() << "offset " << offset << " size " << n);
      for (uint32_t start : {0u, 0xDEADBEEFu}) {
        uint32_t sw = crc32c_extend_software(start, data.data() + offset, n);
        ASSERT_EQ(crc32c_extend_vpclmul(start, data.data() + offset, n), sw);
      }
    }
  }
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  std::vector<uint8_t> data(300);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 31);
  uint32_t good = crc32c(data.data(), data.size());
  for (size_t byte = 0; byte < data.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      data[byte] ^= uint8_t(1 << bit);
      ASSERT_NE(crc32c(data.data(), data.size()), good) << "byte " << byte << " bit " << bit;
      data[byte] ^= uint8_t(1 << bit);
    }
  }
}

}  // namespace
}  // namespace evert
