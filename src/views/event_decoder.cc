#include "views/event_decoder.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <fmt/format.h>

namespace evert::views {

static_assert(EventDecoder::kPadding >= simdjson::SIMDJSON_PADDING);

using sql::Type;
using sql::Value;
namespace od = simdjson::ondemand;

// Digits eight at a time (SWAR): a little-endian word of eight bytes from
// the text, the first byte in the lowest lane.
constexpr uint64_t kHighNibbles = 0xF0F0F0F0F0F0F0F0, kThrees = 0x3030303030303030, kSixes = 0x0606060606060606;

// How many of the word's bytes, from the first, are ASCII digits: a digit's
// high nibble is 3 and stays 3 when 6 is added (a carry out of a non-digit
// byte only disturbs the bytes after it).
inline unsigned leading_digits(uint64_t w) {
  uint64_t not_digit = ((w & kHighNibbles) ^ kThrees) | (((w + kSixes) & kHighNibbles) ^ kThrees);
  return not_digit == 0 ? 8 : unsigned(__builtin_ctzll(not_digit)) / 8;
}

// The value of eight digit values (0..9, the most significant in the lowest
// lane): adjacent lanes are combined into pairs, pairs into fours, fours
// into the eight-digit number, each step in every lane at once.
inline uint64_t eight_digits_value(uint64_t d) {
  d = (d * 10 + (d >> 8)) & 0x00FF00FF00FF00FF;
  d = (d * 100 + (d >> 16)) & 0x0000FFFF0000FFFF;
  return (d * 10000 + (d >> 32)) & 0xFFFFFFFF;
}

constexpr uint64_t kPow10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

struct EventDecoder::Impl {
  sql::Schema schema;
  od::parser parser;
  std::vector<uint8_t> seen;
  std::string copy;  // padded copy when the caller's buffer is too short
  // Per column, for matching a key in one 16-byte compare: the name and its
  // closing quote, zero-filled; `quoted_mask` has a bit per byte to compare,
  // 0 when the name is too long or holds a byte a plain JSON string cannot
  // (a quote, a backslash, a control or non-ASCII byte).
  struct QuotedName {
    alignas(16) char bytes[16] = {};
    uint32_t mask = 0;
    uint32_t size = 0;
  };
  std::vector<QuotedName> quoted;
  // The last field seen that is no column, and the column it followed
  // (-2: none yet): events repeat it, like the columns, in the same place.
  QuotedName unknown;
  int unknown_after = -2;
  std::vector<uint8_t> keep;  // per column: its text is copied into the row

  // The shape of the last event fast_row() took: the exact bytes between
  // its values (keys, quotes, ':' and ',', whitespace), the column each
  // value went to and how it is read. Events of one producer repeat their
  // shape, so the next event is tried against it first (shaped_row()): a
  // compare of those bytes replaces finding and matching each key, and each
  // value is read by a step chosen for its column once, not per event.
  struct Chunk {
    alignas(16) char bytes[16] = {};
  };
  struct Literal {
    uint32_t first = 0;  // its first chunk in `chunks`
    uint32_t size = 0;   // bytes
    uint32_t last_mask = 0;  // the bytes of its last chunk, a bit each
  };
  enum class Step : uint8_t {
    kSkipString,  // a plain string, not copied (no column, or a text column not read)
    kText,        // a plain string into a text column that is read
    kSkipInt,     // an integer of at most 18 digits, not -0, not computed
    kInt,         // the same into an integer column that is read
    kAny,         // anything else: value(), as fast_row() reads it
  };
  struct ShapeField {
    Literal before;  // from the previous value's end (or the event's start) to this value's start
    int col = -1;    // -1: no column
    Step step = Step::kAny;
  };
  std::vector<Chunk> chunks;
  std::vector<ShapeField> shape;
  Literal shape_tail;  // from the last value's end to the event's end
  bool shaped = false;
  uint64_t shaped_rows = 0;
  // Filled by fast_row() when asked: each value's [start, end) in the event.
  struct Seen {
    uint32_t start, end;
    int col;
  };
  std::vector<Seen> learned;

  // `name` and its closing quote for a 16-byte compare, when it fits and
  // holds no byte a plain JSON string cannot (else mask 0: never matches).
  static QuotedName quote(std::string_view name) {
    QuotedName q;
    bool plain = name.size() + 1 <= sizeof(QuotedName::bytes);
    for (char c : name) {
      auto u = static_cast<unsigned char>(c);
      if (u == '"' || u == '\\' || u < 0x20 || u >= 0x80) plain = false;
    }
    if (!plain) return q;
    std::memcpy(q.bytes, name.data(), name.size());
    q.bytes[name.size()] = '"';
    q.size = uint32_t(name.size());
    q.mask = (uint32_t(1) << (name.size() + 1)) - 1;
    return q;
  }

  void remember_unknown(int after, std::string_view key) {
    unknown = quote(key);
    unknown_after = after;
  }

  void set_schema(sql::Schema s) {
    schema = std::move(s);
    quoted.assign(schema.size(), QuotedName{});
    keep.assign(schema.size(), 1);
    for (size_t i = 0; i < schema.size(); ++i) quoted[i] = quote(schema[i].name);
    unknown = QuotedName{};
    unknown_after = -2;
    shaped = false;
  }

  Literal add_literal(std::string_view bytes) {
    Literal l{uint32_t(chunks.size()), uint32_t(bytes.size()), 0};
    for (size_t at = 0; at < bytes.size(); at += sizeof(Chunk::bytes)) {
      chunks.emplace_back();
      size_t n = std::min(sizeof(Chunk::bytes), bytes.size() - at);
      std::memcpy(chunks.back().bytes, bytes.data() + at, n);
      l.last_mask = n == 16 ? 0xffff : (uint32_t(1) << n) - 1;
    }
    return l;
  }
  // How a value like `text` (as fast_row() read it) into column `col` is read.
  Step step_for(std::string_view text, int col) const {
    Type type = col < 0 ? Type::kNull : schema[size_t(col)].type;
    bool read = col >= 0 && keep[size_t(col)];
    if (text[0] == '"') {
      if (type == Type::kText && read) return Step::kText;
      return col < 0 || type == Type::kText ? Step::kSkipString : Step::kAny;
    }
    bool integer = text.find_first_not_of("-0123456789") == std::string_view::npos;
    if (integer && (col < 0 || type == Type::kInt)) return type == Type::kInt && read ? Step::kInt : Step::kSkipInt;
    return Step::kAny;
  }
  // The shape of `json`, which fast_row() just took while filling `learned`.
  void learn_shape(std::string_view json) {
    chunks.clear();
    shape.clear();
    uint32_t at = 0;
    for (const Seen& v : learned) {
      shape.push_back({add_literal(json.substr(at, v.start - at)), v.col,
                       step_for(json.substr(v.start, v.end - v.start), v.col)});
      at = v.end;
    }
    shape_tail = add_literal(json.substr(at));
    shaped = true;
  }
#if defined(__SSE2__)
  // The literal at *p, 16 bytes a compare (at least kPadding bytes are
  // readable past `end`, and the literal is checked to end before it).
  bool match_literal(const char*& p, const char* end, const Literal& l) const {
    if (size_t(end - p) < l.size) return false;
    if (l.size == 0) return true;  // (every gap of a JSON object holds a byte)
    const Chunk* c = &chunks[l.first];
    uint32_t done = 0;
    for (; done + 16 < l.size; done += 16, ++c) {
      __m128i got = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + done));
      __m128i want = _mm_load_si128(reinterpret_cast<const __m128i*>(c->bytes));
      if (_mm_movemask_epi8(_mm_cmpeq_epi8(got, want)) != 0xffff) return false;
    }
    __m128i got = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + done));
    __m128i want = _mm_load_si128(reinterpret_cast<const __m128i*>(c->bytes));
    uint32_t same = uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(got, want)));
    if ((same & l.last_mask) != l.last_mask) return false;
    p += l.size;
    return true;
  }
  // An integer of 1 to 18 digits at *p, not -0, as fast_row() takes one
  // for an integer column; p ends past it. Its value when `compute`.
  static bool short_integer(const char*& p, const char* end, bool compute, int64_t* out) {
    const char* q = p;
    bool negative = q < end && *q == '-';
    q += negative;
    const char* digits = q;
    uint64_t x = 0;
    for (int words = 0; words < 3; ++words) {
      uint64_t w;
      std::memcpy(&w, q, 8);
      unsigned n = std::min<unsigned>(leading_digits(w), unsigned(end - q));
      if (compute && n > 0) x = x * kPow10[n] + eight_digits_value((w - kThrees) << (8 * (8 - n) & 63));
      q += n;
      if (n < 8) break;
    }
    size_t ndigits = size_t(q - digits);
    // No digits, more than 18, a leading zero, -0, or a number going on
    // past 24 digits: fast_row()'s reading (or simdjson's) decides.
    if (ndigits == 0 || ndigits > 18 || (*digits == '0' && (ndigits > 1 || negative))) return false;
    *out = negative ? -int64_t(x) : int64_t(x);
    p = q;
    return true;
  }
  // An event of the last shape: every byte outside the values as in the
  // event the shape was learned from, and every value read as fast_row()
  // reads it into its column. So it answers only when fast_row() would
  // have answered the same row; anything else is left to fast_row(). A
  // number must be followed by the next literal, which starts with what
  // followed it in the learned event: a delimiter.
  bool shaped_row(std::string_view json, sql::Row* row) {
    const char* p = json.data();
    const char* end = p + json.size();
    row->resize(schema.size());
    for (Value& v : *row) v.type = Type::kNull;
    for (const ShapeField& f : shape) {
      if (!match_literal(p, end, f.before) || p == end) return false;
      switch (f.step) {
        case Step::kSkipString:
        case Step::kText: {
          std::string_view text;
          if (*p != '"' || !plain_string(p, end, &text)) return false;
          if (f.step == Step::kText) {
            Value& out = (*row)[size_t(f.col)];
            out.type = Type::kText;
            // Rows are reused, and a column's text is often as long as the
            // last event's: then a copy, without assign()'s general case.
            if (out.s.size() == text.size()) {
              std::memcpy(out.s.data(), text.data(), text.size());
            } else {
              out.s.assign(text.data(), text.size());
            }
          }
          break;
        }
        case Step::kSkipInt:
        case Step::kInt: {
          int64_t n;
          if (!short_integer(p, end, f.step == Step::kInt, &n)) return false;
          if (f.step == Step::kInt) {
            Value& out = (*row)[size_t(f.col)];
            out.type = Type::kInt;
            out.i = n;
          }
          break;
        }
        case Step::kAny:
          if (!value(p, end, true, f.col, row)) return false;
          break;
      }
    }
    return match_literal(p, end, shape_tail) && p == end;
  }
#endif

  bool named(size_t column, std::string_view key) const {
    const std::string& name = schema[column].name;
    return name.size() == key.size() && std::memcmp(name.data(), key.data(), key.size()) == 0;
  }
  int column_of(std::string_view key) const {
    for (size_t i = 0; i < schema.size(); ++i) {
      if (named(i, key)) return int(i);
    }
    return -1;
  }
  // Fields usually come in the same order in every event: try the column
  // after the previous one first.
  int column_after(int previous, std::string_view key) const {
    size_t i = size_t(previous + 1);
    if (i < schema.size() && named(i, key)) return int(i);
    return column_of(key);
  }

  // A string without escapes, control or non-ASCII bytes; *p is the
  // opening quote, and p ends past the closing one.
  static bool plain_string(const char*& p, const char* end, std::string_view* out) {
    const char* start = ++p;
#if defined(__SSE2__)
    // 16 bytes a step: the first quote, backslash, control byte or byte
    // >= 0x80 (negative as a signed char, so below 0x20 too).
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      __m128i special =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), _mm_cmplt_epi8(v, space));
      int mask = _mm_movemask_epi8(special);
      if (mask != 0) {
        p += __builtin_ctz(unsigned(mask));
        if (*p != '"') return false;
        *out = std::string_view(start, size_t(p - start));
        ++p;
        return true;
      }
      p += 16;
    }
#endif
    while (p < end) {
      auto u = static_cast<unsigned char>(*p);
      if (u == '"') {
        *out = std::string_view(start, size_t(p - start));
        ++p;
        return true;
      }
      if (u == '\\' || u < 0x20 || u >= 0x80) return false;
      ++p;
    }
    return false;
  }
  static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  static bool delimiter(const char* p, const char* end) { return p == end || *p == ',' || *p == '}' || is_ws(*p); }

  // One value at *p (p < end) into column `col` of *row (-1: no column, the
  // value is only checked), as simdjson would read it; p ends past it.
  // False for anything this scanner leaves to simdjson (see fast_row).
  bool value(const char*& p, const char* end, bool padded, int col, sql::Row* row) const {
    Type type = col < 0 ? Type::kNull : schema[size_t(col)].type;
    Value* out = col < 0 ? nullptr : &(*row)[size_t(col)];
    auto literal = [&](std::string_view word) {
      if (size_t(end - p) < word.size() || std::memcmp(p, word.data(), word.size()) != 0) return false;
      p += word.size();
      return true;
    };
    char c = *p;
    if (c == '"') {
      std::string_view text;
      if (!plain_string(p, end, &text)) return false;
      if (out) {
        if (type == Type::kText) {
          if (keep[size_t(col)]) {
            out->type = Type::kText;
            out->s.assign(text.data(), text.size());
          }
        } else if (type == Type::kTimestamp) {
          auto t = sql::parse_timestamp(text);
          if (!t) return false;
          *out = Value::timestamp(*t);
        } else {
          return false;
        }
      }
      return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      // JSON's number grammar; the scanner reads integers of up to 18
      // digits itself and hands doubles to from_chars (correctly rounded,
      // as simdjson is).
      const char* start = p;
      if (*p == '-') ++p;
      if (p == end) return false;
      const char* digits = p;
      // The digits are read and accumulated in one pass (x is only
      // used when there are at most 18 of them, which cannot overflow);
      // an integer nobody reads is only checked (a timestamp's range
      // check needs its value).
      const bool value_read = out && (keep[size_t(col)] || type != Type::kInt);
      uint64_t x = 0;
      if (*p == '0') {
        ++p;
      } else if (*p >= '1' && *p <= '9') {
        // Up to eight digits per step without a branch per digit: the
        // run's length from the word, its value from the same word
        // shifted so that the digits fill its top lanes (zeros before
        // them are leading zeros).
        while (padded) {
          uint64_t w;
          std::memcpy(&w, p, 8);
          unsigned n = std::min<unsigned>(leading_digits(w), unsigned(end - p));
          if (n == 0) break;
          if (value_read) {
            uint64_t d = (w - kThrees) << (8 * (8 - n) & 63);
            x = x * kPow10[n] + eight_digits_value(d);
          }
          p += n;
          if (n < 8) break;
        }
        while (p < end && unsigned(*p - '0') <= 9) {
          x = x * 10 + unsigned(*p - '0');
          ++p;
        }
      } else {
        return false;
      }
      size_t ndigits = size_t(p - digits);
      bool integral = true;
      if (p < end && *p == '.') {
        integral = false;
        ++p;
        const char* frac = p;
        while (p < end && *p >= '0' && *p <= '9') ++p;
        if (p == frac) return false;
      }
      if (p < end && (*p == 'e' || *p == 'E')) {
        integral = false;
        ++p;
        if (p < end && (*p == '+' || *p == '-')) ++p;
        const char* exp = p;
        while (p < end && *p >= '0' && *p <= '9') ++p;
        if (p == exp) return false;
      }
      if (!delimiter(p, end)) return false;
      if (!out) return true;
      if (integral && ndigits <= 18 && (type == Type::kInt || type == Type::kTimestamp)) {
        int64_t n = int64_t(x);
        if (*start == '-') {
          if (ndigits == 1 && *digits == '0') return false;  // -0: left to simdjson
          n = -n;
        }
        if (type == Type::kInt) {
          if (value_read) {
            out->type = Type::kInt;
            out->i = n;
          }
        } else {
          constexpr int64_t kMsMax = INT64_MAX / 1000;
          if (n > kMsMax || n < -kMsMax) return false;
          out->type = Type::kTimestamp;
          out->i = n * 1000;
        }
        return true;
      }
      if (type == Type::kDouble) {
        double d;
        auto r = std::from_chars(start, p, d);
        if (r.ec != std::errc() || r.ptr != p || !std::isfinite(d)) return false;
        out->type = Type::kDouble;
        out->d = d;
        return true;
      }
      return false;
    }
    if (c == 'n') {
      if (!literal("null") || !delimiter(p, end)) return false;
      if (out) out->type = Type::kNull;
      return true;
    }
    if (c == 't' || c == 'f') {
      bool b = c == 't';
      if (!literal(b ? "true" : "false") || !delimiter(p, end)) return false;
      if (out) {
        if (type != Type::kBool) return false;
        *out = Value::boolean(b);
      }
      return true;
    }
    return false;  // nested values and anything malformed: the full path
  }

  // The common case without simdjson: a flat object of ASCII text, keys and
  // strings without escapes, numbers, true/false/null, every column present
  // with a value of its type. Returns false for anything else (nested
  // values, escapes, non-ASCII bytes, a mistyped or missing field, a number
  // this scanner does not read exactly the way simdjson does); the caller
  // then takes the full path, which also writes every error message. So
  // this path decides nothing on its own: when it answers, simdjson would
  // have answered the same row.
  // `padded`: at least kPadding readable bytes follow `json`, so the
  // scanner may load 16 bytes (key compare) or 8 (digits) past where it is.
  // `learn`: each value's place goes into `learned` (learn_shape()).
  bool fast_row(std::string_view json, bool padded, sql::Row* row, bool learn) {
    const char* p = json.data();
    const char* end = p + json.size();
    auto ws = [&] {
      // Most JSON between tokens has no whitespace: one compare says so.
      while (p < end && static_cast<unsigned char>(*p) <= ' ' && is_ws(*p)) ++p;
    };
    if (schema.size() > 64) return false;  // the seen set below is one word
    if (learn) learned.clear();
    row->resize(schema.size());
    for (Value& v : *row) v.type = Type::kNull;
    uint64_t seen_mask = 0;
    int previous = -1;
    ws();
    if (p == end || *p != '{') return false;
    ++p;
    ws();
    if (p < end && *p == '}') {
      ++p;
    } else {
      while (true) {
        if (p == end || *p != '"') return false;
        int col = -1;
        bool matched = false;
#if defined(__SSE2__)
        // Most events spell their keys in the schema's order: compare the
        // expected column's name and closing quote at once; and a field
        // that is no column, after the same column as last time.
        auto match = [&](const QuotedName& q) {
          __m128i got = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 1));
          __m128i want = _mm_load_si128(reinterpret_cast<const __m128i*>(q.bytes));
          uint32_t same = uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(got, want)));
          if (q.mask == 0 || (same & q.mask) != q.mask || size_t(end - p) < q.size + 2) return false;
          p += q.size + 2;
          return true;
        };
        if (padded && size_t(previous + 1) < schema.size() && match(quoted[size_t(previous + 1)])) {
          col = previous + 1;
          matched = true;
        } else if (padded && previous == unknown_after && match(unknown)) {
          matched = true;
        }
#endif
        if (!matched) {
          std::string_view key;
          if (!plain_string(p, end, &key)) return false;
          col = column_after(previous, key);
          if (col < 0) remember_unknown(previous, key);
        }
        // Most JSON has no whitespace around ':' and ',': those are
        // looked for first, and whitespace skipped only when they are not there.
        if (p == end || *p != ':') {
          ws();
          if (p == end || *p != ':') return false;
        }
        ++p;
        ws();
        if (p == end) return false;
        if (col >= 0) previous = col;
        const char* start = p;
        if (!value(p, end, padded, col, row)) return false;
        if (learn) learned.push_back({uint32_t(start - json.data()), uint32_t(p - json.data()), col});
        if (col >= 0) seen_mask |= uint64_t(1) << col;
        if (p == end || (*p != ',' && *p != '}')) ws();
        if (p == end) return false;
        if (*p == ',') {
          ++p;
          ws();
          continue;
        }
        if (*p != '}') return false;
        ++p;
        break;
      }
    }
    ws();
    if (p != end) return false;
    return seen_mask == (schema.size() == 64 ? ~uint64_t(0) : (uint64_t(1) << schema.size()) - 1);
  }

  bool read_value(od::value v, Type type, Value* out, std::string_view name, std::string* reason) {
    od::json_type jt;
    if (v.type().get(jt)) {
      *reason = fmt::format("field \"{}\" is not valid JSON", name);
      return false;
    }
    if (jt == od::json_type::null) {
      out->type = Type::kNull;
      return true;
    }
    auto mistyped = [&] {
      *reason = fmt::format("field \"{}\" is not of type {}", name, sql::type_name(type));
      return false;
    };
    switch (type) {
      case Type::kInt: {
        int64_t x;
        if (jt != od::json_type::number || v.get_int64().get(x)) return mistyped();
        out->type = Type::kInt;
        out->i = x;
        return true;
      }
      case Type::kDouble: {
        double x;
        if (jt == od::json_type::string) {  // how write_json() spells non-finite doubles
          std::string_view s;
          if (v.get_string().get(s)) return mistyped();
          if (s == "NaN") {
            x = std::numeric_limits<double>::quiet_NaN();
          } else if (s == "Infinity") {
            x = std::numeric_limits<double>::infinity();
          } else if (s == "-Infinity") {
            x = -std::numeric_limits<double>::infinity();
          } else {
            return mistyped();
          }
          out->type = Type::kDouble;
          out->d = x;
          return true;
        }
        if (jt != od::json_type::number || v.get_double().get(x)) return mistyped();
        out->type = Type::kDouble;
        out->d = x;
        return true;
      }
      case Type::kText: {
        std::string_view s;
        if (jt != od::json_type::string || v.get_string().get(s)) return mistyped();
        out->type = Type::kText;
        out->s.assign(s.data(), s.size());
        return true;
      }
      case Type::kBool: {
        bool b;
        if (jt != od::json_type::boolean || v.get_bool().get(b)) return mistyped();
        *out = Value::boolean(b);
        return true;
      }
      case Type::kTimestamp: {
        if (jt == od::json_type::number) {
          int64_t ms;
          constexpr int64_t kMsMax = INT64_MAX / 1000;
          if (v.get_int64().get(ms) || ms > kMsMax || ms < -kMsMax) return mistyped();
          *out = Value::timestamp(ms * 1000);
          return true;
        }
        std::string_view s;
        if (jt != od::json_type::string || v.get_string().get(s)) return mistyped();
        auto t = sql::parse_timestamp(s);
        if (!t) return mistyped();
        *out = Value::timestamp(*t);
        return true;
      }
      case Type::kNull: return mistyped();
    }
    return mistyped();
  }

  bool read_object(od::object obj, sql::Row* row, std::string* reason) {
    row->resize(schema.size());
    for (Value& v : *row) v.type = Type::kNull;
    seen.assign(schema.size(), 0);
    for (auto field_result : obj) {
      if (field_result.error()) {
        *reason = "not valid JSON";
        return false;
      }
      od::field field = field_result.value_unsafe();
      std::string_view key;
      if (field.unescaped_key().get(key)) {
        *reason = "not valid JSON";
        return false;
      }
      int col = column_of(key);
      if (col < 0) continue;  // extra fields are ignored
      if (!read_value(field.value(), schema[size_t(col)].type, &(*row)[size_t(col)], schema[size_t(col)].name, reason))
        return false;
      seen[size_t(col)] = 1;
    }
    for (size_t i = 0; i < schema.size(); ++i) {
      if (!seen[i]) {
        *reason = fmt::format("missing field \"{}\"", schema[i].name);
        return false;
      }
    }
    return true;
  }

  bool iterate(std::string_view json, size_t capacity, od::document* doc, std::string* reason) {
    const char* data = json.data();
    if (capacity < json.size() + simdjson::SIMDJSON_PADDING) {
      copy.assign(json);
      copy.resize(json.size() + simdjson::SIMDJSON_PADDING);
      data = copy.data();
      capacity = copy.size();
    }
    if (parser.iterate(data, json.size(), capacity).get(*doc)) {
      *reason = "not valid JSON";
      return false;
    }
    return true;
  }
};

EventDecoder::EventDecoder(sql::Schema schema) : impl_(std::make_unique<Impl>()) { impl_->set_schema(std::move(schema)); }
EventDecoder::~EventDecoder() = default;

void EventDecoder::keep_only(const std::vector<bool>& columns) {
  for (size_t i = 0; i < impl_->keep.size(); ++i) impl_->keep[i] = i >= columns.size() || columns[i];
  impl_->shaped = false;  // its steps depend on what is kept
}

uint64_t EventDecoder::shaped_rows() const { return impl_->shaped_rows; }

bool EventDecoder::decode_row(std::string_view json, size_t capacity, sql::Row* row, std::string* reason) {
  Impl& d = *impl_;
  const bool padded = capacity >= json.size() + kPadding;
#if defined(__SSE2__)
  if (padded && d.shaped && d.shaped_row(json, row)) {
    ++d.shaped_rows;
    return true;
  }
#endif
  if (d.fast_row(json, padded, row, padded)) {
    if (padded) d.learn_shape(json);
    return true;
  }
  return decode_row_full(json, capacity, row, reason);
}

bool EventDecoder::decode_row_full(std::string_view json, size_t capacity, sql::Row* row, std::string* reason) {
  od::document doc;
  if (!impl_->iterate(json, capacity, &doc, reason)) return false;
  od::object obj;
  if (doc.get_object().get(obj)) {
    *reason = "not a JSON object";
    return false;
  }
  return impl_->read_object(obj, row, reason);
}

bool EventDecoder::decode_change(std::string_view json, size_t capacity, std::optional<sql::Row>* before,
                                 std::optional<sql::Row>* after, std::string* reason) {
  od::document doc;
  if (!impl_->iterate(json, capacity, &doc, reason)) return false;
  od::object obj;
  if (doc.get_object().get(obj)) {
    *reason = "not a JSON object";
    return false;
  }
  before->reset();
  after->reset();
  for (auto field_result : obj) {
    std::string_view key;
    if (field_result.error()) {
      *reason = "not valid JSON";
      return false;
    }
    od::field field = field_result.value_unsafe();
    if (field.unescaped_key().get(key)) {
      *reason = "not valid JSON";
      return false;
    }
    if (key != "before" && key != "after") continue;
    od::value v = field.value();
    od::json_type jt;
    if (v.type().get(jt)) {
      *reason = "not valid JSON";
      return false;
    }
    if (jt == od::json_type::null) continue;
    od::object inner;
    if (v.get_object().get(inner)) {
      *reason = fmt::format("\"{}\" is not an object", key);
      return false;
    }
    sql::Row row;
    if (!impl_->read_object(inner, &row, reason)) return false;
    (key == "before" ? *before : *after) = std::move(row);
  }
  return true;
}

void write_row_json(JsonWriter& w, const sql::Schema& schema, const sql::Row& row) {
  w.begin_object();
  for (size_t i = 0; i < schema.size() && i < row.size(); ++i) {
    w.key(schema[i].name);
    sql::write_json(w, row[i]);
  }
  w.end_object();
}

std::string row_to_json(const sql::Schema& schema, const sql::Row& row) {
  JsonWriter w;
  write_row_json(w, schema, row);
  return w.str();
}

}  // namespace evert::views
