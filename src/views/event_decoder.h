// Decodes event payloads into rows of a table's schema: JSON objects whose
// fields are the columns (simdjson on-demand), and the changelog records
// views write ({"key":..., "before":{...}|null, "after":{...}|null}).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sql/plan.h"

namespace evert::views {

class EventDecoder {
 public:
  explicit EventDecoder(sql::Schema schema);
  ~EventDecoder();
  EventDecoder(const EventDecoder&) = delete;
  EventDecoder& operator=(const EventDecoder&) = delete;

  // `json` must be followed by at least kPadding readable bytes in memory
  // (see `capacity`: bytes readable from json.data()). On failure returns
  // false with a reason such as "missing field \"qty\"".
  // Flat objects of plain ASCII take a scanner of its own, which first
  // tries the shape of the last event it took (the same bytes between the
  // values: most producers repeat it); anything else, and every error,
  // takes simdjson (decode_row_full).
  bool decode_row(std::string_view json, size_t capacity, sql::Row* row, std::string* reason);
  // simdjson alone: what decode_row must agree with.
  bool decode_row_full(std::string_view json, size_t capacity, sql::Row* row, std::string* reason);
  // Only these columns (by index) are read from the rows decode_row
  // returns: text and integer values of the others are still checked but
  // not copied or computed, and read as NULL. Every column by default.
  void keep_only(const std::vector<bool>& columns);
  // A changelog record: before/after rows (absent = nullopt).
  bool decode_change(std::string_view json, size_t capacity, std::optional<sql::Row>* before,
                     std::optional<sql::Row>* after, std::string* reason);

  // Rows decode_row() read against the last event's shape (for tests).
  uint64_t shaped_rows() const;

  static constexpr size_t kPadding = 64;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The JSON object form of a row: {"col": value, ...}.
std::string row_to_json(const sql::Schema& schema, const sql::Row& row);
void write_row_json(JsonWriter& w, const sql::Schema& schema, const sql::Row& row);

}  // namespace evert::views
