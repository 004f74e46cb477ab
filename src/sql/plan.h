// Binding and planning: resolves a SELECT against the schema of its input,
// infers types, splits it into filter -> [group + aggregate] -> project, and
// evaluates expressions. Views (src/views) run a SelectPlan incrementally;
// ad-hoc queries run the same plan over a snapshot of rows.
#pragma once

#include <string>
#include <vector>

#include "sql/ast.h"

namespace evert::sql {

struct Column {
  std::string name;
  Type type = Type::kNull;
};
using Schema = std::vector<Column>;

int find_column(const Schema& schema, const std::string& name);

// Binds `e` against `schema` (column indexes, types). Aggregates are
// rejected (42803) unless the caller handles them. Throws SqlException.
ExprPtr bind_expr(const ExprPtr& e, const Schema& schema);

// Evaluates a bound expression. Throws SqlException on division by zero
// (22012), overflow (22003) and failed casts (22P02).
Value eval(const Expr& e, const Row& row);
// WHERE semantics: true only when the value is boolean true.
inline bool eval_predicate(const Expr& e, const Row& row) {
  Value v = eval(e, row);
  return v.type == Type::kBool && v.i != 0;
}

struct AggSpec {
  AggKind kind = AggKind::kCountStar;
  ExprPtr arg;  // bound on the input; null for count(*)
  Type type = Type::kInt;  // the result type
};

struct SortKey {
  ExprPtr expr;  // bound on the output row of the plan (see below)
  bool desc = false;
  bool nulls_first = false;
};

struct SelectPlan {
  Schema input;
  ExprPtr filter;  // on input rows; null: none
  bool aggregate = false;
  std::vector<ExprPtr> group_exprs;  // on input rows
  std::vector<AggSpec> aggs;
  ExprPtr having;  // on the combined row [group values..., aggregate results...]
  // The output expressions: on the combined row when aggregating, else on
  // the input row.
  std::vector<ExprPtr> outputs;
  Schema output;
  // For each group expression, the output column that shows it (-1: none).
  std::vector<int> group_output_column;
  // ORDER BY, bound on the row [outputs..., input-or-combined row...].
  std::vector<SortKey> order;
  std::optional<int64_t> limit;
  int64_t offset = 0;
  bool distinct = false;
};

// Throws SqlException. `for_view` demands unique, named output columns.
SelectPlan plan_select(const Select& select, const Schema& input, bool for_view);

// Structural equality of bound expressions.
bool same_expr(const Expr& a, const Expr& b);
// "customer + 1", for EXPLAIN and default column names.
std::string expr_to_string(const Expr& e, const Schema* schema);

}  // namespace evert::sql
