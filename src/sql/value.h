// SQL values and rows: the types evert's SQL knows, their ordering, their
// JSON and text forms, and an order-preserving binary encoding used for view
// keys and for everything views keep in RocksDB.
//
// Key encoding (one value, self-delimiting, memcmp order = SQL order with
// NULL first):
//   NULL       0x01
//   false/true 0x10 0x00 / 0x10 0x01
//   bigint     0x20 + 8 bytes big-endian with the sign bit flipped
//   timestamp  0x28 + 8 bytes (as bigint)
//   double     0x30 + 8 bytes: IEEE bits, sign flipped for >= 0, all bits
//              flipped for < 0 (so -inf < ... < -0 = +0 < ... < +inf)
//   text       0x40 + bytes with 0x00 written 0x00 0xFF, then 0x00 0x01
// A row is its values' encodings concatenated. The exact form
// (encode_value_exact, for values stored rather than compared) is the same
// but for a double -0, which is 0x31 alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace evert::sql {

enum class Type : uint8_t { kNull, kBool, kInt, kDouble, kText, kTimestamp };

// "bigint", "double precision", "text", "boolean", "timestamp", "unknown"
const char* type_name(Type type);
bool is_numeric(Type type);

struct Value {
  Type type = Type::kNull;
  int64_t i = 0;  // kBool (0/1), kInt, kTimestamp (microseconds since 1970)
  double d = 0;   // kDouble
  std::string s;  // kText

  static Value null() { return Value{}; }
  static Value boolean(bool v) { return Value{Type::kBool, v ? 1 : 0, 0, {}}; }
  static Value integer(int64_t v) { return Value{Type::kInt, v, 0, {}}; }
  static Value real(double v) { return Value{Type::kDouble, 0, v, {}}; }
  static Value text(std::string v) { return Value{Type::kText, 0, 0, std::move(v)}; }
  static Value timestamp(int64_t micros) { return Value{Type::kTimestamp, micros, 0, {}}; }

  bool is_null() const { return type == Type::kNull; }
  double as_double() const { return type == Type::kDouble ? d : double(i); }
};

using Row = std::vector<Value>;

// Total order: NULL < everything; numbers compare by value across int and
// double; otherwise by type, then value.
int compare(const Value& a, const Value& b);
bool operator==(const Value& a, const Value& b);
inline bool operator!=(const Value& a, const Value& b) { return !(a == b); }
struct ValueLess {
  bool operator()(const Value& a, const Value& b) const { return compare(a, b) < 0; }
};

void encode_key(const Value& v, std::string* out);
void encode_row(const Row& row, std::string* out);
// Like encode_key and encode_row, for values kept and read back rather than
// compared: a double -0 keeps its sign (a tag of its own), where the key
// form, in which -0 and 0 are one key, gives back 0. decode_key reads both.
void encode_value_exact(const Value& v, std::string* out);
void encode_row_exact(const Row& row, std::string* out);
// Decodes one value at *pos and advances it; kCorruption on bad bytes.
Result<Value> decode_key(std::string_view bytes, size_t* pos);
Result<Row> decode_row(std::string_view bytes);

// Text form as PostgreSQL prints it (true/false as "t"/"f" is avoided:
// "true"/"false"); NULL has no text form (returns "").
std::string to_text(const Value& v);
void write_json(JsonWriter& w, const Value& v);

// "2024-01-02 03:04:05[.123456]" (a 'T' and a trailing 'Z' are accepted).
Result<int64_t> parse_timestamp(std::string_view text);
std::string format_timestamp(int64_t micros);

// Converts v to `type` as an assignment or a cast would; kInvalidArgument
// with a message when the text cannot be read as that type.
Result<Value> coerce(const Value& v, Type type);

}  // namespace evert::sql
