// A small JSON writer for evert's HTTP answers: builds compact JSON text
// with correct string escaping. Usage:
//   JsonWriter w; w.begin_object(); w.key("a"); w.value(1); w.end_object();
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace evert {

class JsonWriter {
 public:
  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }
  void key(std::string_view k);
  void value(std::string_view s);
  void value(const char* s) { value(std::string_view(s)); }
  void value(int64_t v);
  void value(int32_t v) { value(int64_t(v)); }
  void value(uint64_t v);
  void value(double v);
  void value(bool v);
  void null();
  // Appends already-encoded JSON as one value.
  void raw(std::string_view json);
  std::string& mutable_str() { return out_; }
  // Starts over, keeping the buffer's capacity.
  void clear() {
    out_.clear();
    first_.clear();
    after_key_ = false;
  }
  const std::string& str() const { return out_; }

 private:
  void open(char c);
  void close(char c);
  void separate();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

// Appends `s` as a quoted JSON string.
void json_quote(std::string& out, std::string_view s);

}  // namespace evert
