#include "kafka/protocol/wire.h"

#include <fmt/format.h>

#include <cstring>

namespace evert::kafka {

uint64_t Records::size_bytes() const {
  if (is_null) return 0;
  uint64_t n = data.size() + owned.size();
  for (const auto& f : files) n += f.size_bytes;
  return n;
}

void Decoder::fail(const std::string& why) {
  if (ok_) error_ = fmt::format("{} at byte {}", why, pos_);
  ok_ = false;
}

Status Decoder::status() const {
  if (ok_) return Status::ok();
  return error(ErrorCode::kCorruption, error_);
}

bool Decoder::need(size_t n) {
  if (!ok_) return false;
  if (size_ - pos_ < n) {
    fail(fmt::format("needs {} more bytes, {} left", n, size_ - pos_));
    return false;
  }
  return true;
}

bool Decoder::read_bool() { return read_int8() != 0; }
int8_t Decoder::read_int8() { return need(1) ? int8_t(data_[pos_++]) : 0; }
int16_t Decoder::read_int16() {
  if (!need(2)) return 0;
  pos_ += 2;
  return int16_t(load_be16(data_ + pos_ - 2));
}
int32_t Decoder::read_int32() {
  if (!need(4)) return 0;
  pos_ += 4;
  return int32_t(load_be32(data_ + pos_ - 4));
}
int64_t Decoder::read_int64() {
  if (!need(8)) return 0;
  pos_ += 8;
  return int64_t(load_be64(data_ + pos_ - 8));
}
uint16_t Decoder::read_uint16() { return uint16_t(read_int16()); }
uint32_t Decoder::read_uint32() { return uint32_t(read_int32()); }
double Decoder::read_float64() {
  uint64_t bits = uint64_t(read_int64());
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}
Uuid Decoder::read_uuid() {
  Uuid u{};
  if (!need(16)) return u;
  std::memcpy(u.data(), data_ + pos_, 16);
  pos_ += 16;
  return u;
}

uint64_t Decoder::read_uvarint() {
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (!need(1)) return 0;
    uint8_t b = data_[pos_++];
    if (shift == 63 && b > 1) {
      fail("varint overflows 64 bits");
      return 0;
    }
    result |= uint64_t(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return result;
  }
  fail("varint longer than 10 bytes");
  return 0;
}

int64_t Decoder::read_length(bool compact, bool wide) {
  int64_t len;
  if (compact) {
    uint64_t u = read_uvarint();
    if (u > uint64_t(INT32_MAX)) {
      fail("compact length too large");
      return 0;
    }
    len = int64_t(u) - 1;
  } else {
    len = wide ? read_int32() : read_int16();
  }
  if (!ok_) return 0;
  if (len < -1) {
    fail(fmt::format("negative length {}", len));
    return 0;
  }
  if (len > 0 && uint64_t(len) > size_ - pos_) {
    fail(fmt::format("length {} exceeds the {} bytes left", len, size_ - pos_));
    return 0;
  }
  return len;
}

std::optional<std::string> Decoder::read_nullable_string(bool compact) {
  int64_t len = read_length(compact, false);
  if (!ok_ || len < 0) return std::nullopt;
  std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(len));
  pos_ += size_t(len);
  return s;
}

std::string Decoder::read_string(bool compact) {
  size_t at = pos_;
  auto s = read_nullable_string(compact);
  if (ok_ && !s) {
    pos_ = at;
    fail("null where a string is required");
  }
  return s.value_or("");
}

std::optional<std::string> Decoder::read_nullable_bytes(bool compact) {
  int64_t len = read_length(compact, true);
  if (!ok_ || len < 0) return std::nullopt;
  std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(len));
  pos_ += size_t(len);
  return s;
}

std::string Decoder::read_bytes(bool compact) {
  auto s = read_nullable_bytes(compact);
  if (ok_ && !s) fail("null where bytes are required");
  return s.value_or("");
}

Records Decoder::read_records(bool compact) {
  Records r;
  int64_t len = read_length(compact, true);
  if (!ok_) return r;
  if (len < 0) {
    r.is_null = true;
    return r;
  }
  r.data = MutableByteSpan(data_ + pos_, size_t(len));
  pos_ += size_t(len);
  return r;
}

int32_t Decoder::read_array_length(bool compact, size_t min_element_bytes) {
  int64_t n;
  if (compact) {
    uint64_t u = read_uvarint();
    if (u > uint64_t(INT32_MAX)) {
      fail("compact array length too large");
      return 0;
    }
    n = int64_t(u) - 1;
  } else {
    n = read_int32();
  }
  if (!ok_) return 0;
  if (n < -1) {
    fail(fmt::format("negative array length {}", n));
    return 0;
  }
  if (n > 0 && uint64_t(n) * std::max<size_t>(min_element_bytes, 1) > size_ - pos_) {
    fail(fmt::format("array of {} elements cannot fit in {} bytes", n, size_ - pos_));
    return 0;
  }
  return int32_t(n);
}

void Decoder::read_tagged_fields(const std::function<bool(uint32_t, Decoder&)>& on_tag) {
  uint64_t count = read_uvarint();
  if (count > remaining()) {
    fail("tagged field count too large");
    return;
  }
  for (uint64_t i = 0; ok_ && i < count; ++i) {
    uint64_t tag = read_uvarint();
    uint64_t size = read_uvarint();
    if (!ok_ || size > size_ - pos_) {
      fail("tagged field size exceeds the request");
      return;
    }
    Decoder sub(MutableByteSpan(data_ + pos_, size_t(size)));
    if (tag <= UINT32_MAX && on_tag(uint32_t(tag), sub) && !sub.ok()) {
      fail("malformed tagged field " + std::to_string(tag) + ": " + sub.error_message());
      return;
    }
    pos_ += size_t(size);
  }
}

std::string& Encoder::buf() {
  if (parts_.empty() || !std::holds_alternative<std::string>(parts_.back())) parts_.emplace_back(std::string());
  return std::get<std::string>(parts_.back());
}

void Encoder::write_int16(int16_t v) {
  char b[2];
  store_be16(reinterpret_cast<uint8_t*>(b), uint16_t(v));
  buf().append(b, 2);
}
void Encoder::write_int32(int32_t v) {
  char b[4];
  store_be32(reinterpret_cast<uint8_t*>(b), uint32_t(v));
  buf().append(b, 4);
}
void Encoder::write_int64(int64_t v) {
  char b[8];
  store_be64(reinterpret_cast<uint8_t*>(b), uint64_t(v));
  buf().append(b, 8);
}
void Encoder::write_float64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  write_int64(int64_t(bits));
}

void Encoder::write_string(std::string_view s, bool compact) {
  // A classic string's length is an int16. Longer text (an error message
  // quoting a long client-supplied name) is cut rather than written with a
  // wrapped length that would corrupt the whole response.
  if (!compact && s.size() > size_t(INT16_MAX)) s = s.substr(0, size_t(INT16_MAX));
  if (compact) {
    write_uvarint(s.size() + 1);
  } else {
    write_int16(int16_t(s.size()));
  }
  buf().append(s);
}

void Encoder::write_nullable_string(const std::optional<std::string>& s, bool compact) {
  if (s) return write_string(*s, compact);
  if (compact) {
    write_uvarint(0);
  } else {
    write_int16(-1);
  }
}

void Encoder::write_bytes(std::string_view s, bool compact) {
  if (compact) {
    write_uvarint(s.size() + 1);
  } else {
    write_int32(int32_t(s.size()));
  }
  buf().append(s);
}

void Encoder::write_nullable_bytes(const std::optional<std::string>& s, bool compact) {
  if (s) return write_bytes(*s, compact);
  if (compact) {
    write_uvarint(0);
  } else {
    write_int32(-1);
  }
}

void Encoder::write_records(const Records& r, bool compact) {
  if (r.is_null) {
    if (compact) {
      write_uvarint(0);
    } else {
      write_int32(-1);
    }
    return;
  }
  uint64_t n = r.size_bytes();
  if (compact) {
    write_uvarint(n + 1);
  } else {
    write_int32(int32_t(n));
  }
  write_raw(ByteSpan(r.data.data(), r.data.size()));
  buf().append(r.owned);
  for (const auto& f : r.files)
    if (f.size_bytes > 0) parts_.emplace_back(f);
}

void Encoder::write_array_length(int32_t n, bool compact) {
  if (compact) {
    write_uvarint(uint64_t(n) + 1);
  } else {
    write_int32(n);
  }
}

void Encoder::write_null_array(bool compact) {
  if (compact) {
    write_uvarint(0);
  } else {
    write_int32(-1);
  }
}

void Encoder::append(Encoder&& other) {
  for (auto& p : other.parts_) {
    if (auto* s = std::get_if<std::string>(&p)) {
      buf().append(*s);
    } else {
      parts_.push_back(std::move(p));
    }
  }
  other.parts_.clear();
}

uint64_t Encoder::size_bytes() const {
  uint64_t n = 0;
  for (const auto& p : parts_) {
    if (const auto* s = std::get_if<std::string>(&p)) {
      n += s->size();
    } else {
      n += std::get<FileRange>(p).size_bytes;
    }
  }
  return n;
}

Result<std::string> Encoder::flatten() const {
  std::string out;
  for (const auto& p : parts_) {
    if (const auto* s = std::get_if<std::string>(&p)) {
      out += *s;
      continue;
    }
    const FileRange& f = std::get<FileRange>(p);
    size_t at = out.size();
    out.resize(at + f.size_bytes);
    EVERT_ASSIGN_OR_RETURN(size_t n, f.file->read_at(f.position, MutableByteSpan(reinterpret_cast<uint8_t*>(out.data() + at), f.size_bytes)));
    if (n != f.size_bytes) return error(ErrorCode::kIoError, "short read of a file range");
  }
  return out;
}

}  // namespace evert::kafka
