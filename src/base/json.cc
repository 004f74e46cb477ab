#include "base/json.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace evert {

void json_quote(std::string& out, std::string_view s) {
  out.push_back('"');
  // Runs of characters that need no escape are appended at once.
  size_t plain = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = uint8_t(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    char ch = s[i];
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += fmt::format("\\u{:04x}", c);  // the other control characters
    }
  }
  out.append(s.data() + plain, s.size() - plain);
  out.push_back('"');
}

void JsonWriter::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

void JsonWriter::open(char c) {
  separate();
  out_.push_back(c);
  first_.push_back(true);
}

void JsonWriter::close(char c) {
  out_.push_back(c);
  first_.pop_back();
}

void JsonWriter::key(std::string_view k) {
  separate();
  json_quote(out_, k);
  out_.push_back(':');
  after_key_ = true;
}

void JsonWriter::value(std::string_view s) {
  separate();
  json_quote(out_, s);
}

void JsonWriter::raw(std::string_view json) {
  separate();
  out_.append(json);
}

void JsonWriter::value(int64_t v) {
  separate();
  char digits[24];
  out_.append(digits, std::to_chars(digits, digits + sizeof(digits), v).ptr);
}

void JsonWriter::value(uint64_t v) {
  separate();
  char digits[24];
  out_.append(digits, std::to_chars(digits, digits + sizeof(digits), v).ptr);
}

void JsonWriter::value(double v) {
  separate();
  if (std::isfinite(v)) {
    out_ += fmt::format("{}", v);
  } else {
    out_ += "null";
  }
}

void JsonWriter::value(bool v) {
  separate();
  out_ += v ? "true" : "false";
}

void JsonWriter::null() {
  separate();
  out_ += "null";
}

}  // namespace evert
