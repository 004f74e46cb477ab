#include "sql/plan.h"

#include <cmath>
#include <functional>

#include <fmt/format.h>

namespace evert::sql {

int find_column(const Schema& schema, const std::string& name) {
  for (size_t i = 0; i < schema.size(); ++i) {
    if (schema[i].name == name) return int(i);
  }
  return -1;
}

namespace {

bool comparable(Type a, Type b) {
  if (a == Type::kNull || b == Type::kNull || a == b) return true;
  return is_numeric(a) && is_numeric(b);
}

// A text literal next to a typed operand takes that operand's type, as
// PostgreSQL's unknown-typed literals do.
void coerce_literal(ExprPtr& lit, Type to) {
  if (lit->kind != ExprKind::kConst || lit->value.type != Type::kText || to == Type::kText || to == Type::kNull) return;
  auto r = coerce(lit->value, to);
  if (!r) throw_sql("22P02", r.status().message(), lit->location);
  auto c = std::make_shared<Expr>(*lit);
  c->value = *r;
  c->type = to;
  lit = c;
}

void require_bool(const ExprPtr& e, const char* what) {
  if (e->type != Type::kBool && e->type != Type::kNull)
    throw_sql("42804", fmt::format("argument of {} must be type boolean, not type {}", what, type_name(e->type)),
              e->location);
}

}  // namespace

ExprPtr bind_expr(const ExprPtr& in, const Schema& schema) {
  auto e = std::make_shared<Expr>(*in);
  for (auto& a : e->args) a = bind_expr(a, schema);
  switch (e->kind) {
    case ExprKind::kColumn: {
      if (e->column >= 0 && size_t(e->column) < schema.size()) {  // already bound (planner rewrites)
        e->type = schema[size_t(e->column)].type;
        break;
      }
      if (e->name == "*") throw_sql("42601", "* is not allowed here", e->location);
      e->column = find_column(schema, e->name);
      if (e->column < 0) throw_sql("42703", fmt::format("column \"{}\" does not exist", e->name), e->location);
      e->type = schema[size_t(e->column)].type;
      break;
    }
    case ExprKind::kConst: e->type = e->value.type; break;
    case ExprKind::kNeg:
      if (!is_numeric(e->args[0]->type) && e->args[0]->type != Type::kNull)
        throw_sql("42883", fmt::format("operator does not exist: - {}", type_name(e->args[0]->type)), e->location);
      e->type = e->args[0]->type == Type::kNull ? Type::kInt : e->args[0]->type;
      break;
    case ExprKind::kNot:
      require_bool(e->args[0], "NOT");
      e->type = Type::kBool;
      break;
    case ExprKind::kAnd:
    case ExprKind::kOr:
      for (auto& a : e->args) require_bool(a, e->kind == ExprKind::kAnd ? "AND" : "OR");
      e->type = Type::kBool;
      break;
    case ExprKind::kIsNull:
    case ExprKind::kIsNotNull: e->type = Type::kBool; break;
    case ExprKind::kCast: {
      Type from = e->args[0]->type;
      Type to = e->type;
      bool ok = from == Type::kNull || from == to || to == Type::kText || from == Type::kText ||
                (is_numeric(from) && is_numeric(to)) || (from == Type::kBool && to == Type::kInt) ||
                (from == Type::kInt && to == Type::kBool);
      if (!ok)
        throw_sql("42846", fmt::format("cannot cast type {} to {}", type_name(from), type_name(to)), e->location);
      if (e->args[0]->kind == ExprKind::kConst) {  // fold constant casts, reporting bad literals here
        auto r = coerce(e->args[0]->value, to);
        if (!r) throw_sql("22P02", r.status().message(), e->args[0]->location);
        auto c = std::make_shared<Expr>(*e->args[0]);
        c->value = *r;
        c->type = to;
        c->location = e->location;
        return c;
      }
      break;
    }
    case ExprKind::kArith: {
      Type a = e->args[0]->type, b = e->args[1]->type;
      if ((a != Type::kNull && !is_numeric(a)) || (b != Type::kNull && !is_numeric(b)))
        throw_sql("42883",
                  fmt::format("operator does not exist: {} {} {}", type_name(a), op_name(e->op), type_name(b)),
                  e->location);
      e->type = (a == Type::kDouble || b == Type::kDouble) ? Type::kDouble : Type::kInt;
      break;
    }
    case ExprKind::kCompare: {
      coerce_literal(e->args[1], e->args[0]->type);
      coerce_literal(e->args[0], e->args[1]->type);
      Type a = e->args[0]->type, b = e->args[1]->type;
      if (!comparable(a, b))
        throw_sql("42883",
                  fmt::format("operator does not exist: {} {} {}", type_name(a), op_name(e->op), type_name(b)),
                  e->location);
      e->type = Type::kBool;
      break;
    }
    case ExprKind::kIn:
    case ExprKind::kBetween:
      for (size_t i = 1; i < e->args.size(); ++i) {
        coerce_literal(e->args[i], e->args[0]->type);
        if (!comparable(e->args[0]->type, e->args[i]->type))
          throw_sql("42883",
                    fmt::format("operator does not exist: {} = {}", type_name(e->args[0]->type),
                                type_name(e->args[i]->type)),
                    e->args[i]->location);
      }
      e->type = Type::kBool;
      break;
    case ExprKind::kAgg:
      throw_sql("42803", "aggregate functions are not allowed here", e->location);
  }
  return e;
}

namespace {

void check_overflow(bool overflow) {
  if (overflow) throw_sql("22003", "bigint out of range");
}

Value arith(Op op, const Value& a, const Value& b, Type type) {
  if (a.is_null() || b.is_null()) return Value::null();
  if (type == Type::kInt) {
    int64_t x = a.i, y = b.i, r = 0;
    switch (op) {
      case Op::kAdd:
        check_overflow(__builtin_add_overflow(x, y, &r));
        return Value::integer(r);
      case Op::kSub:
        check_overflow(__builtin_sub_overflow(x, y, &r));
        return Value::integer(r);
      case Op::kMul:
        check_overflow(__builtin_mul_overflow(x, y, &r));
        return Value::integer(r);
      case Op::kDiv:
        if (y == 0) throw_sql("22012", "division by zero");
        if (x == INT64_MIN && y == -1) throw_sql("22003", "bigint out of range");
        return Value::integer(x / y);
      case Op::kMod:
        if (y == 0) throw_sql("22012", "division by zero");
        if (y == -1) return Value::integer(0);
        return Value::integer(x % y);
      default: break;
    }
    return Value::null();
  }
  double x = a.as_double(), y = b.as_double();
  switch (op) {
    case Op::kAdd: return Value::real(x + y);
    case Op::kSub: return Value::real(x - y);
    case Op::kMul: return Value::real(x * y);
    case Op::kDiv:
      if (y == 0) throw_sql("22012", "division by zero");
      return Value::real(x / y);
    case Op::kMod:
      if (y == 0) throw_sql("22012", "division by zero");
      return Value::real(std::fmod(x, y));
    default: break;
  }
  return Value::null();
}

bool compare_op(Op op, int c) {
  switch (op) {
    case Op::kEq: return c == 0;
    case Op::kNe: return c != 0;
    case Op::kLt: return c < 0;
    case Op::kLe: return c <= 0;
    case Op::kGt: return c > 0;
    case Op::kGe: return c >= 0;
    default: return false;
  }
}

}  // namespace

Value eval(const Expr& e, const Row& row) {
  switch (e.kind) {
    case ExprKind::kColumn: return row[size_t(e.column)];
    case ExprKind::kConst: return e.value;
    case ExprKind::kNeg: {
      Value v = eval(*e.args[0], row);
      if (v.is_null()) return v;
      if (v.type == Type::kDouble) return Value::real(-v.d);
      if (v.i == INT64_MIN) throw_sql("22003", "bigint out of range");
      return Value::integer(-v.i);
    }
    case ExprKind::kNot: {
      Value v = eval(*e.args[0], row);
      if (v.is_null()) return v;
      return Value::boolean(v.i == 0);
    }
    case ExprKind::kAnd:
    case ExprKind::kOr: {
      bool is_and = e.kind == ExprKind::kAnd;
      bool saw_null = false;
      for (const auto& a : e.args) {
        Value v = eval(*a, row);
        if (v.is_null()) {
          saw_null = true;
        } else if ((v.i != 0) != is_and) {
          return Value::boolean(!is_and);
        }
      }
      return saw_null ? Value::null() : Value::boolean(is_and);
    }
    case ExprKind::kIsNull: return Value::boolean(eval(*e.args[0], row).is_null());
    case ExprKind::kIsNotNull: return Value::boolean(!eval(*e.args[0], row).is_null());
    case ExprKind::kCast: {
      Value v = eval(*e.args[0], row);
      auto r = coerce(v, e.type);
      if (!r) throw_sql("22P02", r.status().message(), e.location);
      return *r;
    }
    case ExprKind::kArith: return arith(e.op, eval(*e.args[0], row), eval(*e.args[1], row), e.type);
    case ExprKind::kCompare: {
      Value a = eval(*e.args[0], row);
      if (a.is_null()) return a;
      Value b = eval(*e.args[1], row);
      if (b.is_null()) return b;
      return Value::boolean(compare_op(e.op, compare(a, b)));
    }
    case ExprKind::kIn: {
      Value a = eval(*e.args[0], row);
      if (a.is_null()) return a;
      bool saw_null = false;
      for (size_t i = 1; i < e.args.size(); ++i) {
        Value b = eval(*e.args[i], row);
        if (b.is_null()) {
          saw_null = true;
        } else if (compare(a, b) == 0) {
          return Value::boolean(!e.negated);
        }
      }
      return saw_null ? Value::null() : Value::boolean(e.negated);
    }
    case ExprKind::kBetween: {
      // (a >= lo AND a <= hi) in three-valued logic; NOT BETWEEN negates it.
      Value a = eval(*e.args[0], row), lo = eval(*e.args[1], row), hi = eval(*e.args[2], row);
      auto cmp = [&](const Value& bound, bool lower) -> int {  // 1 true, 0 false, -1 unknown
        if (a.is_null() || bound.is_null()) return -1;
        int c = compare(a, bound);
        return (lower ? c >= 0 : c <= 0) ? 1 : 0;
      };
      int l = cmp(lo, true), h = cmp(hi, false);
      int in = (l == 0 || h == 0) ? 0 : (l == -1 || h == -1) ? -1 : 1;
      if (in < 0) return Value::null();
      return Value::boolean((in == 1) != e.negated);
    }
    case ExprKind::kAgg: throw_sql("XX000", "unplanned aggregate");
  }
  return Value::null();
}

bool same_expr(const Expr& a, const Expr& b) {
  if (a.kind != b.kind || a.args.size() != b.args.size()) return false;
  switch (a.kind) {
    case ExprKind::kColumn:
      if (a.column != b.column || a.name != b.name) return false;
      break;
    case ExprKind::kConst:
      if (a.value.type != b.value.type || a.value != b.value) return false;
      break;
    case ExprKind::kArith:
    case ExprKind::kCompare:
      if (a.op != b.op) return false;
      break;
    case ExprKind::kAgg:
      if (a.agg != b.agg) return false;
      break;
    case ExprKind::kCast:
      if (a.type != b.type) return false;
      break;
    case ExprKind::kIn:
    case ExprKind::kBetween:
      if (a.negated != b.negated) return false;
      break;
    default: break;
  }
  for (size_t i = 0; i < a.args.size(); ++i) {
    if (!same_expr(*a.args[i], *b.args[i])) return false;
  }
  return true;
}

std::string expr_to_string(const Expr& e, const Schema* schema) {
  auto arg = [&](size_t i) { return expr_to_string(*e.args[i], schema); };
  switch (e.kind) {
    case ExprKind::kColumn:
      if (schema && e.column >= 0 && size_t(e.column) < schema->size()) return (*schema)[size_t(e.column)].name;
      return e.name.empty() ? fmt::format("#{}", e.column) : e.name;
    case ExprKind::kConst:
      if (e.value.type == Type::kText) return "'" + e.value.s + "'";
      if (e.value.is_null()) return "NULL";
      return to_text(e.value);
    case ExprKind::kNeg: return "-" + arg(0);
    case ExprKind::kNot: return "NOT " + arg(0);
    case ExprKind::kAnd:
    case ExprKind::kOr: {
      std::string out = "(";
      for (size_t i = 0; i < e.args.size(); ++i) {
        if (i) out += e.kind == ExprKind::kAnd ? " AND " : " OR ";
        out += arg(i);
      }
      return out + ")";
    }
    case ExprKind::kIsNull: return arg(0) + " IS NULL";
    case ExprKind::kIsNotNull: return arg(0) + " IS NOT NULL";
    case ExprKind::kCast: return arg(0) + "::" + type_name(e.type);
    case ExprKind::kArith:
    case ExprKind::kCompare: return "(" + arg(0) + " " + op_name(e.op) + " " + arg(1) + ")";
    case ExprKind::kIn: {
      std::string out = arg(0) + (e.negated ? " NOT IN (" : " IN (");
      for (size_t i = 1; i < e.args.size(); ++i) out += (i > 1 ? ", " : "") + arg(i);
      return out + ")";
    }
    case ExprKind::kBetween: return arg(0) + (e.negated ? " NOT BETWEEN " : " BETWEEN ") + arg(1) + " AND " + arg(2);
    case ExprKind::kAgg:
      if (e.agg == AggKind::kCountStar) return "count(*)";
      if (e.agg == AggKind::kCountDistinct) return "count(DISTINCT " + arg(0) + ")";
      return std::string(agg_name(e.agg)) + "(" + arg(0) + ")";
  }
  return "?";
}

namespace {

bool contains_agg(const Expr& e) {
  if (e.kind == ExprKind::kAgg) return true;
  for (const auto& a : e.args) {
    if (contains_agg(*a)) return true;
  }
  return false;
}

std::string default_name(const Expr& e) {
  if (e.kind == ExprKind::kColumn) return e.name;
  if (e.kind == ExprKind::kAgg) {
    switch (e.agg) {
      case AggKind::kCountStar:
      case AggKind::kCount:
      case AggKind::kCountDistinct: return "count";
      default: return agg_name(e.agg);
    }
  }
  if (e.kind == ExprKind::kCast) return default_name(*e.args[0]);
  return "?column?";
}

struct AggRewriter {
  const Schema& input;
  std::vector<ExprPtr> group_exprs;  // bound on input
  std::vector<AggSpec>* aggs;
  std::vector<ExprPtr>* agg_nodes;  // bound aggregate nodes, to share duplicates

  // Rewrites an unbound expression into one bound on [groups..., aggs...].
  ExprPtr rewrite(const ExprPtr& e) {
    if (e->kind == ExprKind::kAgg) {
      AggSpec spec;
      spec.kind = e->agg;
      auto bound = std::make_shared<Expr>(*e);
      if (!e->args.empty()) {
        if (contains_agg(*e->args[0])) throw_sql("42803", "aggregate function calls cannot be nested", e->location);
        spec.arg = bind_expr(e->args[0], input);
        bound->args = {spec.arg};
        Type t = spec.arg->type;
        switch (spec.kind) {
          case AggKind::kSum:
            if (!is_numeric(t) && t != Type::kNull)
              throw_sql("42883", fmt::format("function sum({}) does not exist", type_name(t)), e->location);
            spec.type = t == Type::kDouble ? Type::kDouble : Type::kInt;
            break;
          case AggKind::kAvg:
            if (!is_numeric(t) && t != Type::kNull)
              throw_sql("42883", fmt::format("function avg({}) does not exist", type_name(t)), e->location);
            spec.type = Type::kDouble;
            break;
          case AggKind::kMin:
          case AggKind::kMax: spec.type = t; break;
          default: spec.type = Type::kInt;
        }
      } else {
        spec.type = Type::kInt;
      }
      size_t index = aggs->size();
      for (size_t k = 0; k < agg_nodes->size(); ++k) {
        if (same_expr(*(*agg_nodes)[k], *bound)) index = k;
      }
      if (index == aggs->size()) {
        aggs->push_back(spec);
        agg_nodes->push_back(bound);
      }
      auto ref = std::make_shared<Expr>();
      ref->kind = ExprKind::kColumn;
      ref->column = int(group_exprs.size() + index);
      ref->type = (*aggs)[index].type;
      ref->name = default_name(*e);
      ref->location = e->location;
      return ref;
    }
    // A whole subexpression equal to a GROUP BY expression reads the group value.
    if (!contains_agg(*e)) {
      ExprPtr bound;
      try {
        bound = bind_expr(e, input);
      } catch (const SqlException&) {
        bound = nullptr;
      }
      if (bound) {
        for (size_t g = 0; g < group_exprs.size(); ++g) {
          if (same_expr(*bound, *group_exprs[g])) {
            auto ref = std::make_shared<Expr>();
            ref->kind = ExprKind::kColumn;
            ref->column = int(g);
            ref->type = group_exprs[g]->type;
            ref->name = default_name(*e);
            ref->location = e->location;
            return ref;
          }
        }
      }
      if (e->kind == ExprKind::kColumn) {
        if (find_column(input, e->name) < 0)
          throw_sql("42703", fmt::format("column \"{}\" does not exist", e->name), e->location);
        throw_sql("42803",
                  fmt::format("column \"{}\" must appear in the GROUP BY clause or be used in an aggregate function",
                              e->name),
                  e->location);
      }
      if (e->kind == ExprKind::kConst) return bind_expr(e, input);
    }
    auto copy = std::make_shared<Expr>(*e);
    for (auto& a : copy->args) a = rewrite(a);
    // Re-bind this node's own type from its (already bound) arguments.
    Schema combined;
    for (auto& g : group_exprs) combined.push_back({"", g->type});
    for (auto& a : *aggs) combined.push_back({"", a.type});
    auto shell = std::make_shared<Expr>(*copy);
    // bind_expr() re-binds args; columns in the rewritten args index `combined`.
    return bind_expr(shell, combined);
  }
};

}  // namespace

SelectPlan plan_select(const Select& select, const Schema& input, bool for_view) {
  SelectPlan plan;
  plan.input = input;
  plan.distinct = select.distinct;
  plan.limit = select.limit;
  plan.offset = select.offset.value_or(0);
  if (select.where) {
    if (contains_agg(*select.where))
      throw_sql("42803", "aggregate functions are not allowed in WHERE", select.where->location);
    plan.filter = bind_expr(select.where, input);
    require_bool(plan.filter, "WHERE");
  }
  bool has_agg = !select.group_by.empty() || select.having != nullptr;
  for (const auto& item : select.items) {
    if (item.expr && contains_agg(*item.expr)) has_agg = true;
  }
  plan.aggregate = has_agg;

  // Expand `*` and name the outputs.
  std::vector<std::pair<ExprPtr, std::string>> items;
  for (const auto& item : select.items) {
    if (!item.expr) {
      if (has_agg) throw_sql("42803", "SELECT * cannot be combined with GROUP BY or aggregates", item.location);
      for (const auto& c : input) {
        auto col = std::make_shared<Expr>();
        col->kind = ExprKind::kColumn;
        col->name = c.name;
        col->location = item.location;
        items.emplace_back(col, c.name);
      }
      continue;
    }
    items.emplace_back(item.expr, item.alias.empty() ? default_name(*item.expr) : item.alias);
  }
  if (items.empty()) throw_sql("42601", "a query needs at least one output column", -1);

  // GROUP BY items may name an output by ordinal or alias.
  auto resolve_group_item = [&](const ExprPtr& g) -> ExprPtr {
    if (g->kind == ExprKind::kConst && g->value.type == Type::kInt) {
      if (g->value.i < 1 || size_t(g->value.i) > items.size())
        throw_sql("42P10", fmt::format("GROUP BY position {} is not in select list", g->value.i), g->location);
      return items[size_t(g->value.i - 1)].first;
    }
    if (g->kind == ExprKind::kColumn && find_column(input, g->name) < 0) {
      for (const auto& [x, name] : items) {
        if (name == g->name) return x;
      }
    }
    return g;
  };

  Schema combined;
  std::vector<ExprPtr> agg_nodes;  // the bound aggregate calls, shared with ORDER BY
  if (has_agg) {
    AggRewriter rw{input, {}, &plan.aggs, nullptr};
    rw.agg_nodes = &agg_nodes;
    for (const auto& g : select.group_by) {
      ExprPtr item = resolve_group_item(g);
      if (contains_agg(*item)) throw_sql("42803", "aggregate functions are not allowed in GROUP BY", g->location);
      rw.group_exprs.push_back(bind_expr(item, input));
    }
    plan.group_exprs = rw.group_exprs;
    for (const auto& [x, name] : items) plan.outputs.push_back(rw.rewrite(x));
    if (select.having) {
      plan.having = rw.rewrite(select.having);
      require_bool(plan.having, "HAVING");
    }
    for (auto& g : plan.group_exprs) combined.push_back({expr_to_string(*g, &input), g->type});
    for (auto& a : plan.aggs) combined.push_back({"", a.type});
  } else {
    for (const auto& [x, name] : items) plan.outputs.push_back(bind_expr(x, input));
    combined = input;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    Type t = plan.outputs[i]->type;
    plan.output.push_back({items[i].second, t == Type::kNull ? Type::kText : t});
  }
  plan.group_output_column.assign(plan.group_exprs.size(), -1);
  for (size_t g = 0; g < plan.group_exprs.size(); ++g) {
    for (size_t i = 0; i < plan.outputs.size(); ++i) {
      const Expr& o = *plan.outputs[i];
      if (o.kind == ExprKind::kColumn && o.column == int(g)) {
        plan.group_output_column[g] = int(i);
        break;
      }
    }
  }
  if (for_view) {
    for (size_t i = 0; i < plan.output.size(); ++i) {
      if (plan.output[i].name == "?column?")
        throw_sql("42601", fmt::format("view column {} needs a name (use AS)", i + 1), select.items[0].location);
      for (size_t j = 0; j < i; ++j) {
        if (plan.output[i].name == plan.output[j].name)
          throw_sql("42701", fmt::format("column \"{}\" specified more than once", plan.output[i].name), -1);
      }
    }
    if (!select.order_by.empty() || select.limit || select.offset || select.distinct)
      throw_sql("0A000", "ORDER BY, LIMIT, OFFSET and DISTINCT are not supported in a view; use them when reading it",
                -1);
  }

  // ORDER BY: ordinal, output name, or an expression over the input.
  Schema sort_schema = plan.output;
  for (const auto& c : combined) sort_schema.push_back(c);
  // An expression over the input (or combined) row, re-pointed at that row's
  // place after the outputs in the sort row.
  std::function<void(Expr&)> shift = [&](Expr& e) {
    if (e.kind == ExprKind::kColumn) e.column += int(plan.output.size());
    for (auto& a : e.args) {
      a = std::make_shared<Expr>(*a);
      shift(*a);
    }
  };
  auto after_outputs = [&](const ExprPtr& bound) {
    auto copy = std::make_shared<Expr>(*bound);
    shift(*copy);
    return copy;
  };
  for (const auto& o : select.order_by) {
    SortKey key;
    key.desc = o.desc;
    key.nulls_first = o.nulls_first.value_or(o.desc);  // PostgreSQL: NULLs sort as larger than everything
    const ExprPtr& x = o.expr;
    auto ref = [&](int col) {
      auto r = std::make_shared<Expr>();
      r->kind = ExprKind::kColumn;
      r->column = col;
      r->type = sort_schema[size_t(col)].type;
      return r;
    };
    if (x->kind == ExprKind::kConst && x->value.type == Type::kInt) {
      if (x->value.i < 1 || size_t(x->value.i) > plan.output.size())
        throw_sql("42P10", fmt::format("ORDER BY position {} is not in select list", x->value.i), x->location);
      key.expr = ref(int(x->value.i - 1));
    } else if (x->kind == ExprKind::kColumn && find_column(plan.output, x->name) >= 0) {
      key.expr = ref(find_column(plan.output, x->name));
    } else if (has_agg) {
      AggRewriter rw{input, plan.group_exprs, &plan.aggs, nullptr};
      rw.agg_nodes = &agg_nodes;
      size_t before = plan.aggs.size();
      ExprPtr bound = rw.rewrite(x);
      if (plan.aggs.size() != before)
        throw_sql("0A000", "ORDER BY an aggregate that is not in the select list", x->location);
      // Shift combined-row columns past the outputs.
      key.expr = after_outputs(bound);
    } else {
      ExprPtr bound = bind_expr(x, input);
      key.expr = after_outputs(bound);
    }
    plan.order.push_back(key);
  }
  return plan;
}

}  // namespace evert::sql
