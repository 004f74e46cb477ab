#include "sql/parser.h"

#include <pg_query.h>

#include <fmt/format.h>
#include <simdjson.h>

namespace evert::sql {

void throw_sql(std::string code, std::string message, int position) {
  throw SqlException{SqlError{std::move(code), std::move(message), position}};
}

const char* op_name(Op op) {
  switch (op) {
    case Op::kAdd: return "+";
    case Op::kSub: return "-";
    case Op::kMul: return "*";
    case Op::kDiv: return "/";
    case Op::kMod: return "%";
    case Op::kEq: return "=";
    case Op::kNe: return "<>";
    case Op::kLt: return "<";
    case Op::kLe: return "<=";
    case Op::kGt: return ">";
    case Op::kGe: return ">=";
  }
  return "?";
}

const char* agg_name(AggKind agg) {
  switch (agg) {
    case AggKind::kCountStar: return "count(*)";
    case AggKind::kCount: return "count";
    case AggKind::kSum: return "sum";
    case AggKind::kMin: return "min";
    case AggKind::kMax: return "max";
    case AggKind::kAvg: return "avg";
    case AggKind::kCountDistinct: return "count(distinct)";
  }
  return "?";
}

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Field access on the parse tree; the tree omits fields holding defaults.
std::optional<element> field(element e, std::string_view name) {
  object o;
  if (e.get_object().get(o)) return std::nullopt;
  element out;
  if (o.at_key(name).get(out)) return std::nullopt;
  return out;
}

std::string str_field(element e, std::string_view name) {
  auto f = field(e, name);
  std::string_view s;
  if (!f || f->get_string().get(s)) return "";
  return std::string(s);
}

int64_t int_field(element e, std::string_view name, int64_t fallback = 0) {
  auto f = field(e, name);
  int64_t v;
  if (!f || f->get_int64().get(v)) return fallback;
  return v;
}

bool bool_field(element e, std::string_view name) {
  auto f = field(e, name);
  bool v;
  if (!f || f->get_bool().get(v)) return false;
  return v;
}

int location_of(element e) { return int(int_field(e, "location", -1)); }

std::vector<element> list_field(element e, std::string_view name) {
  std::vector<element> out;
  auto f = field(e, name);
  array a;
  if (!f || f->get_array().get(a)) return out;
  for (element x : a) out.push_back(x);
  return out;
}

// A node is {"TypeName": {...}}; returns the type name and the body.
std::pair<std::string, element> node(element e) {
  object o;
  if (e.get_object().get(o)) throw_sql("XX000", "malformed parse tree");
  for (auto [k, v] : o) return {std::string(k), v};
  throw_sql("XX000", "malformed parse tree: empty node");
}

std::string string_node(element e) {  // {"String": {"sval": ...}}
  auto [kind, body] = node(e);
  if (kind != "String") return "";
  return str_field(body, "sval");
}

[[noreturn]] void unsupported(const std::string& what, int location) {
  throw_sql("0A000", what + " is not supported", location);
}

Type type_from_name(element type_name_node) {
  std::vector<std::string> names;
  for (element n : list_field(type_name_node, "names")) names.push_back(string_node(n));
  int location = location_of(type_name_node);
  if (names.empty()) throw_sql("42704", "missing type name", location);
  if (!list_field(type_name_node, "arrayBounds").empty()) unsupported("array types", location);
  const std::string& n = names.back();
  if (n == "int8" || n == "int4" || n == "int2" || n == "int" || n == "integer" || n == "bigint" || n == "smallint")
    return Type::kInt;
  if (n == "float8" || n == "float4" || n == "numeric" || n == "real" || n == "double" || n == "decimal")
    return Type::kDouble;
  if (n == "text" || n == "varchar" || n == "bpchar" || n == "char" || n == "name") return Type::kText;
  if (n == "bool" || n == "boolean") return Type::kBool;
  if (n == "timestamp" || n == "timestamptz") return Type::kTimestamp;
  throw_sql("42704", fmt::format("type \"{}\" does not exist or is not supported", n), location);
}

ExprPtr make(ExprKind kind, int location) {
  auto e = std::make_shared<Expr>();
  e->kind = kind;
  e->location = location;
  return e;
}

// The request being parsed: libpg_query 15's JSON writes a negative
// integer constant as "ival": {} (as it writes 0), so those are re-read
// from the text at the constant's location.
thread_local const std::string* current_text = nullptr;

int64_t integer_at(int location) {
  if (!current_text || location < 0 || size_t(location) >= current_text->size()) return 0;
  const char* p = current_text->c_str() + location;
  bool negative = false;
  while (*p == '-' || *p == '+' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '(') {
    if (*p == '-') negative = !negative;
    ++p;
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(p, &end, 10);
  if (end == p || errno != 0) return 0;
  return negative ? int64_t(0 - v) : int64_t(v);
}

Value const_value(element body) {
  if (bool_field(body, "isnull")) return Value::null();
  if (auto f = field(body, "ival")) {
    if (auto inner = field(*f, "ival")) return Value::integer(int_field(*f, "ival", 0));
    return Value::integer(integer_at(location_of(body)));
  }
  if (auto f = field(body, "fval")) {
    std::string s = str_field(*f, "fval");
    if (s.find_first_of(".eE") == std::string::npos) {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(s.c_str(), &end, 10);
      if (errno == 0 && *end == '\0') return Value::integer(v);
    }
    return Value::real(std::strtod(s.c_str(), nullptr));
  }
  if (auto f = field(body, "sval")) return Value::text(str_field(*f, "sval"));
  if (auto f = field(body, "boolval")) return Value::boolean(bool_field(*f, "boolval"));
  if (auto f = field(body, "bsval")) unsupported("bit-string constants", location_of(body));
  return Value::null();
}

ExprPtr parse_expr(element e);

std::vector<ExprPtr> parse_list(element list_node) {  // {"List": {"items": [...]}}
  auto [kind, body] = node(list_node);
  std::vector<ExprPtr> out;
  if (kind != "List") {
    out.push_back(parse_expr(list_node));
    return out;
  }
  for (element item : list_field(body, "items")) out.push_back(parse_expr(item));
  return out;
}

ExprPtr parse_expr(element e) {
  auto [kind, body] = node(e);
  int location = location_of(body);
  if (kind == "ColumnRef") {
    auto fields = list_field(body, "fields");
    if (fields.empty()) throw_sql("42601", "empty column reference", location);
    auto [fk, fb] = node(fields.back());
    if (fk == "A_Star") {
      if (fields.size() > 1) unsupported("qualified *", location);
      auto star = make(ExprKind::kColumn, location);
      star->name = "*";
      return star;
    }
    if (fields.size() > 2) unsupported("qualified column names", location);
    auto col = make(ExprKind::kColumn, location);
    col->name = string_node(fields.back());
    return col;
  }
  if (kind == "A_Const") {
    auto c = make(ExprKind::kConst, location);
    c->value = const_value(body);
    c->type = c->value.type;
    return c;
  }
  if (kind == "TypeCast") {
    auto c = make(ExprKind::kCast, location);
    c->args.push_back(parse_expr(*field(body, "arg")));
    c->type = type_from_name(*field(body, "typeName"));
    return c;
  }
  if (kind == "BoolExpr") {
    std::string op = str_field(body, "boolop");
    ExprKind k = op == "AND_EXPR" ? ExprKind::kAnd : op == "OR_EXPR" ? ExprKind::kOr : ExprKind::kNot;
    auto b = make(k, location);
    for (element a : list_field(body, "args")) b->args.push_back(parse_expr(a));
    return b;
  }
  if (kind == "NullTest") {
    auto n = make(str_field(body, "nulltesttype") == "IS_NOT_NULL" ? ExprKind::kIsNotNull : ExprKind::kIsNull,
                  location);
    n->args.push_back(parse_expr(*field(body, "arg")));
    return n;
  }
  if (kind == "A_Expr") {
    std::string akind = str_field(body, "kind");
    std::vector<std::string> names;
    for (element n : list_field(body, "name")) names.push_back(string_node(n));
    std::string opname = names.empty() ? "" : names.back();
    auto lexpr = field(body, "lexpr");
    auto rexpr = field(body, "rexpr");
    if (akind == "AEXPR_IN") {
      auto in = make(ExprKind::kIn, location);
      in->negated = opname == "<>";
      in->args.push_back(parse_expr(*lexpr));
      for (auto& x : parse_list(*rexpr)) in->args.push_back(x);
      return in;
    }
    if (akind == "AEXPR_BETWEEN" || akind == "AEXPR_NOT_BETWEEN") {
      auto b = make(ExprKind::kBetween, location);
      b->negated = akind == "AEXPR_NOT_BETWEEN";
      b->args.push_back(parse_expr(*lexpr));
      for (auto& x : parse_list(*rexpr)) b->args.push_back(x);
      if (b->args.size() != 3) throw_sql("42601", "BETWEEN needs two bounds", location);
      return b;
    }
    if (akind != "AEXPR_OP") unsupported(fmt::format("the expression {}", akind), location);
    if (!lexpr) {
      if (opname == "-") {
        auto neg = make(ExprKind::kNeg, location);
        neg->args.push_back(parse_expr(*rexpr));
        return neg;
      }
      if (opname == "+") return parse_expr(*rexpr);
      unsupported(fmt::format("prefix operator {}", opname), location);
    }
    static const std::map<std::string, std::pair<ExprKind, Op>> kOps = {
        {"+", {ExprKind::kArith, Op::kAdd}},    {"-", {ExprKind::kArith, Op::kSub}},
        {"*", {ExprKind::kArith, Op::kMul}},    {"/", {ExprKind::kArith, Op::kDiv}},
        {"%", {ExprKind::kArith, Op::kMod}},    {"=", {ExprKind::kCompare, Op::kEq}},
        {"<>", {ExprKind::kCompare, Op::kNe}},  {"!=", {ExprKind::kCompare, Op::kNe}},
        {"<", {ExprKind::kCompare, Op::kLt}},   {"<=", {ExprKind::kCompare, Op::kLe}},
        {">", {ExprKind::kCompare, Op::kGt}},   {">=", {ExprKind::kCompare, Op::kGe}},
    };
    auto it = kOps.find(opname);
    if (it == kOps.end()) throw_sql("42883", fmt::format("operator does not exist: {}", opname), location);
    auto x = make(it->second.first, location);
    x->op = it->second.second;
    x->args.push_back(parse_expr(*lexpr));
    x->args.push_back(parse_expr(*rexpr));
    return x;
  }
  if (kind == "FuncCall") {
    std::vector<std::string> names;
    for (element n : list_field(body, "funcname")) names.push_back(string_node(n));
    std::string fn = names.empty() ? "" : names.back();
    auto args = list_field(body, "args");
    if (field(body, "over")) unsupported("window functions", location);
    if (!list_field(body, "agg_order").empty()) unsupported("ordered aggregates", location);
    if (field(body, "agg_filter")) unsupported("FILTER clauses", location);
    auto agg = make(ExprKind::kAgg, location);
    bool distinct = bool_field(body, "agg_distinct");
    if (fn == "count" && bool_field(body, "agg_star")) {
      agg->agg = AggKind::kCountStar;
      return agg;
    }
    static const std::map<std::string, AggKind> kAggs = {{"count", AggKind::kCount}, {"sum", AggKind::kSum},
                                                         {"min", AggKind::kMin},     {"max", AggKind::kMax},
                                                         {"avg", AggKind::kAvg}};
    auto it = kAggs.find(fn);
    if (it == kAggs.end()) throw_sql("42883", fmt::format("function {}() does not exist", fn), location);
    if (args.size() != 1) throw_sql("42883", fmt::format("function {} takes one argument", fn), location);
    agg->agg = it->second;
    if (distinct) {
      if (agg->agg == AggKind::kCount) {
        agg->agg = AggKind::kCountDistinct;
      } else if (agg->agg != AggKind::kMin && agg->agg != AggKind::kMax) {
        unsupported(fmt::format("{}(DISTINCT ...)", fn), location);
      }
    }
    agg->args.push_back(parse_expr(args[0]));
    return agg;
  }
  if (kind == "SubLink") unsupported("subqueries", location);
  if (kind == "CaseExpr") unsupported("CASE", location);
  if (kind == "ParamRef") unsupported("parameters", location);
  unsupported(fmt::format("the expression {}", kind), location);
}

int64_t const_int(element e, const char* what) {
  ExprPtr x = parse_expr(e);
  if (x->kind != ExprKind::kConst || x->value.type != Type::kInt || x->value.i < 0)
    throw_sql("42601", fmt::format("{} must be a non-negative integer constant", what), x->location);
  return x->value.i;
}

Select parse_select(element body) {
  Select s;
  if (str_field(body, "op") != "SETOP_NONE" && !str_field(body, "op").empty())
    unsupported("UNION/INTERSECT/EXCEPT", -1);
  if (field(body, "withClause")) unsupported("WITH queries", -1);
  if (!list_field(body, "valuesLists").empty()) unsupported("VALUES as a query", -1);
  if (!list_field(body, "distinctClause").empty()) s.distinct = true;
  for (element t : list_field(body, "targetList")) {
    auto [kind, rt] = node(t);
    SelectItem item;
    item.alias = str_field(rt, "name");
    item.location = location_of(rt);
    ExprPtr x = parse_expr(*field(rt, "val"));
    if (x->kind == ExprKind::kColumn && x->name == "*") {
      item.expr = nullptr;
    } else {
      item.expr = x;
    }
    s.items.push_back(std::move(item));
  }
  auto from = list_field(body, "fromClause");
  if (from.size() > 1) unsupported("joins", -1);
  if (from.size() == 1) {
    auto [kind, rv] = node(from[0]);
    if (kind != "RangeVar") unsupported(kind == "JoinExpr" ? "joins" : "this FROM item", location_of(rv));
    s.from = str_field(rv, "relname");
    s.from_location = location_of(rv);
    std::string schema = str_field(rv, "schemaname");
    if (!schema.empty() && schema != "public") unsupported("schemas", s.from_location);
    if (field(rv, "alias")) {
      // An alias is harmless for a single table; qualified column names are rejected elsewhere.
    }
  }
  if (auto w = field(body, "whereClause")) s.where = parse_expr(*w);
  for (element g : list_field(body, "groupClause")) s.group_by.push_back(parse_expr(g));
  if (auto h = field(body, "havingClause")) s.having = parse_expr(*h);
  for (element o : list_field(body, "sortClause")) {
    auto [kind, sb] = node(o);
    OrderItem item;
    item.expr = parse_expr(*field(sb, "node"));
    item.desc = str_field(sb, "sortby_dir") == "SORTBY_DESC";
    std::string nulls = str_field(sb, "sortby_nulls");
    if (nulls == "SORTBY_NULLS_FIRST") item.nulls_first = true;
    if (nulls == "SORTBY_NULLS_LAST") item.nulls_first = false;
    s.order_by.push_back(std::move(item));
  }
  if (auto l = field(body, "limitCount")) {
    auto [lk, lb] = node(*l);
    if (!(lk == "A_Const" && bool_field(lb, "isnull"))) s.limit = const_int(*l, "LIMIT");
  }
  if (auto o = field(body, "limitOffset")) s.offset = const_int(*o, "OFFSET");
  return s;
}

std::map<std::string, Value> parse_options(const std::vector<element>& defs) {
  std::map<std::string, Value> out;
  for (element d : defs) {
    auto [kind, def] = node(d);
    std::string name = str_field(def, "defname");
    Value v = Value::boolean(true);
    if (auto arg = field(def, "arg")) {
      auto [ak, ab] = node(*arg);
      if (ak == "String") {
        v = Value::text(str_field(ab, "sval"));
      } else if (ak == "Integer") {
        v = Value::integer(int_field(ab, "ival", 0));
      } else if (ak == "Float") {
        v = Value::real(std::strtod(str_field(ab, "fval").c_str(), nullptr));
      } else if (ak == "Boolean") {
        v = Value::boolean(bool_field(ab, "boolval"));
      } else if (ak == "TypeName") {
        std::vector<std::string> names;
        for (element n : list_field(ab, "names")) names.push_back(string_node(n));
        v = Value::text(names.empty() ? "" : names.back());
      } else {
        throw_sql("42601", fmt::format("bad value for option \"{}\"", name), location_of(def));
      }
    }
    out[name] = v;
  }
  return out;
}

StatementBody parse_statement(element stmt, std::string_view text, int offset);

std::string relname(element body, const char* key, int* location = nullptr) {
  auto rel = field(body, key);
  if (!rel) return "";
  if (location) *location = location_of(*rel);
  if (!str_field(*rel, "schemaname").empty() && str_field(*rel, "schemaname") != "public")
    unsupported("schemas", location_of(*rel));
  return str_field(*rel, "relname");
}

StatementBody parse_statement(element stmt, std::string_view text, int offset) {
  auto [kind, body] = node(stmt);
  if (kind == "SelectStmt") {
    if (field(body, "intoClause")) unsupported("SELECT INTO", -1);
    return parse_select(body);
  }
  if (kind == "CreateStmt") {
    CreateTable ct;
    ct.name = relname(body, "relation");
    ct.if_not_exists = bool_field(body, "if_not_exists");
    for (element e : list_field(body, "tableElts")) {
      auto [ek, eb] = node(e);
      if (ek != "ColumnDef") unsupported("table constraints", location_of(eb));
      ColumnDef c;
      c.name = str_field(eb, "colname");
      c.location = location_of(eb);
      c.type = type_from_name(*field(eb, "typeName"));
      for (element con : list_field(eb, "constraints")) {
        auto [ck, cb] = node(con);
        std::string ct_kind = str_field(cb, "contype");
        if (ct_kind == "CONSTR_NOTNULL") {
          c.not_null = true;
        } else if (ct_kind != "CONSTR_NULL") {
          unsupported("column constraints other than NOT NULL", location_of(cb));
        }
      }
      ct.columns.push_back(std::move(c));
    }
    ct.options = parse_options(list_field(body, "options"));
    if (field(body, "partspec") || !list_field(body, "inhRelations").empty())
      unsupported("partitioned or inherited tables", -1);
    return ct;
  }
  if (kind == "InsertStmt") {
    Insert ins;
    ins.table = relname(body, "relation", &ins.table_location);
    for (element c : list_field(body, "cols")) {
      auto [ck, cb] = node(c);
      ins.columns.push_back(str_field(cb, "name"));
    }
    if (field(body, "onConflictClause")) unsupported("ON CONFLICT", -1);
    if (!list_field(body, "returningList").empty()) unsupported("RETURNING", -1);
    auto sel = field(body, "selectStmt");
    if (!sel) unsupported("INSERT ... DEFAULT VALUES", ins.table_location);
    auto [sk, sb] = node(*sel);
    auto values = list_field(sb, "valuesLists");
    if (values.empty()) unsupported("INSERT ... SELECT", ins.table_location);
    for (element row : values) ins.rows.push_back(parse_list(row));
    return ins;
  }
  if (kind == "UpdateStmt") {
    Update up;
    up.table = relname(body, "relation", &up.table_location);
    for (element t : list_field(body, "targetList")) {
      auto [tk, tb] = node(t);
      up.sets.emplace_back(str_field(tb, "name"), parse_expr(*field(tb, "val")));
    }
    if (auto w = field(body, "whereClause")) up.where = parse_expr(*w);
    if (!list_field(body, "fromClause").empty()) unsupported("UPDATE ... FROM", -1);
    return up;
  }
  if (kind == "DeleteStmt") {
    Delete del;
    del.table = relname(body, "relation", &del.table_location);
    if (auto w = field(body, "whereClause")) del.where = parse_expr(*w);
    if (!list_field(body, "usingClause").empty()) unsupported("DELETE ... USING", -1);
    return del;
  }
  if (kind == "CreateTableAsStmt" || kind == "ViewStmt") {
    CreateView cv;
    element query;
    if (kind == "CreateTableAsStmt") {
      if (str_field(body, "objtype") != "OBJECT_MATVIEW") unsupported("CREATE TABLE AS", -1);
      auto into = *field(body, "into");
      cv.name = relname(into, "rel");
      cv.options = parse_options(list_field(into, "options"));
      cv.if_not_exists = bool_field(body, "if_not_exists");
      query = *field(body, "query");
    } else {
      cv.name = relname(body, "view");
      cv.options = parse_options(list_field(body, "options"));
      query = *field(body, "query");
    }
    auto [qk, qb] = node(query);
    if (qk != "SelectStmt") unsupported("this view query", -1);
    cv.query = parse_select(qb);
    // The query text: from the first SELECT keyword after AS.
    std::string lower(text);
    for (char& ch : lower) ch = char(std::tolower(uint8_t(ch)));
    size_t as = lower.find(" as ");
    size_t sel = lower.find("select", as == std::string::npos ? 0 : as);
    cv.query_text = sel == std::string::npos ? std::string(text) : std::string(text.substr(sel));
    return cv;
  }
  if (kind == "IndexStmt") {
    CreateIndex ci;
    ci.name = str_field(body, "idxname");
    ci.table = relname(body, "relation", &ci.table_location);
    ci.if_not_exists = bool_field(body, "if_not_exists");
    auto params = list_field(body, "indexParams");
    if (params.size() != 1) unsupported("multi-column indexes", ci.table_location);
    auto [pk, pb] = node(params[0]);
    ci.column = str_field(pb, "name");
    if (ci.column.empty()) unsupported("expression indexes", ci.table_location);
    if (field(body, "whereClause")) unsupported("partial indexes", ci.table_location);
    if (bool_field(body, "unique")) unsupported("unique indexes", ci.table_location);
    if (ci.name.empty()) ci.name = ci.table + "_" + ci.column + "_idx";
    return ci;
  }
  if (kind == "DropStmt") {
    Drop d;
    std::string type = str_field(body, "removeType");
    if (type == "OBJECT_TABLE") {
      d.kind = ObjectKind::kTable;
    } else if (type == "OBJECT_MATVIEW" || type == "OBJECT_VIEW") {
      d.kind = ObjectKind::kView;
    } else if (type == "OBJECT_INDEX") {
      d.kind = ObjectKind::kIndex;
    } else {
      unsupported(fmt::format("DROP of {}", type), -1);
    }
    d.if_exists = bool_field(body, "missing_ok");
    d.cascade = str_field(body, "behavior") == "DROP_CASCADE";
    for (element o : list_field(body, "objects")) {
      auto [ok, ob] = node(o);
      auto items = list_field(ob, "items");
      if (items.empty()) continue;
      d.names.push_back(string_node(items.back()));
    }
    return d;
  }
  if (kind == "VariableShowStmt") {
    Show s;
    s.what = str_field(body, "name");
    if (s.what != "tables" && s.what != "views" && s.what != "indexes" && s.what != "materialized")
      unsupported(fmt::format("SHOW {}", s.what), -1);
    if (s.what == "materialized") s.what = "views";
    return s;
  }
  if (kind == "RefreshMatViewStmt") {
    Refresh r;
    r.name = relname(body, "relation");
    return r;
  }
  if (kind == "ExplainStmt") {
    auto ex = std::make_shared<Explain>();
    ex->inner.body = parse_statement(*field(body, "query"), text, offset);
    ex->inner.text = std::string(text);
    ex->inner.offset = offset;
    if (!std::holds_alternative<Select>(ex->inner.body) && !std::holds_alternative<CreateView>(ex->inner.body))
      unsupported("EXPLAIN of this statement", -1);
    return ex;
  }
  std::string name = kind;
  if (name.size() > 4 && name.substr(name.size() - 4) == "Stmt") name = name.substr(0, name.size() - 4);
  unsupported(fmt::format("the statement {}", name), -1);
}

}  // namespace

std::string command_tag(const Statement& statement) {
  return std::visit(
      [](const auto& s) -> std::string {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, Select>) return "SELECT";
        if constexpr (std::is_same_v<T, CreateTable>) return "CREATE TABLE";
        if constexpr (std::is_same_v<T, Insert>) return "INSERT";
        if constexpr (std::is_same_v<T, Update>) return "UPDATE";
        if constexpr (std::is_same_v<T, Delete>) return "DELETE";
        if constexpr (std::is_same_v<T, CreateView>) return "CREATE MATERIALIZED VIEW";
        if constexpr (std::is_same_v<T, CreateIndex>) return "CREATE INDEX";
        if constexpr (std::is_same_v<T, Drop>) {
          return s.kind == ObjectKind::kTable ? "DROP TABLE"
                 : s.kind == ObjectKind::kView ? "DROP MATERIALIZED VIEW"
                                               : "DROP INDEX";
        }
        if constexpr (std::is_same_v<T, Show>) return "SHOW";
        if constexpr (std::is_same_v<T, Refresh>) return "REFRESH MATERIALIZED VIEW";
        if constexpr (std::is_same_v<T, std::shared_ptr<Explain>>) return "EXPLAIN";
        return "?";
      },
      statement.body);
}

SqlResult<std::vector<Statement>> parse(std::string_view sql) {
  std::string text(sql);
  PgQueryParseResult r = pg_query_parse(text.c_str());
  struct Free {
    PgQueryParseResult* r;
    ~Free() { pg_query_free_parse_result(*r); }
  } free_result{&r};
  if (r.error) {
    // cursorpos counts characters from 1; positions here are byte offsets.
    int position = -1;
    if (r.error->cursorpos > 0) {
      int chars = 0;
      size_t i = 0;
      for (; i < text.size(); ++i) {
        if ((uint8_t(text[i]) & 0xC0) != 0x80 && ++chars == r.error->cursorpos) break;
      }
      position = int(i);
    }
    return SqlError{"42601", r.error->message, position};
  }
  simdjson::dom::parser json;
  element root;
  if (json.parse(r.parse_tree, std::strlen(r.parse_tree)).get(root)) {
    return SqlError{"XX000", "could not read the parse tree", -1};
  }
  std::vector<Statement> out;
  current_text = &text;
  struct Reset {
    ~Reset() { current_text = nullptr; }
  } reset;
  try {
    for (element raw : list_field(root, "stmts")) {
      int loc = int(int_field(raw, "stmt_location", 0));
      int len = int(int_field(raw, "stmt_len", 0));
      if (len == 0) len = int(text.size()) - loc;
      Statement st;
      st.offset = loc;
      st.text = text.substr(size_t(loc), size_t(len));
      // Trim leading whitespace so texts start at their keyword.
      size_t start = st.text.find_first_not_of(" \t\r\n");
      if (start != std::string::npos && start > 0) {
        st.text = st.text.substr(start);
        st.offset += int(start);
      }
      auto s = field(raw, "stmt");
      if (!s) continue;
      st.body = parse_statement(*s, st.text, st.offset);
      out.push_back(std::move(st));
    }
  } catch (const SqlException& e) {
    return e.error;
  }
  return out;
}

}  // namespace evert::sql
