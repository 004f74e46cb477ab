// What `evert sql` prints for an answer of `POST /v1/sql` (docs/SQL.md):
// pure functions from the answer's bytes to text, kept apart from the HTTP
// client so they can be tested without a server.
//
// The output follows psql's defaults (aligned format, border 1), checked
// against psql 15: a table per result with columns, centred headers, numbers
// right-aligned, NULL as an empty cell, a line of a multi-line cell ending in
// '+', then "(N rows)" and a blank line; a command tag ("INSERT 0 2",
// "CREATE TABLE") for a result without columns. Errors go as psql prints
// them: "ERROR:  message", the statement's line with a caret under the error
// position, then "SQLSTATE: code".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace evert::cli {

// One result set. Cells are already text; nullopt is SQL NULL.
struct SqlTable {
  std::vector<std::string> columns;
  std::vector<bool> right_aligned;  // per column; missing entries: left
  std::vector<std::vector<std::optional<std::string>>> rows;
};

// The aligned table, its "(N rows)" footer and a blank line. Widths count
// UTF-8 code points (wide East Asian characters will misalign). Precondition:
// every row has one cell per column.
std::string format_table(const SqlTable& table);

// Where a 1-based character `position` of `sql` falls, as psql shows it:
// "LINE 3: <that line>\n" and a caret line under the character. Tabs show as
// one space. Empty when the position is outside the text.
std::string format_error_position(std::string_view sql, int64_t position);

// Text for one answer, split by destination.
struct SqlOutput {
  std::string out;       // results, for stdout
  std::string err;       // the error report, for stderr
  bool failed = false;   // the server reported an error
};

// Renders the answer `body` to a request whose SQL text was `sql` (error
// positions count characters of it). kCorruption when the body is not JSON
// of the documented shape; the caller then reports the raw answer.
Result<SqlOutput> render_sql_answer(std::string_view body, std::string_view sql);

}  // namespace evert::cli
