#include "base/bytes.h"

namespace evert {

size_t put_uvarint(std::string& out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
    ++n;
  }
  out.push_back(char(uint8_t(v)));
  return n + 1;
}

uint64_t ByteReader::uvarint_long() {
  uint64_t result = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (!ensure(1)) return 0;
    uint8_t b = data_[pos_++];
    if (shift == 63 && b > 1) break;  // would overflow 64 bits
    result |= uint64_t(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return result;
  }
  ok_ = false;
  return 0;
}

uint32_t ByteReader::uvarint32() {
  uint64_t v = uvarint();
  if (v > UINT32_MAX) {
    ok_ = false;
    return 0;
  }
  return uint32_t(v);
}

int32_t ByteReader::varint_long() {
  int64_t v = zigzag_decode(uvarint_long());
  if (v < INT32_MIN || v > INT32_MAX) {
    ok_ = false;
    return 0;
  }
  return int32_t(v);
}

}  // namespace evert
