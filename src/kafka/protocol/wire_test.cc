// Tests of the Kafka wire primitives: each encoding is checked against hand
// written bytes, written through the Encoder and read back through the
// Decoder, and fed lengths and counts that lie.
#include "kafka/protocol/wire.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "kafka/protocol/alloc_probe_test_util.h"

// ------------------------------------------------------------- alloc probe
// Replaces the global operator new for this test binary (see
// alloc_probe_test_util.h). The array and sized forms of the standard library
// forward to these two.
namespace {
std::atomic<size_t> g_largest_allocation_bytes{0};
}  // namespace

void* operator new(size_t size) {
  size_t seen = g_largest_allocation_bytes.load(std::memory_order_relaxed);
  while (size > seen && !g_largest_allocation_bytes.compare_exchange_weak(seen, size)) {
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// Not inlined: GCC would otherwise see free() paired with a new-expression
// at each call site and warn (-Wmismatched-new-delete).
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace evert::kafka {
namespace test {
void reset_largest_allocation() { g_largest_allocation_bytes.store(0); }
size_t largest_allocation_bytes() { return g_largest_allocation_bytes.load(); }
}  // namespace test

namespace {

// A byte buffer the Decoder can point into (it wants mutable bytes).
struct Buf {
  std::string bytes;
  explicit Buf(std::string b) : bytes(std::move(b)) {}
  MutableByteSpan span() { return MutableByteSpan(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()); }
};

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string flat(const Encoder& e) {
  auto r = e.flatten();
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::string();
}

// An in-memory file for Encoder file-range parts.
class StringFile final : public io::File {
 public:
  explicit StringFile(std::string data) : data_(std::move(data)) {}
  Result<size_t> read_at(uint64_t position, MutableByteSpan out) const override {
    if (position >= data_.size()) return size_t(0);
    size_t n = std::min<size_t>(out.size(), data_.size() - position);
    std::memcpy(out.data(), data_.data() + position, n);
    return n;
  }
  Status write_at(uint64_t, ByteSpan) override { return error(ErrorCode::kUnsupported, "read-only"); }
  Status sync_data() override { return Status::ok(); }
  Status truncate(uint64_t) override { return error(ErrorCode::kUnsupported, "read-only"); }
  Result<uint64_t> size_bytes() const override { return uint64_t(data_.size()); }
  const std::string& path() const override { return path_; }

 private:
  std::string data_;
  std::string path_ = "mem:string-file";
};

// ------------------------------------------------------------- fixed width

TEST(WireFixed, IntegersAreBigEndian) {
  Encoder e;
  e.write_int8(-2);
  e.write_int16(0x0102);
  e.write_int32(0x01020304);
  e.write_int64(0x0102030405060708);
  e.write_uint16(0xfffe);
  e.write_uint32(0xfffffffe);
  e.write_bool(true);
  e.write_bool(false);
  EXPECT_EQ(hex(flat(e)), "fe" "0102" "01020304" "0102030405060708" "fffe" "fffffffe" "01" "00");
}

TEST(WireFixed, RoundTripsExtremes) {
  Encoder e;
  e.write_int8(INT8_MIN);
  e.write_int8(INT8_MAX);
  e.write_int16(INT16_MIN);
  e.write_int16(INT16_MAX);
  e.write_int32(INT32_MIN);
  e.write_int32(INT32_MAX);
  e.write_int64(INT64_MIN);
  e.write_int64(INT64_MAX);
  e.write_uint16(UINT16_MAX);
  e.write_uint32(UINT32_MAX);
  e.write_float64(-0.0);
  e.write_float64(1.5e300);
  e.write_float64(std::numeric_limits<double>::infinity());
  e.write_float64(std::numeric_limits<double>::quiet_NaN());
  Uuid u;
  for (size_t i = 0; i < u.size(); ++i) u[i] = uint8_t(0xa0 + i);
  e.write_uuid(u);
  Buf b(flat(e));
  EXPECT_EQ(b.bytes.size(), 2u + 4 + 8 + 16 + 2 + 4 + 4 * 8 + 16);
  Decoder d(b.span());
  EXPECT_EQ(d.read_int8(), INT8_MIN);
  EXPECT_EQ(d.read_int8(), INT8_MAX);
  EXPECT_EQ(d.read_int16(), INT16_MIN);
  EXPECT_EQ(d.read_int16(), INT16_MAX);
  EXPECT_EQ(d.read_int32(), INT32_MIN);
  EXPECT_EQ(d.read_int32(), INT32_MAX);
  EXPECT_EQ(d.read_int64(), INT64_MIN);
  EXPECT_EQ(d.read_int64(), INT64_MAX);
  EXPECT_EQ(d.read_uint16(), UINT16_MAX);
  EXPECT_EQ(d.read_uint32(), UINT32_MAX);
  double z = d.read_float64();
  EXPECT_EQ(z, 0.0);
  EXPECT_TRUE(std::signbit(z));
  EXPECT_EQ(d.read_float64(), 1.5e300);
  EXPECT_TRUE(std::isinf(d.read_float64()));
  EXPECT_TRUE(std::isnan(d.read_float64()));
  EXPECT_EQ(d.read_uuid(), u);
  EXPECT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(WireFixed, Float64IsIeeeBigEndian) {
  Encoder e;
  e.write_float64(1.0);
  EXPECT_EQ(hex(flat(e)), "3ff0000000000000");
}

TEST(WireFixed, AnyNonZeroByteIsTrue) {
  Buf b(std::string("\x00\x01\x02\xff", 4));
  Decoder d(b.span());
  EXPECT_FALSE(d.read_bool());
  EXPECT_TRUE(d.read_bool());
  EXPECT_TRUE(d.read_bool());
  EXPECT_TRUE(d.read_bool());
  EXPECT_TRUE(d.ok());
}

TEST(WireFixed, EachWidthFailsOnOneByteShort) {
  struct Case {
    const char* name;
    size_t width;
    std::function<void(Decoder&)> read;
  };
  std::vector<Case> cases = {
      {"int8", 1, [](Decoder& d) { (void)d.read_int8(); }},
      {"bool", 1, [](Decoder& d) { (void)d.read_bool(); }},
      {"int16", 2, [](Decoder& d) { (void)d.read_int16(); }},
      {"uint16", 2, [](Decoder& d) { (void)d.read_uint16(); }},
      {"int32", 4, [](Decoder& d) { (void)d.read_int32(); }},
      {"uint32", 4, [](Decoder& d) { (void)d.read_uint32(); }},
      {"int64", 8, [](Decoder& d) { (void)d.read_int64(); }},
      {"float64", 8, [](Decoder& d) { (void)d.read_float64(); }},
      {"uuid", 16, [](Decoder& d) { (void)d.read_uuid(); }},
  };
  for (const auto& c : cases) {
    Buf exact(std::string(c.width, '\x7f'));
    Decoder ok(exact.span());
    c.read(ok);
    EXPECT_TRUE(ok.ok()) << c.name;
    EXPECT_EQ(ok.remaining(), 0u) << c.name;
    Buf short_by_one(std::string(c.width - 1, '\x7f'));
    Decoder bad(short_by_one.span());
    c.read(bad);
    EXPECT_FALSE(bad.ok()) << c.name;
    EXPECT_EQ(bad.status().code(), ErrorCode::kCorruption) << c.name;
  }
}

TEST(WireDecoder, FailureLatchesAndLaterReadsReturnZero) {
  Buf b(std::string("\x01\x02\x03", 3));
  Decoder d(b.span());
  EXPECT_EQ(d.read_int32(), 0);
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
  EXPECT_NE(d.error_message().find("at byte 0"), std::string::npos) << d.error_message();
  // The bytes that are there are not read after a failure.
  EXPECT_EQ(d.read_int8(), 0);
  EXPECT_EQ(d.read_string(false), "");
  EXPECT_FALSE(d.ok());
  // The first error is the one reported.
  d.fail("a later problem");
  EXPECT_EQ(d.error_message().find("later"), std::string::npos) << d.error_message();
}

// ------------------------------------------------------------- varints

TEST(WireVarint, KnownEncodings) {
  struct Case {
    uint64_t value;
    const char* hex;
  };
  const Case cases[] = {
      {0, "00"},
      {1, "01"},
      {127, "7f"},
      {128, "8001"},
      {300, "ac02"},
      {16383, "ff7f"},
      {16384, "808001"},
      {uint64_t(INT32_MAX), "ffffffff07"},
      {UINT32_MAX, "ffffffff0f"},
      {UINT64_MAX, "ffffffffffffffffff01"},
  };
  for (const auto& c : cases) {
    Encoder e;
    e.write_uvarint(c.value);
    std::string bytes = flat(e);
    EXPECT_EQ(hex(bytes), c.hex) << c.value;
    Buf b(bytes);
    Decoder d(b.span());
    EXPECT_EQ(d.read_uvarint(), c.value);
    EXPECT_TRUE(d.ok()) << c.value << ": " << d.error_message();
    EXPECT_EQ(d.remaining(), 0u);
  }
}

TEST(WireVarint, PaddedButInRangeIsAccepted) {
  // Kafka's own readers accept redundant continuation groups; so do we.
  Buf b(std::string("\x80\x80\x00", 3));
  Decoder d(b.span());
  EXPECT_EQ(d.read_uvarint(), 0u);
  EXPECT_TRUE(d.ok());
}

TEST(WireVarint, ElevenBytesFail) {
  Buf b(std::string(10, '\x80') + std::string(1, '\x00'));
  Decoder d(b.span());
  (void)d.read_uvarint();
  EXPECT_FALSE(d.ok());
}

TEST(WireVarint, TenthByteBeyond64BitsFails) {
  // Nine full groups carry 63 bits; the tenth byte may only add bit 63.
  Buf b(std::string(9, '\xff') + std::string(1, '\x02'));
  Decoder d(b.span());
  (void)d.read_uvarint();
  EXPECT_FALSE(d.ok()) << "a 65-bit varint must not be truncated silently";
}

TEST(WireVarint, UnterminatedFails) {
  for (size_t n = 0; n <= 10; ++n) {
    Buf b(std::string(n, '\x81'));
    Decoder d(b.span());
    (void)d.read_uvarint();
    EXPECT_FALSE(d.ok()) << n << " continuation bytes";
  }
}

// ------------------------------------------------------------- strings

TEST(WireString, ClassicLayout) {
  Encoder e;
  e.write_string("abc", false);
  e.write_string("", false);
  e.write_nullable_string(std::nullopt, false);
  e.write_nullable_string(std::string("x"), false);
  EXPECT_EQ(hex(flat(e)), "0003616263" "0000" "ffff" "000178");
  Buf b(flat(e));
  Decoder d(b.span());
  EXPECT_EQ(d.read_string(false), "abc");
  EXPECT_EQ(d.read_string(false), "");
  EXPECT_EQ(d.read_nullable_string(false), std::nullopt);
  EXPECT_EQ(d.read_nullable_string(false), std::optional<std::string>("x"));
  EXPECT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(WireString, CompactLayout) {
  Encoder e;
  e.write_string("abc", true);
  e.write_string("", true);
  e.write_nullable_string(std::nullopt, true);
  std::string long_string(200, 'z');
  e.write_string(long_string, true);
  std::string bytes = flat(e);
  EXPECT_EQ(hex(bytes.substr(0, 7)), "04616263" "01" "00" "c9");
  Buf b(bytes);
  Decoder d(b.span());
  EXPECT_EQ(d.read_string(true), "abc");
  EXPECT_EQ(d.read_nullable_string(true), std::optional<std::string>(""));
  EXPECT_EQ(d.read_nullable_string(true), std::nullopt);
  EXPECT_EQ(d.read_string(true), long_string);
  EXPECT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(WireString, ClassicStringsLongerThanInt16AreCut) {
  // An error message quoting a 32767-byte topic name must not wrap the
  // int16 length (which would corrupt the rest of the response).
  std::string long_text(40000, 'n');
  Encoder e;
  e.write_string(long_text, false);
  e.write_nullable_string(long_text, false);
  e.write_string(long_text, true);  // compact lengths have no such limit
  Buf b(flat(e));
  Decoder d(b.span());
  EXPECT_EQ(d.read_string(false), std::string(32767, 'n'));
  EXPECT_EQ(d.read_nullable_string(false), std::string(32767, 'n'));
  EXPECT_EQ(d.read_string(true), long_text);
  EXPECT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(WireString, NullWhereRequiredFails) {
  Buf classic(std::string("\xff\xff", 2));
  Decoder d1(classic.span());
  (void)d1.read_string(false);
  EXPECT_FALSE(d1.ok());
  Buf compact(std::string("\x00", 1));
  Decoder d2(compact.span());
  (void)d2.read_string(true);
  EXPECT_FALSE(d2.ok());
}

TEST(WireString, NegativeLengthOtherThanMinusOneFails) {
  for (const char* len : {"\xff\xfe", "\x80\x00", "\xff\x00"}) {
    Buf b(std::string(len, 2) + "abcdef");
    Decoder d(b.span());
    (void)d.read_nullable_string(false);
    EXPECT_FALSE(d.ok()) << hex(std::string(len, 2));
  }
}

TEST(WireString, LengthBeyondTheBufferFails) {
  Buf classic(std::string("\x00\x05" "abcd", 6));
  Decoder d1(classic.span());
  (void)d1.read_string(false);
  EXPECT_FALSE(d1.ok());
  Buf compact(std::string("\x06" "abcd", 5));
  Decoder d2(compact.span());
  (void)d2.read_string(true);
  EXPECT_FALSE(d2.ok());
  // A compact length beyond 2^31 is refused before any arithmetic on it.
  Buf huge(std::string("\xff\xff\xff\xff\x0f" "abcd", 9));
  Decoder d3(huge.span());
  test::reset_largest_allocation();
  (void)d3.read_nullable_string(true);
  EXPECT_FALSE(d3.ok());
  EXPECT_LT(test::largest_allocation_bytes(), 4096u);
}

TEST(WireString, LengthExactlyTheRestIsFine) {
  Buf b(std::string("\x00\x03" "abc", 5));
  Decoder d(b.span());
  EXPECT_EQ(d.read_string(false), "abc");
  EXPECT_TRUE(d.ok());
}

// ------------------------------------------------------------- bytes

TEST(WireBytes, ClassicAndCompactLayouts) {
  Encoder e;
  e.write_bytes(std::string("\x00\x01", 2), false);
  e.write_nullable_bytes(std::nullopt, false);
  e.write_bytes("", false);
  e.write_bytes(std::string("\x00\x01", 2), true);
  e.write_nullable_bytes(std::nullopt, true);
  EXPECT_EQ(hex(flat(e)), "000000020001" "ffffffff" "00000000" "030001" "00");
  Buf b(flat(e));
  Decoder d(b.span());
  EXPECT_EQ(d.read_bytes(false), std::string("\x00\x01", 2));
  EXPECT_EQ(d.read_nullable_bytes(false), std::nullopt);
  EXPECT_EQ(d.read_nullable_bytes(false), std::optional<std::string>(""));
  EXPECT_EQ(d.read_bytes(true), std::string("\x00\x01", 2));
  EXPECT_EQ(d.read_nullable_bytes(true), std::nullopt);
  EXPECT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(WireBytes, NullWhereRequiredFails) {
  Buf b(std::string("\xff\xff\xff\xff", 4));
  Decoder d(b.span());
  (void)d.read_bytes(false);
  EXPECT_FALSE(d.ok());
}

TEST(WireBytes, LyingLengthsFailWithoutAllocating) {
  for (const std::string& len : {std::string("\x7f\xff\xff\xff", 4), std::string("\x00\x00\x00\x09", 4),
                                 std::string("\xff\xff\xff\xfe", 4), std::string("\x80\x00\x00\x00", 4)}) {
    Buf b(len + "12345678");
    Decoder d(b.span());
    test::reset_largest_allocation();
    (void)d.read_nullable_bytes(false);
    EXPECT_FALSE(d.ok()) << hex(len);
    EXPECT_LT(test::largest_allocation_bytes(), 4096u) << hex(len);
  }
}

// ------------------------------------------------------------- records

TEST(WireRecords, PointIntoTheBufferWithoutCopying) {
  Buf b(std::string("\x00\x00\x00\x04" "ABCD" "\x05" "wxyz", 13));
  Decoder d(b.span());
  Records r = d.read_records(false);
  ASSERT_TRUE(d.ok()) << d.error_message();
  EXPECT_FALSE(r.is_null);
  ASSERT_EQ(r.data.size(), 4u);
  EXPECT_EQ(static_cast<void*>(r.data.data()), static_cast<void*>(b.bytes.data() + 4));
  EXPECT_EQ(r.size_bytes(), 4u);
  // Writes through the span reach the request buffer (the log stamps offsets in place).
  r.data[0] = 'Z';
  EXPECT_EQ(b.bytes[4], 'Z');
  Records compact = d.read_records(true);
  ASSERT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(static_cast<void*>(compact.data.data()), static_cast<void*>(b.bytes.data() + 9));
  EXPECT_EQ(compact.data.size(), 4u);
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(WireRecords, NullAndEmpty) {
  Buf b(std::string("\xff\xff\xff\xff" "\x00\x00\x00\x00" "\x00" "\x01", 10));
  Decoder d(b.span());
  EXPECT_TRUE(d.read_records(false).is_null);
  Records empty = d.read_records(false);
  EXPECT_FALSE(empty.is_null);
  EXPECT_EQ(empty.size_bytes(), 0u);
  EXPECT_TRUE(d.read_records(true).is_null);
  EXPECT_FALSE(d.read_records(true).is_null);
  EXPECT_TRUE(d.ok()) << d.error_message();
}

TEST(WireRecords, LyingLengthFails) {
  Buf b(std::string("\x00\x00\x10\x00" "ABCD", 8));
  Decoder d(b.span());
  (void)d.read_records(false);
  EXPECT_FALSE(d.ok());
  Buf neg(std::string("\xff\xff\xff\xf0" "ABCD", 8));
  Decoder d2(neg.span());
  (void)d2.read_records(false);
  EXPECT_FALSE(d2.ok());
}

TEST(WireRecords, EncodeConcatenatesMemoryAndFileParts) {
  auto file = std::make_shared<StringFile>("0123456789");
  std::string in_buffer = "ab";
  Records r;
  r.data = MutableByteSpan(reinterpret_cast<uint8_t*>(in_buffer.data()), in_buffer.size());
  r.owned = "cd";
  r.files.push_back(FileRange{file, 2, 3});
  r.files.push_back(FileRange{file, 0, 0});  // empty ranges add no part
  r.files.push_back(FileRange{file, 8, 2});
  EXPECT_EQ(r.size_bytes(), 9u);
  Encoder e;
  e.write_int8(7);
  e.write_records(r, false);
  e.write_int8(8);
  // Memory before the first file range coalesces into one part; each file
  // range stays a part of its own so it can be sent with sendfile.
  ASSERT_EQ(e.parts().size(), 4u);
  EXPECT_TRUE(std::holds_alternative<std::string>(e.parts()[0]));
  EXPECT_TRUE(std::holds_alternative<FileRange>(e.parts()[1]));
  EXPECT_TRUE(std::holds_alternative<FileRange>(e.parts()[2]));
  EXPECT_TRUE(std::holds_alternative<std::string>(e.parts()[3]));
  EXPECT_EQ(e.size_bytes(), 1u + 4 + 9 + 1);
  EXPECT_EQ(flat(e), std::string("\x07\x00\x00\x00\x09" "abcd" "234" "89" "\x08", 15));

  Encoder compact;
  compact.write_records(r, true);
  EXPECT_EQ(flat(compact), std::string("\x0a" "abcd" "234" "89", 10));

  Records null_records;
  null_records.is_null = true;
  Encoder n1, n2;
  n1.write_records(null_records, false);
  n2.write_records(null_records, true);
  EXPECT_EQ(hex(flat(n1)), "ffffffff");
  EXPECT_EQ(hex(flat(n2)), "00");
}

TEST(WireEncoder, AppendKeepsFileRangesAndMergesMemory) {
  auto file = std::make_shared<StringFile>("FILE");
  Encoder inner;
  inner.write_int8('x');
  Records r;
  r.files.push_back(FileRange{file, 0, 4});
  inner.write_records(r, false);
  inner.write_int8('y');
  Encoder outer;
  outer.write_int8('<');
  outer.append(std::move(inner));
  outer.write_int8('>');
  EXPECT_TRUE(inner.parts().empty());
  ASSERT_EQ(outer.parts().size(), 3u);
  EXPECT_EQ(flat(outer), std::string("<x\x00\x00\x00\x04" "FILEy>", 12));
}

TEST(WireEncoder, FlattenReportsAShortFile) {
  auto file = std::make_shared<StringFile>("abc");
  Encoder e;
  Records r;
  r.files.push_back(FileRange{file, 1, 5});
  e.write_records(r, false);
  auto out = e.flatten();
  EXPECT_FALSE(out.is_ok());
}

// ------------------------------------------------------------- arrays

TEST(WireArray, ClassicAndCompactCounts) {
  Encoder e;
  e.write_array_length(3, false);
  e.write_null_array(false);
  e.write_array_length(0, false);
  e.write_array_length(3, true);
  e.write_null_array(true);
  e.write_array_length(0, true);
  EXPECT_EQ(hex(flat(e)), "00000003" "ffffffff" "00000000" "04" "00" "01");
  Buf b(flat(e) + std::string(12, '\0'));
  Decoder d(b.span());
  EXPECT_EQ(d.read_array_length(false, 1), 3);
  EXPECT_EQ(d.read_array_length(false, 1), -1);
  EXPECT_EQ(d.read_array_length(false, 1), 0);
  EXPECT_EQ(d.read_array_length(true, 1), 3);
  EXPECT_EQ(d.read_array_length(true, 1), -1);
  EXPECT_EQ(d.read_array_length(true, 1), 0);
  EXPECT_TRUE(d.ok()) << d.error_message();
}

TEST(WireArray, NegativeCountsOtherThanMinusOneFail) {
  for (int32_t n : {-2, -100, INT32_MIN}) {
    Encoder e;
    e.write_int32(n);
    Buf b(flat(e) + std::string(16, '\0'));
    Decoder d(b.span());
    (void)d.read_array_length(false, 1);
    EXPECT_FALSE(d.ok()) << n;
  }
}

TEST(WireArray, CountLargerThanTheBytesLeftFailsFast) {
  // 2,000,000,000 elements claimed in a 20-byte buffer.
  Encoder e;
  e.write_int32(2'000'000'000);
  Buf b(flat(e) + std::string(16, '\x01'));
  ASSERT_EQ(b.bytes.size(), 20u);
  test::reset_largest_allocation();
  auto start = std::chrono::steady_clock::now();
  Decoder d(b.span());
  (void)d.read_array_length(false, 1);
  EXPECT_FALSE(d.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
  EXPECT_LT(test::largest_allocation_bytes(), 4096u);
  // The minimum element size is honoured: 4 elements of >= 4 bytes fit in 16, 5 do not.
  Encoder fits;
  fits.write_int32(4);
  Buf b4(flat(fits) + std::string(16, '\0'));
  Decoder d4(b4.span());
  EXPECT_EQ(d4.read_array_length(false, 4), 4);
  EXPECT_TRUE(d4.ok());
  Encoder too_many;
  too_many.write_int32(5);
  Buf b5(flat(too_many) + std::string(16, '\0'));
  Decoder d5(b5.span());
  (void)d5.read_array_length(false, 4);
  EXPECT_FALSE(d5.ok());
  // Compact: uvarint(2e9 + 1), and a count beyond int32.
  Encoder compact;
  compact.write_uvarint(2'000'000'001);
  Buf bc(flat(compact) + std::string(15, '\x01'));
  Decoder dc(bc.span());
  (void)dc.read_array_length(true, 1);
  EXPECT_FALSE(dc.ok());
  Encoder beyond;
  beyond.write_uvarint(uint64_t(1) << 40);
  Buf bb(flat(beyond) + std::string(15, '\x01'));
  Decoder db(bb.span());
  (void)db.read_array_length(true, 0);
  EXPECT_FALSE(db.ok());
}

TEST(WireArray, ZeroMinimumElementSizeIsTreatedAsOne) {
  Encoder e;
  e.write_int32(17);
  Buf b(flat(e) + std::string(16, '\0'));
  Decoder d(b.span());
  (void)d.read_array_length(false, 0);
  EXPECT_FALSE(d.ok());
}

// ------------------------------------------------------------- tagged fields

TEST(WireTagged, EmptyBufferIsOneZeroByte) {
  Encoder e;
  e.write_empty_tagged_fields();
  EXPECT_EQ(hex(flat(e)), "00");
  Buf b(flat(e));
  Decoder d(b.span());
  int calls = 0;
  d.read_tagged_fields([&](uint32_t, Decoder&) {
    ++calls;
    return false;
  });
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(WireTagged, KnownTagsDecodeAndUnknownOnesAreSkipped) {
  // Three fields: tag 0 (an int32 we know), tag 5 (unknown, 3 bytes),
  // tag 300 (unknown, a two-byte tag number), then a trailing int16.
  Buf b(std::string("\x03" "\x00\x04\x00\x00\x01\x02" "\x05\x03" "abc" "\xac\x02\x01" "z" "\x12\x34", 18));
  Decoder d(b.span());
  std::vector<uint32_t> seen;
  int32_t value = 0;
  d.read_tagged_fields([&](uint32_t tag, Decoder& field) {
    seen.push_back(tag);
    if (tag != 0) return false;
    value = field.read_int32();
    return true;
  });
  ASSERT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(seen, (std::vector<uint32_t>{0, 5, 300}));
  EXPECT_EQ(value, 0x102);
  EXPECT_EQ(d.read_int16(), 0x1234);
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(WireTagged, KnownTagReadsOnlyItsOwnBytes) {
  // The field claims 2 bytes; a decoder that wants 4 fails inside the field
  // instead of reading the bytes after it.
  Buf b(std::string("\x01" "\x00\x02\xaa\xbb" "\xcc\xdd", 7));
  Decoder d(b.span());
  d.read_tagged_fields([](uint32_t, Decoder& field) {
    (void)field.read_int32();
    return true;
  });
  EXPECT_FALSE(d.ok());
  EXPECT_NE(d.error_message().find("tagged field 0"), std::string::npos) << d.error_message();
}

TEST(WireTagged, LyingSizesAndCountsFail) {
  const std::string cases[] = {
      std::string("\x01" "\x00\x09" "abc", 6),              // size beyond the buffer
      std::string("\x05" "\x00\x00", 3),                    // count beyond the bytes left
      std::string("\xff\xff\xff\xff\x0f" "\x00\x00", 7),    // absurd count
      std::string("\x02" "\x00\x00", 3),                    // second field missing
      std::string("\x01" "\x00", 2),                        // size missing
      std::string("\x01" "\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12),  // 2^64-1 bytes
  };
  for (const auto& c : cases) {
    Buf b(c);
    Decoder d(b.span());
    d.read_tagged_fields([](uint32_t, Decoder&) { return false; });
    EXPECT_FALSE(d.ok()) << hex(c);
  }
}

TEST(WireTagged, EncoderRoundTripThroughAppend) {
  Encoder sub;
  sub.write_string("hi", true);
  Encoder e;
  e.write_uvarint(1);
  e.write_uvarint(7);
  e.write_uvarint(sub.size_bytes());
  e.append(std::move(sub));
  EXPECT_EQ(hex(flat(e)), "0107" "03" "036869");
  Buf b(flat(e));
  Decoder d(b.span());
  std::string got;
  d.read_tagged_fields([&](uint32_t tag, Decoder& field) {
    if (tag != 7) return false;
    got = field.read_string(true);
    return true;
  });
  EXPECT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(got, "hi");
}

}  // namespace
}  // namespace evert::kafka
