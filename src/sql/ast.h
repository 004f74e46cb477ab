// The statements and expressions evert's SQL executes, as the parser
// (parser.h) produces them from libpg_query's parse tree. Names are not yet
// resolved; bind.h resolves columns against a schema and infers types.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sql/value.h"

namespace evert::sql {

// An error with a PostgreSQL SQLSTATE and, when known, the byte offset in
// the statement text it points at.
struct SqlError {
  std::string code;     // SQLSTATE, e.g. "42P01"
  std::string message;
  int position = -1;    // 0-based byte offset into the request's SQL; -1 unknown
};

// Thrown inside the SQL layer only; public functions return SqlResult.
struct SqlException {
  SqlError error;
};

[[noreturn]] void throw_sql(std::string code, std::string message, int position = -1);

template <typename T>
class [[nodiscard]] SqlResult {
 public:
  SqlResult(T value) : v_(std::move(value)) {}       // NOLINT
  SqlResult(SqlError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  const SqlError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, SqlError> v_;
};

enum class ExprKind { kColumn, kConst, kNeg, kNot, kArith, kCompare, kAnd, kOr, kIsNull, kIsNotNull, kCast, kAgg, kIn, kBetween };
enum class Op { kAdd, kSub, kMul, kDiv, kMod, kEq, kNe, kLt, kLe, kGt, kGe };
enum class AggKind { kCountStar, kCount, kSum, kMin, kMax, kAvg, kCountDistinct };

const char* op_name(Op op);
const char* agg_name(AggKind agg);

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::kConst;
  Op op = Op::kAdd;
  AggKind agg = AggKind::kCountStar;
  bool negated = false;   // NOT IN, NOT BETWEEN
  std::string name;       // kColumn: the column name as written (lower-cased unless quoted)
  int column = -1;        // kColumn after binding: index in the input row
  Value value;            // kConst
  Type type = Type::kNull;  // result type after binding; kCast: the target
  std::vector<ExprPtr> args;
  int location = -1;
};

struct SelectItem {
  ExprPtr expr;           // null for `*`
  std::string alias;
  int location = -1;
};

struct OrderItem {
  ExprPtr expr;
  bool desc = false;
  std::optional<bool> nulls_first;
};

struct Select {
  std::vector<SelectItem> items;
  std::string from;  // empty: no FROM
  int from_location = -1;
  ExprPtr where;
  std::vector<ExprPtr> group_by;
  ExprPtr having;
  std::vector<OrderItem> order_by;
  std::optional<int64_t> limit;
  std::optional<int64_t> offset;
  bool distinct = false;
};

struct ColumnDef {
  std::string name;
  Type type = Type::kNull;
  bool not_null = false;
  int location = -1;
};

struct CreateTable {
  std::string name;
  std::vector<ColumnDef> columns;
  std::map<std::string, Value> options;  // WITH (k = v, ...)
  bool if_not_exists = false;
};

struct Insert {
  std::string table;
  int table_location = -1;
  std::vector<std::string> columns;  // empty: all, in order
  std::vector<std::vector<ExprPtr>> rows;
};

struct Update {
  std::string table;
  int table_location = -1;
  std::vector<std::pair<std::string, ExprPtr>> sets;
  ExprPtr where;
};

struct Delete {
  std::string table;
  int table_location = -1;
  ExprPtr where;
};

struct CreateView {
  std::string name;
  Select query;
  std::string query_text;  // the SELECT as written
  std::map<std::string, Value> options;
  bool if_not_exists = false;
};

struct CreateIndex {
  std::string name;
  std::string table;
  int table_location = -1;
  std::string column;
  bool if_not_exists = false;
};

enum class ObjectKind { kTable, kView, kIndex };

struct Drop {
  ObjectKind kind = ObjectKind::kTable;
  std::vector<std::string> names;
  bool if_exists = false;
  bool cascade = false;
};

struct Show {
  std::string what;  // "tables", "views", "indexes"
};

struct Refresh {  // REFRESH MATERIALIZED VIEW v: rebuild from the log and compare
  std::string name;
};

struct Explain;
using StatementBody =
    std::variant<Select, CreateTable, Insert, Update, Delete, CreateView, CreateIndex, Drop, Show, Refresh,
                 std::shared_ptr<Explain>>;

struct Statement {
  StatementBody body;
  std::string text;  // this statement's text
  int offset = 0;    // where it starts in the request
};

struct Explain {
  Statement inner;
};

// The command tag PostgreSQL would send: "SELECT", "CREATE TABLE", ...
std::string command_tag(const Statement& statement);

}  // namespace evert::sql
