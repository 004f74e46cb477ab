#include "cli/sql_format.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>

#include "base/assert.h"

namespace evert::cli {
namespace {

namespace dom = simdjson::dom;

bool is_utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

size_t display_width(std::string_view s) {
  return size_t(std::count_if(s.begin(), s.end(), [](char c) { return !is_utf8_continuation(c); }));
}

std::string spaces(size_t n) { return std::string(n, ' '); }

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    size_t nl = s.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(s.substr(start));
      return lines;
    }
    lines.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
}

// One physical line of one cell: psql pads every column to its width except
// the last, which it pads only to right-align a value or to reach a '+'.
void append_cell_line(std::string& out, const std::vector<std::string_view>& lines, size_t k, size_t width,
                      bool right, bool last) {
  if (k >= lines.size()) {
    if (!last) out += spaces(width + 1);
    return;
  }
  std::string_view text = lines[k];
  bool more = k + 1 < lines.size();
  size_t pad = width - display_width(text);
  if (right) out += spaces(pad);
  out += text;
  if (!right && (more || !last)) out += spaces(pad);
  if (more) {
    out += '+';
  } else if (!last) {
    out += ' ';
  }
}

// A JSON cell as psql would show the SQL value: text raw, booleans as t/f,
// arrays and objects as compact JSON.
std::optional<std::string> cell_text(const dom::element& v) {
  switch (v.type()) {
    case dom::element_type::NULL_VALUE: return std::nullopt;
    case dom::element_type::STRING: return std::string(v.get_string().value_unsafe());
    case dom::element_type::BOOL: return std::string(v.get_bool().value_unsafe() ? "t" : "f");
    case dom::element_type::INT64: return std::to_string(v.get_int64().value_unsafe());
    case dom::element_type::UINT64: return std::to_string(v.get_uint64().value_unsafe());
    // The shortest text that reads back as the same double, like PostgreSQL's float8 output.
    case dom::element_type::DOUBLE: return fmt::format("{}", v.get_double().value_unsafe());
    case dom::element_type::ARRAY:
    case dom::element_type::OBJECT: return simdjson::minify(v);
  }
  return std::nullopt;
}

bool is_number(const dom::element& v) {
  auto t = v.type();
  return t == dom::element_type::INT64 || t == dom::element_type::UINT64 || t == dom::element_type::DOUBLE;
}

Status bad_answer(std::string what) { return error(ErrorCode::kCorruption, std::move(what)); }

// Parses a result with columns. Like psql, a column is right-aligned when it
// holds numbers (psql decides by type; here: it has a JSON number and every
// other value is null).
Result<SqlTable> parse_table(const dom::object& result, size_t index) {
  SqlTable table;
  dom::array columns;
  if (result["columns"].get(columns) != simdjson::SUCCESS)
    return bad_answer(fmt::format("result {}: 'columns' is not an array", index));
  for (dom::element c : columns) {
    std::string_view name;
    if (c.get(name) != simdjson::SUCCESS)
      return bad_answer(fmt::format("result {}: a column name is not a string", index));
    table.columns.emplace_back(name);
  }
  table.right_aligned.assign(table.columns.size(), false);
  std::vector<bool> has_number(table.columns.size(), false);
  std::vector<bool> has_other(table.columns.size(), false);
  dom::array rows;
  auto rows_field = result["rows"];
  if (rows_field.error() == simdjson::NO_SUCH_FIELD) return table;
  if (rows_field.get(rows) != simdjson::SUCCESS)
    return bad_answer(fmt::format("result {}: 'rows' is not an array", index));
  for (dom::element r : rows) {
    dom::array row;
    if (r.get(row) != simdjson::SUCCESS || row.size() != table.columns.size())
      return bad_answer(fmt::format("result {}: row {} is not an array of {} values", index, table.rows.size(),
                                    table.columns.size()));
    auto& cells = table.rows.emplace_back();
    size_t j = 0;
    for (dom::element v : row) {
      cells.push_back(cell_text(v));
      if (is_number(v)) {
        has_number[j] = true;
      } else if (!v.is_null()) {
        has_other[j] = true;
      }
      ++j;
    }
  }
  for (size_t j = 0; j < table.columns.size(); ++j) table.right_aligned[j] = has_number[j] && !has_other[j];
  return table;
}

// "INSERT 0 2" (psql's tag carries an OID, always 0 now), "UPDATE 3",
// "CREATE TABLE".
Result<std::string> command_tag(const dom::object& result, size_t index) {
  std::string_view command;
  if (result["command"].get(command) != simdjson::SUCCESS)
    return bad_answer(fmt::format("result {}: no 'command' and no 'columns'", index));
  int64_t rows_affected = 0;
  auto affected = result["rows_affected"];
  if (affected.error() == simdjson::NO_SUCH_FIELD || affected.is_null()) return std::string(command);
  if (affected.get(rows_affected) != simdjson::SUCCESS)
    return bad_answer(fmt::format("result {}: 'rows_affected' is not an integer", index));
  if (command == "INSERT") return fmt::format("INSERT 0 {}", rows_affected);
  return fmt::format("{} {}", command, rows_affected);
}

// "offsets: orders/0@41 orders/3@17", or empty when the result has none.
Result<std::string> offsets_line(const dom::object& result, size_t index) {
  dom::array offsets;
  auto field = result["offsets"];
  if (field.error() == simdjson::NO_SUCH_FIELD || field.is_null()) return std::string();
  if (field.get(offsets) != simdjson::SUCCESS)
    return bad_answer(fmt::format("result {}: 'offsets' is not an array", index));
  if (offsets.size() == 0) return std::string();
  std::string line = "offsets:";
  for (dom::element o : offsets) {
    std::string_view topic;
    int64_t partition = 0;
    int64_t offset = 0;
    if (o["topic"].get(topic) != simdjson::SUCCESS || o["partition"].get(partition) != simdjson::SUCCESS ||
        o["offset"].get(offset) != simdjson::SUCCESS)
      return bad_answer(fmt::format("result {}: an offset lacks topic, partition or offset", index));
    line += fmt::format(" {}/{}@{}", topic, partition, offset);
  }
  return line;
}

Status render_result(const dom::element& r, size_t index, std::string& out) {
  dom::object result;
  if (r.get(result) != simdjson::SUCCESS) return bad_answer(fmt::format("result {} is not an object", index));
  if (result["columns"].error() != simdjson::NO_SUCH_FIELD) {
    EVERT_ASSIGN_OR_RETURN(SqlTable table, parse_table(result, index));
    out += format_table(table);
  } else {
    EVERT_ASSIGN_OR_RETURN(std::string tag, command_tag(result, index));
    out += tag;
    out += '\n';
  }
  EVERT_ASSIGN_OR_RETURN(std::string offsets, offsets_line(result, index));
  if (!offsets.empty()) out += offsets + "\n";
  return Status::ok();
}

// Five digits or upper-case letters, as PostgreSQL's error codes.
bool is_sqlstate(std::string_view code) {
  return code.size() == 5 &&
         std::all_of(code.begin(), code.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); });
}

Status render_error(const dom::element& e, std::string_view sql, std::string& err) {
  std::string_view message;
  if (e["message"].get(message) != simdjson::SUCCESS) return bad_answer("'error' has no 'message'");
  err += fmt::format("ERROR:  {}\n", message);
  int64_t position = 0;
  if (e["position"].get(position) == simdjson::SUCCESS) {
    std::string hint = format_error_position(sql, position);
    err += hint.empty() ? fmt::format("POSITION: {}\n", position) : hint;
  }
  // The HTTP layer's own errors (e.g. "not_found" from a server without the
  // SQL API) use the same shape with codes that are not SQLSTATEs.
  std::string_view code;
  if (e["code"].get(code) == simdjson::SUCCESS)
    err += fmt::format("{}: {}\n", is_sqlstate(code) ? "SQLSTATE" : "CODE", code);
  return Status::ok();
}

}  // namespace

std::string format_table(const SqlTable& table) {
  size_t ncols = table.columns.size();
  // Cells split into their lines once; a NULL is one empty line.
  std::vector<std::vector<std::vector<std::string_view>>> cells(table.rows.size());
  std::vector<size_t> widths(ncols);
  for (size_t j = 0; j < ncols; ++j) widths[j] = display_width(table.columns[j]);
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const auto& row = table.rows[i];
    EVERT_CHECK_MSG(row.size() == ncols, "a row has one cell per column");
    for (size_t j = 0; j < ncols; ++j) {
      cells[i].push_back(row[j] ? split_lines(*row[j]) : std::vector<std::string_view>{std::string_view()});
      for (std::string_view line : cells[i][j]) widths[j] = std::max(widths[j], display_width(line));
    }
  }

  std::string out;
  for (size_t j = 0; j < ncols; ++j) {
    size_t pad = widths[j] - display_width(table.columns[j]);
    out += fmt::format("{} {}{}{} ", j > 0 ? "|" : "", spaces(pad / 2), table.columns[j], spaces(pad - pad / 2));
  }
  out += '\n';
  for (size_t j = 0; j < ncols; ++j) out += (j > 0 ? "+" : "") + std::string(widths[j] + 2, '-');
  out += '\n';
  for (const auto& row : cells) {
    size_t height = 1;
    for (const auto& lines : row) height = std::max(height, lines.size());
    for (size_t k = 0; k < height; ++k) {
      for (size_t j = 0; j < ncols; ++j) {
        out += j > 0 ? "| " : " ";
        bool right = j < table.right_aligned.size() && table.right_aligned[j];
        append_cell_line(out, row[j], k, widths[j], right, j + 1 == ncols);
      }
      out += '\n';
    }
  }
  out += fmt::format("({} {})\n\n", table.rows.size(), table.rows.size() == 1 ? "row" : "rows");
  return out;
}

std::string format_error_position(std::string_view sql, int64_t position) {
  if (position < 1) return "";
  // The byte where character `position` starts; one past the end is allowed
  // (PostgreSQL points there for "syntax error at end of input").
  size_t at = 0;
  for (int64_t seen = 0; at < sql.size(); ++at) {
    if (is_utf8_continuation(sql[at])) continue;
    if (++seen == position) break;
  }
  if (at == sql.size() && int64_t(display_width(sql)) + 1 != position) return "";
  size_t newline_before = at == 0 ? std::string_view::npos : sql.rfind('\n', at - 1);
  size_t line_start = newline_before == std::string_view::npos ? 0 : newline_before + 1;
  size_t line_end = sql.find('\n', at);
  if (line_end == std::string_view::npos) line_end = sql.size();
  std::string line(sql.substr(line_start, line_end - line_start));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::replace(line.begin(), line.end(), '\t', ' ');
  size_t line_no = size_t(std::count(sql.begin(), sql.begin() + line_start, '\n')) + 1;
  std::string prefix = fmt::format("LINE {}: ", line_no);
  size_t column = display_width(sql.substr(line_start, at - line_start));
  return fmt::format("{}{}\n{}^\n", prefix, line, spaces(prefix.size() + column));
}

Result<SqlOutput> render_sql_answer(std::string_view body, std::string_view sql) {
  dom::parser parser;
  dom::element doc;
  if (auto e = parser.parse(body.data(), body.size()).get(doc); e != simdjson::SUCCESS)
    return bad_answer(fmt::format("not JSON: {}", simdjson::error_message(e)));
  if (!doc.is_object()) return bad_answer("not a JSON object");
  SqlOutput output;
  dom::array results;
  auto results_field = doc["results"];
  dom::element error_field;
  bool has_error = doc["error"].get(error_field) == simdjson::SUCCESS && !error_field.is_null();
  if (results_field.error() == simdjson::NO_SUCH_FIELD) {
    if (!has_error) return bad_answer("no 'results' and no 'error'");
  } else if (results_field.get(results) != simdjson::SUCCESS) {
    return bad_answer("'results' is not an array");
  } else {
    size_t index = 0;
    for (dom::element r : results) EVERT_RETURN_IF_ERROR(render_result(r, index++, output.out));
  }
  if (has_error) {
    if (!error_field.is_object()) return bad_answer("'error' is not an object");
    EVERT_RETURN_IF_ERROR(render_error(error_field, sql, output.err));
    output.failed = true;
  }
  return output;
}

}  // namespace evert::cli
