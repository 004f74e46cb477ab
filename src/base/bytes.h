// Byte-level helpers: big-endian integers (Kafka's wire and batch format),
// zig-zag varints (Kafka record fields), and a bounds-checked reader that
// never trusts a length it reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace evert {

using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline uint16_t load_be16(const uint8_t* p) { return uint16_t(uint16_t(p[0]) << 8 | p[1]); }
inline uint32_t load_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline uint64_t load_be64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}
inline void store_be16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline void store_be64(uint8_t* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}

inline uint64_t zigzag_encode(int64_t n) { return (uint64_t(n) << 1) ^ uint64_t(n >> 63); }
inline int64_t zigzag_decode(uint64_t u) { return int64_t(u >> 1) ^ -int64_t(u & 1); }

// Appends an unsigned LEB128 varint; returns bytes written (<= 10).
size_t put_uvarint(std::string& out, uint64_t v);
inline size_t put_varint(std::string& out, int64_t v) { return put_uvarint(out, zigzag_encode(v)); }

// Reads fields from a byte span front to back. Every read checks bounds; the
// first failure latches `ok() == false` and later reads return zeros, so a
// parser can read a whole struct and check once.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan bytes) : data_(bytes.data()), size_(bytes.size()) {}

  bool ok() const { return ok_; }
  size_t position() const { return pos_; }
  size_t remaining() const { return ok_ ? size_ - pos_ : 0; }
  bool at_end() const { return pos_ == size_; }

  int8_t i8() { return ensure(1) ? int8_t(data_[pos_++]) : 0; }
  int16_t i16() { return ensure(2) ? int16_t(load_be16(advance(2))) : 0; }
  int32_t i32() { return ensure(4) ? int32_t(load_be32(advance(4))) : 0; }
  int64_t i64() { return ensure(8) ? int64_t(load_be64(advance(8))) : 0; }
  uint32_t u32() { return ensure(4) ? load_be32(advance(4)) : 0; }
  // At most 10 bytes; overlong encodings fail. One-byte values, most
  // lengths and deltas in a record, take the inline path.
  uint64_t uvarint() {
    uint64_t v;
    return short_uvarint(&v) ? v : uvarint_long();
  }
  uint32_t uvarint32();  // fails when the value does not fit 32 bits
  int64_t varlong() { return zigzag_decode(uvarint()); }
  int32_t varint() {  // zig-zag, must fit int32
    uint64_t v;
    return short_uvarint(&v) ? int32_t(zigzag_decode(v)) : varint_long();
  }
  ByteSpan bytes(size_t n) {
    if (!ensure(n)) return {};
    return ByteSpan(advance(n), n);
  }
  void skip(size_t n) { (void)bytes(n); }
  void fail() { ok_ = false; }

 private:
  uint64_t uvarint_long();
  int32_t varint_long();
  // Varints of one or two bytes (values below 16384: a record's lengths and
  // deltas, zig-zag doubling them) inline; false, reading nothing, otherwise.
  bool short_uvarint(uint64_t* v) {
    if (!ok_ || pos_ >= size_) return false;
    uint8_t b0 = data_[pos_];
    if (b0 < 0x80) {
      ++pos_;
      *v = b0;
      return true;
    }
    if (size_ - pos_ < 2 || data_[pos_ + 1] >= 0x80) return false;
    *v = uint64_t(b0 & 0x7f) | uint64_t(data_[pos_ + 1]) << 7;
    pos_ += 2;
    return true;
  }
  bool ensure(size_t n) {
    if (!ok_ || size_ - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  const uint8_t* advance(size_t n) {
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  bool ok_ = true;
};

inline ByteSpan as_bytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view as_string_view(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace evert
