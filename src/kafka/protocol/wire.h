// The Kafka wire primitives: a bounds-checked Decoder over a request buffer
// and an Encoder that builds a response as memory parts plus file ranges
// (so fetched record batches go from the segment file to the socket without
// being copied into a buffer).
//
// Primitive encodings (all big-endian):
//   int8/16/32/64, uint16/32   fixed width
//   bool                       one byte, 0 or 1
//   float64                    IEEE 754, 8 bytes
//   uuid                       16 bytes
//   uvarint / varint           7 bits per byte, low group first (varint zig-zag)
//   string / nullable string   int16 length (-1 = null) + UTF-8; the encoder
//                              cuts longer strings at 32767 bytes
//   bytes / nullable bytes     int32 length (-1 = null)
//   array                      int32 count (-1 = null)
//   compact string/bytes/array uvarint(length + 1), 0 = null   (flexible versions)
//   tagged fields              uvarint count, then uvarint tag, uvarint size, bytes
//
// The decoder never trusts a length: a string or array longer than what is
// left fails, and arrays grow element by element, so a lying count cannot
// make it allocate more than the request's own size allows.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "io/file_range.h"

namespace evert::kafka {

using Uuid = std::array<uint8_t, 16>;

using FileRange = io::FileRange;

// A `records` field. Decoded requests point into the request buffer
// (mutable: the log assigns base offsets in place); responses carry file
// ranges and/or owned bytes.
struct Records {
  bool is_null = false;
  MutableByteSpan data;
  std::string owned;
  std::vector<FileRange> files;
  uint64_t size_bytes() const;
};

class Decoder {
 public:
  explicit Decoder(MutableByteSpan bytes) : data_(bytes.data()), size_(bytes.size()) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? size_ - pos_ : 0; }
  size_t position() const { return pos_; }
  const std::string& error_message() const { return error_; }
  void fail(const std::string& why);
  Status status() const;

  bool read_bool();
  int8_t read_int8();
  int16_t read_int16();
  int32_t read_int32();
  int64_t read_int64();
  uint16_t read_uint16();
  uint32_t read_uint32();
  double read_float64();
  Uuid read_uuid();
  uint64_t read_uvarint();
  std::string read_string(bool compact);
  std::optional<std::string> read_nullable_string(bool compact);
  std::string read_bytes(bool compact);
  std::optional<std::string> read_nullable_bytes(bool compact);
  Records read_records(bool compact);
  // Element count, -1 for null. Fails when the count exceeds the bytes left
  // divided by `min_element_bytes`.
  int32_t read_array_length(bool compact, size_t min_element_bytes);
  // Reads a tag buffer; `on_tag` decodes known tags from a sub-decoder and
  // returns false for unknown ones, which are skipped.
  void read_tagged_fields(const std::function<bool(uint32_t tag, Decoder& field)>& on_tag);

 private:
  bool need(size_t n);
  // Length of a string/bytes field; -1 = null.
  int64_t read_length(bool compact, bool wide);

  uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
};

class Encoder {
 public:
  using Part = std::variant<std::string, FileRange>;

  void write_bool(bool v) { write_int8(v ? 1 : 0); }
  void write_int8(int8_t v) { buf().push_back(char(v)); }
  void write_int16(int16_t v);
  void write_int32(int32_t v);
  void write_int64(int64_t v);
  void write_uint16(uint16_t v) { write_int16(int16_t(v)); }
  void write_uint32(uint32_t v) { write_int32(int32_t(v)); }
  void write_float64(double v);
  void write_uuid(const Uuid& v) { buf().append(reinterpret_cast<const char*>(v.data()), v.size()); }
  void write_uvarint(uint64_t v) { put_uvarint(buf(), v); }
  void write_string(std::string_view s, bool compact);
  void write_nullable_string(const std::optional<std::string>& s, bool compact);
  void write_bytes(std::string_view s, bool compact);
  void write_nullable_bytes(const std::optional<std::string>& s, bool compact);
  void write_records(const Records& r, bool compact);
  void write_array_length(int32_t n, bool compact);
  void write_null_array(bool compact);
  void write_empty_tagged_fields() { write_uvarint(0); }
  // Appends everything `other` holds (used for tagged fields).
  void append(Encoder&& other);
  void write_raw(ByteSpan bytes) { buf().append(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }

  uint64_t size_bytes() const;
  std::vector<Part>& parts() { return parts_; }
  // Flattens the parts into one string, reading file ranges (tests, small replies).
  Result<std::string> flatten() const;

 private:
  std::string& buf();
  std::vector<Part> parts_;
};

}  // namespace evert::kafka
