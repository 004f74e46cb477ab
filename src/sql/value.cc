#include "sql/value.h"

#include <cmath>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "base/bytes.h"

namespace evert::sql {

const char* type_name(Type type) {
  switch (type) {
    case Type::kNull: return "unknown";
    case Type::kBool: return "boolean";
    case Type::kInt: return "bigint";
    case Type::kDouble: return "double precision";
    case Type::kText: return "text";
    case Type::kTimestamp: return "timestamp";
  }
  return "unknown";
}

bool is_numeric(Type type) { return type == Type::kInt || type == Type::kDouble; }

namespace {

int rank(Type t) {
  switch (t) {
    case Type::kNull: return 0;
    case Type::kBool: return 1;
    case Type::kInt:
    case Type::kDouble: return 2;
    case Type::kTimestamp: return 3;
    case Type::kText: return 4;
  }
  return 5;
}

template <typename T>
int cmp3(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

void put_u64_be(uint64_t v, std::string* out) {
  uint8_t b[8];
  store_be64(b, v);
  out->append(reinterpret_cast<const char*>(b), 8);
}

// Appends `head`, then `body`, then `tail` with one size check: a group
// key is encoded per event, and push_back per byte was most of it.
void append3(std::string* out, char head, std::string_view body, std::string_view tail) {
  const size_t at = out->size();
  out->resize(at + 1 + body.size() + tail.size());
  char* p = out->data() + at;
  *p = head;
  std::memcpy(p + 1, body.data(), body.size());
  std::memcpy(p + 1 + body.size(), tail.data(), tail.size());
}

uint64_t get_u64_be(const char* p) { return load_be64(reinterpret_cast<const uint8_t*>(p)); }

}  // namespace

int compare(const Value& a, const Value& b) {
  int ra = rank(a.type), rb = rank(b.type);
  if (ra != rb) return cmp3(ra, rb);
  switch (a.type) {
    case Type::kNull: return 0;
    case Type::kBool:
    case Type::kTimestamp: return cmp3(a.i, b.i);
    case Type::kInt:
    case Type::kDouble:
      if (a.type == Type::kInt && b.type == Type::kInt) return cmp3(a.i, b.i);
      {
        // NaN sorts above every number and equals itself, as in PostgreSQL.
        double x = a.as_double(), y = b.as_double();
        bool xn = std::isnan(x), yn = std::isnan(y);
        if (xn || yn) return xn && yn ? 0 : (xn ? 1 : -1);
        return cmp3(x, y);
      }
    case Type::kText: {
      int c = a.s.compare(b.s);
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
  }
  return 0;
}

bool operator==(const Value& a, const Value& b) { return compare(a, b) == 0; }

void encode_key(const Value& v, std::string* out) {
  switch (v.type) {
    case Type::kNull: out->push_back('\x01'); return;
    case Type::kBool:
      out->push_back('\x10');
      out->push_back(v.i ? '\x01' : '\x00');
      return;
    case Type::kInt:
    case Type::kTimestamp:
      out->push_back(v.type == Type::kInt ? '\x20' : '\x28');
      put_u64_be(uint64_t(v.i) ^ (uint64_t(1) << 63), out);
      return;
    case Type::kDouble: {
      double d = v.d == 0 ? 0.0 : v.d;  // -0 and +0 encode alike
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      bits = (bits >> 63) ? ~bits : bits ^ (uint64_t(1) << 63);
      out->push_back('\x30');
      put_u64_be(bits, out);
      return;
    }
    case Type::kText:
      if (v.s.find('\0') == std::string::npos) {
        append3(out, '\x40', v.s, std::string_view("\0\x01", 2));
      } else {
        out->push_back('\x40');
        for (char c : v.s) {
          out->push_back(c);
          if (c == '\0') out->push_back('\xff');
        }
        out->push_back('\0');
        out->push_back('\x01');
      }
      return;
  }
}

void encode_row(const Row& row, std::string* out) {
  for (const Value& v : row) encode_key(v, out);
}

namespace {
constexpr char kNegativeZeroTag = '\x31';
}

void encode_value_exact(const Value& v, std::string* out) {
  if (v.type == Type::kDouble && v.d == 0 && std::signbit(v.d)) {
    out->push_back(kNegativeZeroTag);
    return;
  }
  encode_key(v, out);
}

void encode_row_exact(const Row& row, std::string* out) {
  for (const Value& v : row) encode_value_exact(v, out);
}

Result<Value> decode_key(std::string_view bytes, size_t* pos) {
  auto corrupt = [&] { return error(ErrorCode::kCorruption, fmt::format("bad value encoding at byte {}", *pos)); };
  if (*pos >= bytes.size()) return corrupt();
  char tag = bytes[(*pos)++];
  switch (tag) {
    case '\x01': return Value::null();
    case '\x10':
      if (*pos + 1 > bytes.size()) return corrupt();
      return Value::boolean(bytes[(*pos)++] != 0);
    case '\x20':
    case '\x28': {
      if (*pos + 8 > bytes.size()) return corrupt();
      int64_t v = int64_t(get_u64_be(bytes.data() + *pos) ^ (uint64_t(1) << 63));
      *pos += 8;
      return tag == '\x20' ? Value::integer(v) : Value::timestamp(v);
    }
    case '\x30': {
      if (*pos + 8 > bytes.size()) return corrupt();
      uint64_t bits = get_u64_be(bytes.data() + *pos);
      *pos += 8;
      bits = (bits >> 63) ? bits ^ (uint64_t(1) << 63) : ~bits;
      double d;
      std::memcpy(&d, &bits, 8);
      return Value::real(d);
    }
    case kNegativeZeroTag: return Value::real(-0.0);
    case '\x40': {
      std::string s;
      // Most text has no NUL: up to the terminator in one piece.
      if (size_t end = bytes.find('\0', *pos); end != std::string_view::npos && end + 1 < bytes.size() &&
                                                bytes[end + 1] == '\x01') {
        s.assign(bytes.data() + *pos, end - *pos);
        *pos = end + 2;
        return Value::text(std::move(s));
      }
      while (true) {
        if (*pos + 2 > bytes.size()) return corrupt();
        char c = bytes[(*pos)++];
        if (c != '\0') {
          s.push_back(c);
          continue;
        }
        char next = bytes[(*pos)++];
        if (next == '\x01') break;
        if (next != '\xff') return corrupt();
        s.push_back('\0');
      }
      return Value::text(std::move(s));
    }
    default: return corrupt();
  }
}

Result<Row> decode_row(std::string_view bytes) {
  Row row;
  size_t pos = 0;
  while (pos < bytes.size()) {
    EVERT_ASSIGN_OR_RETURN(Value v, decode_key(bytes, &pos));
    row.push_back(std::move(v));
  }
  return row;
}

std::string format_timestamp(int64_t micros) {
  int64_t secs = micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
  int64_t frac = micros - secs * 1000000;
  time_t t = time_t(secs);
  struct tm tm {};
  gmtime_r(&t, &tm);
  std::string out = fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}", tm.tm_year + 1900, tm.tm_mon + 1,
                                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (frac != 0) {
    std::string f = fmt::format("{:06d}", frac);
    while (!f.empty() && f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out;
}

Result<int64_t> parse_timestamp(std::string_view text) {
  auto bad = [&] {
    return error(ErrorCode::kInvalidArgument, fmt::format("invalid input syntax for type timestamp: \"{}\"", text));
  };
  int year, mon, day, hh = 0, mm = 0, ss = 0;
  std::string buf(text);
  for (size_t i = 0; i < buf.size(); ++i) {
    if (buf[i] == '-' && i != 4 && i != 7) return bad();  // no signed fields
  }
  int consumed = 0;
  if (std::sscanf(buf.c_str(), "%4d-%2d-%2d%n", &year, &mon, &day, &consumed) != 3 || consumed != 10) return bad();
  size_t pos = 10;
  int64_t micros_frac = 0;
  if (pos < buf.size() && (buf[pos] == ' ' || buf[pos] == 'T')) {
    int c2 = 0;
    if (std::sscanf(buf.c_str() + pos + 1, "%2d:%2d:%2d%n", &hh, &mm, &ss, &c2) != 3 || c2 != 8) return bad();
    pos += 1 + 8;
    if (pos < buf.size() && buf[pos] == '.') {
      ++pos;
      int digits = 0;
      while (pos < buf.size() && std::isdigit(uint8_t(buf[pos]))) {
        if (digits < 6) micros_frac = micros_frac * 10 + (buf[pos] - '0');
        ++digits;
        ++pos;
      }
      if (digits == 0) return bad();
      for (int k = digits; k < 6; ++k) micros_frac *= 10;
    }
  }
  if (pos < buf.size() && ((buf[pos] == 'Z' && pos + 1 == buf.size()) || buf.substr(pos) == "+00:00" ||
                           buf.substr(pos) == "+00")) {
    pos = buf.size();
  }
  if (pos != buf.size()) return bad();
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return bad();
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  time_t secs = timegm(&tm);
  struct tm check {};
  gmtime_r(&secs, &check);
  if (check.tm_mday != day || check.tm_mon != mon - 1) return bad();  // 2024-02-30 does not exist
  return int64_t(secs) * 1000000 + micros_frac;
}

std::string to_text(const Value& v) {
  switch (v.type) {
    case Type::kNull: return "";
    case Type::kBool: return v.i ? "true" : "false";
    case Type::kInt: return std::to_string(v.i);
    case Type::kDouble: return fmt::format("{}", v.d);
    case Type::kText: return v.s;
    case Type::kTimestamp: return format_timestamp(v.i);
  }
  return "";
}

void write_json(JsonWriter& w, const Value& v) {
  switch (v.type) {
    case Type::kNull: w.null(); return;
    case Type::kBool: w.value(v.i != 0); return;
    case Type::kInt: w.value(v.i); return;
    case Type::kDouble:
      if (std::isfinite(v.d)) {
        w.value(v.d);
      } else {
        w.value(std::isnan(v.d) ? "NaN" : (v.d > 0 ? "Infinity" : "-Infinity"));
      }
      return;
    case Type::kText: w.value(v.s); return;
    case Type::kTimestamp: w.value(format_timestamp(v.i)); return;
  }
}

Result<Value> coerce(const Value& v, Type type) {
  if (v.is_null() || v.type == type || type == Type::kNull) return v;
  auto bad = [&] {
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("invalid input syntax for type {}: \"{}\"", type_name(type), to_text(v)));
  };
  switch (type) {
    case Type::kInt:
      if (v.type == Type::kDouble) {
        if (!std::isfinite(v.d) || std::fabs(v.d) > 9.2e18) return error(ErrorCode::kOutOfRange, "bigint out of range");
        return Value::integer(int64_t(std::nearbyint(v.d)));  // half to even, as PostgreSQL
      }
      if (v.type == Type::kText) {
        std::string s(v.s);
        char* end = nullptr;
        errno = 0;
        long long x = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0' || errno != 0) return bad();
        return Value::integer(x);
      }
      if (v.type == Type::kBool) return Value::integer(v.i);
      return bad();
    case Type::kDouble:
      if (v.type == Type::kInt) return Value::real(double(v.i));
      if (v.type == Type::kText) {
        char* end = nullptr;
        double x = std::strtod(v.s.c_str(), &end);
        if (v.s.empty() || *end != '\0') return bad();
        return Value::real(x);
      }
      return bad();
    case Type::kText: return Value::text(to_text(v));
    case Type::kBool:
      if (v.type == Type::kText) {
        std::string s;
        for (char c : v.s) s.push_back(char(std::tolower(uint8_t(c))));
        if (s == "t" || s == "true" || s == "yes" || s == "on" || s == "1") return Value::boolean(true);
        if (s == "f" || s == "false" || s == "no" || s == "off" || s == "0") return Value::boolean(false);
        return bad();
      }
      if (v.type == Type::kInt) return Value::boolean(v.i != 0);
      return bad();
    case Type::kTimestamp:
      if (v.type == Type::kText) {
        EVERT_ASSIGN_OR_RETURN(int64_t t, parse_timestamp(v.s));
        return Value::timestamp(t);
      }
      return bad();
    case Type::kNull: return v;
  }
  return bad();
}

}  // namespace evert::sql
