#include "base/bytes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace evert {
namespace {

std::string hex(const std::string& s) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string uvarint_bytes(uint64_t v) {
  std::string out;
  put_uvarint(out, v);
  return out;
}

TEST(Bytes, BigEndianStoresMostSignificantByteFirst) {
  uint8_t buf[8];
  store_be16(buf, 0x0102);
  EXPECT_EQ(buf[0], 0x01);
  EXPECT_EQ(buf[1], 0x02);
  store_be32(buf, 0x01020304);
  EXPECT_EQ(hex(std::string(reinterpret_cast<char*>(buf), 4)), "01020304");
  store_be64(buf, 0x0102030405060708ull);
  EXPECT_EQ(hex(std::string(reinterpret_cast<char*>(buf), 8)), "0102030405060708");
}

TEST(Bytes, BigEndianRoundTrips) {
  uint8_t buf[8];
  for (uint16_t v : {uint16_t(0), uint16_t(1), uint16_t(0x8000), uint16_t(0xffff)}) {
    store_be16(buf, v);
    EXPECT_EQ(load_be16(buf), v);
  }
  for (uint32_t v : {0u, 1u, 0x80000000u, 0xdeadbeefu, 0xffffffffu}) {
    store_be32(buf, v);
    EXPECT_EQ(load_be32(buf), v);
  }
  for (uint64_t v : {0ull, 1ull, 0x8000000000000000ull, 0x0123456789abcdefull, ~0ull}) {
    store_be64(buf, v);
    EXPECT_EQ(load_be64(buf), v);
  }
}

TEST(Bytes, ZigZagMapsSmallMagnitudesToSmallCodes) {
  EXPECT_EQ(zigzag_encode(0), 0u);
  EXPECT_EQ(zigzag_encode(-1), 1u);
  EXPECT_EQ(zigzag_encode(1), 2u);
  EXPECT_EQ(zigzag_encode(-2), 3u);
  EXPECT_EQ(zigzag_encode(std::numeric_limits<int64_t>::max()), ~0ull - 1);
  EXPECT_EQ(zigzag_encode(std::numeric_limits<int64_t>::min()), ~0ull);
  for (int64_t v : {int64_t(0), int64_t(-1), int64_t(63), int64_t(-64), std::numeric_limits<int64_t>::max(),
                    std::numeric_limits<int64_t>::min()}) {
    EXPECT_EQ(zigzag_decode(zigzag_encode(v)), v);
  }
}

TEST(Bytes, UvarintEncodingMatchesLeb128) {
  EXPECT_EQ(hex(uvarint_bytes(0)), "00");
  EXPECT_EQ(hex(uvarint_bytes(1)), "01");
  EXPECT_EQ(hex(uvarint_bytes(127)), "7f");
  EXPECT_EQ(hex(uvarint_bytes(128)), "8001");
  EXPECT_EQ(hex(uvarint_bytes(300)), "ac02");
  EXPECT_EQ(hex(uvarint_bytes(~0ull)), "ffffffffffffffffff01");
  std::string out;
  EXPECT_EQ(put_uvarint(out, ~0ull), 10u);
  EXPECT_EQ(put_varint(out, -1), 1u);  // zig-zag 1
  EXPECT_EQ(out.back(), '\x01');
}

TEST(ByteReader, ReadsBigEndianFields) {
  std::string data = std::string("\x7f", 1) + std::string("\x01\x02", 2) + std::string("\xff\xff\xff\xfe", 4) +
                     std::string("\x00\x00\x00\x00\x00\x00\x01\x00", 8) + std::string("\x80\x00\x00\x00", 4);
  ByteReader r(as_bytes(data));
  EXPECT_EQ(r.i8(), 0x7f);
  EXPECT_EQ(r.i16(), 0x0102);
  EXPECT_EQ(r.i32(), -2);
  EXPECT_EQ(r.i64(), 256);
  EXPECT_EQ(r.u32(), 0x80000000u);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(r.position(), data.size());
}

TEST(ByteReader, FirstOutOfBoundsReadLatchesFailure) {
  std::string data("\x01\x02\x03", 3);
  ByteReader r(as_bytes(data));
  EXPECT_EQ(r.i16(), 0x0102);
  EXPECT_EQ(r.i32(), 0);  // only one byte left
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_EQ(r.i8(), 0);  // the byte that was there is not handed out after a failure
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, BytesNeverReadsPastTheEnd) {
  std::string data("abcdef");
  ByteReader r(as_bytes(data));
  EXPECT_EQ(as_string_view(r.bytes(2)), "ab");
  EXPECT_EQ(r.remaining(), 4u);
  EXPECT_TRUE(r.bytes(5).empty());
  EXPECT_FALSE(r.ok());
  ByteReader huge(as_bytes(data));
  EXPECT_TRUE(huge.bytes(~size_t(0)).empty());
  EXPECT_FALSE(huge.ok());
}

TEST(ByteReader, UvarintRoundTripsRandomValues) {
  std::mt19937_64 rng(1);
  std::string data;
  std::vector<uint64_t> values = {0, 1, 127, 128, ~0ull, 1ull << 63};
  for (int i = 0; i < 1000; ++i) values.push_back(rng() >> (rng() % 64));
  for (uint64_t v : values) put_uvarint(data, v);
  ByteReader r(as_bytes(data));
  for (uint64_t v : values) ASSERT_EQ(r.uvarint(), v);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.at_end());
}

TEST(ByteReader, VarlongRoundTripsSignedValues) {
  std::string data;
  std::vector<int64_t> values = {0, -1, 1, -64, 64, std::numeric_limits<int64_t>::min(),
                                 std::numeric_limits<int64_t>::max()};
  for (int64_t v : values) put_varint(data, v);
  ByteReader r(as_bytes(data));
  for (int64_t v : values) EXPECT_EQ(r.varlong(), v);
  EXPECT_TRUE(r.ok());
}

TEST(ByteReader, UvarintLongerThanTenBytesFails) {
  std::string data(10, '\x80');
  data.push_back('\x00');
  ByteReader r(as_bytes(data));
  r.uvarint();
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, UvarintOverflowingSixtyFourBitsFails) {
  std::string data(9, '\xff');
  data.push_back('\x02');  // the tenth byte may only hold the top bit
  ByteReader r(as_bytes(data));
  r.uvarint();
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, TruncatedUvarintFails) {
  std::string data("\x80\x80", 2);
  ByteReader r(as_bytes(data));
  EXPECT_EQ(r.uvarint(), 0u);
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, Uvarint32RejectsValuesAbove32Bits) {
  std::string ok_data = uvarint_bytes(UINT32_MAX);
  ByteReader ok(as_bytes(ok_data));
  EXPECT_EQ(ok.uvarint32(), UINT32_MAX);
  EXPECT_TRUE(ok.ok());
  std::string big = uvarint_bytes(uint64_t(UINT32_MAX) + 1);
  ByteReader r(as_bytes(big));
  EXPECT_EQ(r.uvarint32(), 0u);
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, VarintRejectsValuesOutsideInt32) {
  std::string data;
  put_varint(data, INT32_MIN);
  put_varint(data, INT32_MAX);
  ByteReader r(as_bytes(data));
  EXPECT_EQ(r.varint(), INT32_MIN);
  EXPECT_EQ(r.varint(), INT32_MAX);
  EXPECT_TRUE(r.ok());
  for (int64_t v : {int64_t(INT32_MAX) + 1, int64_t(INT32_MIN) - 1}) {
    std::string d;
    put_varint(d, v);
    ByteReader bad(as_bytes(d));
    EXPECT_EQ(bad.varint(), 0);
    EXPECT_FALSE(bad.ok());
  }
}

TEST(ByteReader, FailIsSticky) {
  std::string data("\x01\x02", 2);
  ByteReader r(as_bytes(data));
  r.fail();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.i8(), 0);
  EXPECT_FALSE(r.ok());
}

TEST(Bytes, StringViewConversionsShareMemory) {
  std::string s = "hello";
  ByteSpan b = as_bytes(s);
  EXPECT_EQ(b.size(), 5u);
  EXPECT_EQ(reinterpret_cast<const char*>(b.data()), s.data());
  EXPECT_EQ(as_string_view(b), "hello");
}

}  // namespace
}  // namespace evert
