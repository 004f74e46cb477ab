#include "sql/parser.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sql/plan.h"

namespace evert::sql {
namespace {

std::vector<Statement> parse_ok(std::string_view sql) {
  auto r = parse(sql);
  if (!r.ok()) {
    ADD_FAILURE() << "parse(\"" << sql << "\"): " << r.error().code << " " << r.error().message << " at "
                  << r.error().position;
    return {};
  }
  return r.value();
}

// The single statement of `sql`, which must be a T.
template <typename T>
T parse_one(std::string_view sql) {
  auto statements = parse_ok(sql);
  if (statements.size() != 1) {
    ADD_FAILURE() << "expected one statement in \"" << sql << "\", got " << statements.size();
    return T{};
  }
  const T* body = std::get_if<T>(&statements[0].body);
  if (!body) {
    ADD_FAILURE() << "\"" << sql << "\" parsed to " << command_tag(statements[0]);
    return T{};
  }
  return *body;
}

SqlError parse_error(std::string_view sql) {
  auto r = parse(sql);
  if (r.ok()) {
    ADD_FAILURE() << "parse(\"" << sql << "\") succeeded";
    return SqlError{"", "", -2};
  }
  return r.error();
}

std::string show(const ExprPtr& e) { return e ? expr_to_string(*e, nullptr) : "<null>"; }

int pos_of(std::string_view sql, std::string_view needle) { return int(sql.find(needle)); }

TEST(ParserTest, CreateTableWithColumnsTypesAndOptions) {
  auto ct = parse_one<CreateTable>(
      "CREATE TABLE orders (id bigint NOT NULL, customer varchar(20), qty int, small smallint, "
      "price double precision, r real, n numeric(10,2), ok boolean, ts timestamp, tz timestamptz) "
      "WITH (topic = 'orders_topic', partitions = 6, key = 'id', envelope = 'upsert', flag)");
  EXPECT_EQ(ct.name, "orders");
  EXPECT_FALSE(ct.if_not_exists);
  ASSERT_EQ(ct.columns.size(), 10u);
  std::vector<std::pair<std::string, Type>> want = {
      {"id", Type::kInt},       {"customer", Type::kText}, {"qty", Type::kInt},     {"small", Type::kInt},
      {"price", Type::kDouble}, {"r", Type::kDouble},      {"n", Type::kDouble},    {"ok", Type::kBool},
      {"ts", Type::kTimestamp}, {"tz", Type::kTimestamp}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(ct.columns[i].name, want[i].first) << i;
    EXPECT_EQ(ct.columns[i].type, want[i].second) << i;
  }
  EXPECT_TRUE(ct.columns[0].not_null);
  EXPECT_FALSE(ct.columns[1].not_null);
  EXPECT_EQ(ct.columns[0].location, 21);
  ASSERT_EQ(ct.options.size(), 5u);
  EXPECT_EQ(ct.options["topic"].type, Type::kText);
  EXPECT_EQ(ct.options["topic"].s, "orders_topic");
  EXPECT_EQ(ct.options["partitions"].type, Type::kInt);
  EXPECT_EQ(ct.options["partitions"].i, 6);
  EXPECT_EQ(ct.options["key"].s, "id");
  EXPECT_EQ(ct.options["envelope"].s, "upsert");
  EXPECT_EQ(ct.options["flag"].type, Type::kBool);  // an option without a value is true
  EXPECT_EQ(ct.options["flag"].i, 1);

  auto again = parse_one<CreateTable>("create table if not exists T2 (\"Mixed\" text)");
  EXPECT_TRUE(again.if_not_exists);
  EXPECT_EQ(again.name, "t2");  // unquoted names fold to lower case
  ASSERT_EQ(again.columns.size(), 1u);
  EXPECT_EQ(again.columns[0].name, "Mixed");
  EXPECT_TRUE(again.options.empty());
}

TEST(ParserTest, CreateTableRejectsWhatItCannotStore) {
  auto check = [](const char* sql, const char* code) {
    SqlError e = parse_error(sql);
    EXPECT_EQ(e.code, code) << sql << ": " << e.message;
  };
  check("CREATE TABLE t (a int PRIMARY KEY)", "0A000");
  check("CREATE TABLE t (a int, UNIQUE (a))", "0A000");
  check("CREATE TABLE t (a int[])", "0A000");
  check("CREATE TABLE t (a uuid)", "42704");
  check("CREATE TABLE t (a int) PARTITION BY RANGE (a)", "0A000");
  check("CREATE TABLE s.t (a int)", "0A000");
  check("CREATE TABLE t AS SELECT 1", "0A000");
  SqlError e = parse_error("CREATE TABLE t (a int, b uuid)");
  EXPECT_EQ(e.position, pos_of("CREATE TABLE t (a int, b uuid)", "uuid"));
}

TEST(ParserTest, InsertWithSeveralRows) {
  const char* sql = "INSERT INTO orders (id, customer, price) VALUES (1, 'alice', 2.5), (-2, NULL, -0.5), (3, 'b''c', 1e3)";
  auto ins = parse_one<Insert>(sql);
  EXPECT_EQ(ins.table, "orders");
  EXPECT_EQ(ins.table_location, 12);
  EXPECT_EQ(ins.columns, (std::vector<std::string>{"id", "customer", "price"}));
  ASSERT_EQ(ins.rows.size(), 3u);
  for (const auto& row : ins.rows) ASSERT_EQ(row.size(), 3u);
  EXPECT_EQ(ins.rows[0][0]->kind, ExprKind::kConst);
  EXPECT_EQ(ins.rows[0][0]->value.type, Type::kInt);
  EXPECT_EQ(ins.rows[0][0]->value.i, 1);
  EXPECT_EQ(ins.rows[0][1]->value.s, "alice");
  EXPECT_EQ(ins.rows[0][2]->value.type, Type::kDouble);
  EXPECT_EQ(ins.rows[0][2]->value.d, 2.5);
  EXPECT_EQ(ins.rows[1][0]->value.type, Type::kInt);
  EXPECT_EQ(ins.rows[1][0]->value.i, -2);
  EXPECT_TRUE(ins.rows[1][1]->value.is_null());
  EXPECT_EQ(ins.rows[1][2]->value.d, -0.5);
  EXPECT_EQ(ins.rows[2][1]->value.s, "b'c");
  EXPECT_EQ(ins.rows[2][2]->value.type, Type::kDouble);
  EXPECT_EQ(ins.rows[2][2]->value.d, 1000.0);

  auto all = parse_one<Insert>("INSERT INTO t VALUES (true, 'x'::text)");
  EXPECT_TRUE(all.columns.empty());
  ASSERT_EQ(all.rows.size(), 1u);
  EXPECT_EQ(all.rows[0][0]->value.type, Type::kBool);
  EXPECT_EQ(all.rows[0][1]->kind, ExprKind::kCast);

  EXPECT_EQ(parse_error("INSERT INTO t SELECT 1").code, "0A000");
  EXPECT_EQ(parse_error("INSERT INTO t DEFAULT VALUES").code, "0A000");
  EXPECT_EQ(parse_error("INSERT INTO t VALUES (1) RETURNING *").code, "0A000");
  EXPECT_EQ(parse_error("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING").code, "0A000");
}

TEST(ParserTest, UpdateAndDelete) {
  auto up = parse_one<Update>("UPDATE orders SET qty = qty + 1, customer = 'bob' WHERE id = 7");
  EXPECT_EQ(up.table, "orders");
  EXPECT_EQ(up.table_location, 7);
  ASSERT_EQ(up.sets.size(), 2u);
  EXPECT_EQ(up.sets[0].first, "qty");
  EXPECT_EQ(show(up.sets[0].second), "(qty + 1)");
  EXPECT_EQ(up.sets[1].first, "customer");
  EXPECT_EQ(show(up.sets[1].second), "'bob'");
  EXPECT_EQ(show(up.where), "(id = 7)");

  auto all = parse_one<Update>("UPDATE t SET a = NULL");
  EXPECT_EQ(all.where, nullptr);
  EXPECT_EQ(parse_error("UPDATE t SET a = 1 FROM u").code, "0A000");

  auto del = parse_one<Delete>("DELETE FROM orders WHERE id IN (1, 2) AND NOT done");
  EXPECT_EQ(del.table, "orders");
  EXPECT_EQ(del.table_location, 12);
  EXPECT_EQ(show(del.where), "(id IN (1, 2) AND NOT done)");
  auto every = parse_one<Delete>("DELETE FROM orders");
  EXPECT_EQ(every.where, nullptr);
  EXPECT_EQ(parse_error("DELETE FROM t USING u").code, "0A000");
}

TEST(ParserTest, CreateMaterializedViewWithGroupByAggregatesAndHaving) {
  const char* sql =
      "CREATE MATERIALIZED VIEW IF NOT EXISTS by_customer WITH (on_error = 'stop') AS "
      "SELECT customer, count(*) AS n, sum(qty), min(price), max(price), avg(price), count(qty), "
      "count(DISTINCT product) AS products, min(DISTINCT qty) "
      "FROM orders WHERE qty > 0 GROUP BY customer HAVING count(*) > 1";
  auto cv = parse_one<CreateView>(sql);
  EXPECT_EQ(cv.name, "by_customer");
  EXPECT_TRUE(cv.if_not_exists);
  ASSERT_EQ(cv.options.size(), 1u);
  EXPECT_EQ(cv.options["on_error"].s, "stop");
  EXPECT_EQ(cv.query_text, std::string(sql).substr(pos_of(sql, "SELECT")));
  const Select& q = cv.query;
  EXPECT_EQ(q.from, "orders");
  EXPECT_EQ(q.from_location, pos_of(sql, "orders WHERE"));
  ASSERT_EQ(q.items.size(), 9u);
  EXPECT_EQ(show(q.items[0].expr), "customer");
  EXPECT_EQ(q.items[0].alias, "");
  EXPECT_EQ(q.items[1].alias, "n");
  std::vector<AggKind> kinds = {AggKind::kCountStar, AggKind::kSum, AggKind::kMin,           AggKind::kMax,
                                AggKind::kAvg,       AggKind::kCount, AggKind::kCountDistinct, AggKind::kMin};
  for (size_t i = 0; i < kinds.size(); ++i) {
    ASSERT_EQ(q.items[i + 1].expr->kind, ExprKind::kAgg) << i;
    EXPECT_EQ(q.items[i + 1].expr->agg, kinds[i]) << i;
  }
  EXPECT_EQ(show(q.items[7].expr), "count(DISTINCT product)");
  EXPECT_EQ(q.items[7].alias, "products");
  EXPECT_EQ(show(q.where), "(qty > 0)");
  ASSERT_EQ(q.group_by.size(), 1u);
  EXPECT_EQ(show(q.group_by[0]), "customer");
  EXPECT_EQ(show(q.having), "(count(*) > 1)");

  // CREATE VIEW is accepted as a materialized view too.
  auto plain = parse_one<CreateView>("CREATE VIEW v AS SELECT a FROM t");
  EXPECT_EQ(plain.name, "v");
  EXPECT_EQ(plain.query_text, "SELECT a FROM t");
  EXPECT_EQ(plain.query.from, "t");
}

// BUG (disabled): query_text is found by searching the lower-cased text
// for " as " and then "select"; with AS on its own line the first search
// fails and the second finds "select" inside the view name, so query_text
// starts in the middle of the name ("selections\nAS SELECT k FROM t").
// (query_text is not used by the engine today.)
TEST(ParserTest, DISABLED_ViewQueryTextWithNewlineBeforeAs) {
  auto cv = parse_one<CreateView>("CREATE MATERIALIZED VIEW selections\nAS\nSELECT k FROM t");
  EXPECT_EQ(cv.query_text, "SELECT k FROM t");
}

TEST(ParserTest, SelectClauses) {
  const char* sql =
      "SELECT DISTINCT a, b + 1 AS c, * FROM t WHERE a BETWEEN 1 AND 3 AND b NOT IN (4, 5) AND c IS NOT NULL "
      "ORDER BY 2 DESC NULLS LAST, a, b ASC NULLS FIRST LIMIT 10 OFFSET 5";
  auto s = parse_one<Select>(sql);
  EXPECT_TRUE(s.distinct);
  ASSERT_EQ(s.items.size(), 3u);
  EXPECT_EQ(show(s.items[0].expr), "a");
  EXPECT_EQ(s.items[0].location, 16);
  EXPECT_EQ(show(s.items[1].expr), "(b + 1)");
  EXPECT_EQ(s.items[1].alias, "c");
  EXPECT_EQ(s.items[2].expr, nullptr);  // `*`
  EXPECT_EQ(s.from, "t");
  EXPECT_EQ(show(s.where), "(a BETWEEN 1 AND 3 AND b NOT IN (4, 5) AND c IS NOT NULL)");
  ASSERT_EQ(s.order_by.size(), 3u);
  EXPECT_EQ(show(s.order_by[0].expr), "2");
  EXPECT_TRUE(s.order_by[0].desc);
  EXPECT_EQ(s.order_by[0].nulls_first, std::optional<bool>(false));
  EXPECT_FALSE(s.order_by[1].desc);
  EXPECT_EQ(s.order_by[1].nulls_first, std::nullopt);
  EXPECT_EQ(s.order_by[2].nulls_first, std::optional<bool>(true));
  EXPECT_EQ(s.limit, std::optional<int64_t>(10));
  EXPECT_EQ(s.offset, std::optional<int64_t>(5));

  auto no_from = parse_one<Select>("SELECT 1");
  EXPECT_EQ(no_from.from, "");
  EXPECT_EQ(no_from.limit, std::nullopt);
  EXPECT_EQ(parse_one<Select>("SELECT a FROM t LIMIT ALL").limit, std::nullopt);
  auto qualified = parse_one<Select>("SELECT t.a FROM t");
  EXPECT_EQ(show(qualified.items[0].expr), "a");
  EXPECT_EQ(parse_one<Select>("SELECT \"A b\" FROM t").items[0].expr->name, "A b");

  EXPECT_EQ(parse_error("SELECT a FROM t LIMIT -1").code, "42601");
  EXPECT_EQ(parse_error("SELECT a FROM t LIMIT a").code, "42601");
  EXPECT_EQ(parse_error("SELECT a FROM t OFFSET 1.5").code, "42601");
}

TEST(ParserTest, ExpressionsAndCasts) {
  auto s = parse_one<Select>(
      "SELECT -x, NOT a OR b, a % 3, x::bigint, CAST(x AS text), '5'::int, y IS NULL, a <> b, a != b, "
      "+x, true, false, NULL, 1.5, 'it''s'");
  ASSERT_EQ(s.items.size(), 15u);
  EXPECT_EQ(s.items[0].expr->kind, ExprKind::kNeg);
  EXPECT_EQ(show(s.items[1].expr), "(NOT a OR b)");
  EXPECT_EQ(show(s.items[2].expr), "(a % 3)");
  EXPECT_EQ(s.items[3].expr->kind, ExprKind::kCast);
  EXPECT_EQ(s.items[3].expr->type, Type::kInt);
  EXPECT_EQ(s.items[4].expr->type, Type::kText);
  EXPECT_EQ(s.items[5].expr->kind, ExprKind::kCast);  // folded when bound, not when parsed
  EXPECT_EQ(s.items[6].expr->kind, ExprKind::kIsNull);
  EXPECT_EQ(s.items[7].expr->op, Op::kNe);
  EXPECT_EQ(s.items[8].expr->op, Op::kNe);
  EXPECT_EQ(show(s.items[9].expr), "x");  // unary plus disappears
  EXPECT_EQ(s.items[10].expr->value.type, Type::kBool);
  EXPECT_EQ(s.items[10].expr->value.i, 1);
  EXPECT_EQ(s.items[11].expr->value.i, 0);
  EXPECT_TRUE(s.items[12].expr->value.is_null());
  EXPECT_EQ(s.items[13].expr->value.type, Type::kDouble);
  EXPECT_EQ(s.items[14].expr->value.s, "it's");

  EXPECT_EQ(parse_error("SELECT a || b FROM t").code, "42883");
  EXPECT_EQ(parse_error("SELECT foo(a) FROM t").code, "42883");
  EXPECT_EQ(parse_error("SELECT count(a, b) FROM t").code, "42883");
  EXPECT_EQ(parse_error("SELECT sum(DISTINCT a) FROM t").code, "0A000");
  EXPECT_EQ(parse_error("SELECT count(*) FILTER (WHERE a > 1) FROM t").code, "0A000");
  EXPECT_EQ(parse_error("SELECT CASE WHEN a THEN 1 END FROM t").code, "0A000");
  EXPECT_EQ(parse_error("SELECT $1").code, "0A000");
  EXPECT_EQ(parse_error("SELECT a.b.c FROM t").code, "0A000");
  EXPECT_EQ(parse_error("SELECT x'1F'").code, "0A000");
}

// libpg_query 15 writes a negative (and zero) Integer constant as
// "ival": {}; the parser re-reads those from the text.
TEST(ParserTest, NegativeAndZeroIntegerLiterals) {
  const char* sql =
      "SELECT -3, - 3, -(7), 0, -0, 5, -2147483648, 2147483647, 3000000000, -9223372036854775808, "
      "9223372036854775807, - - 4, -(-6), -\n  8, 1 - -2";
  auto s = parse_one<Select>(sql);
  std::vector<int64_t> want = {-3, -3, -7, 0, 0, 5, INT32_MIN, INT32_MAX, 3000000000LL, INT64_MIN, INT64_MAX, 4, 6,
                               -8};
  ASSERT_EQ(s.items.size(), want.size() + 1);
  for (size_t i = 0; i < want.size(); ++i) {
    const Expr& e = *s.items[i].expr;
    ASSERT_EQ(e.kind, ExprKind::kConst) << i << ": " << show(s.items[i].expr);
    EXPECT_EQ(e.value.type, Type::kInt) << i;
    EXPECT_EQ(e.value.i, want[i]) << i;
  }
  // 1 - -2: a subtraction whose right side is the constant -2.
  const Expr& sub = *s.items.back().expr;
  ASSERT_EQ(sub.kind, ExprKind::kArith);
  EXPECT_EQ(sub.op, Op::kSub);
  EXPECT_EQ(sub.args[1]->value.i, -2);

  // Also where the constant is not first in the text: in VALUES and WHERE.
  auto ins = parse_one<Insert>("INSERT INTO t VALUES (-1, -42), (0, -(100))");
  ASSERT_EQ(ins.rows.size(), 2u);
  EXPECT_EQ(ins.rows[0][0]->value.i, -1);
  EXPECT_EQ(ins.rows[0][1]->value.i, -42);
  EXPECT_EQ(ins.rows[1][0]->value.i, 0);
  EXPECT_EQ(ins.rows[1][1]->value.i, -100);
  auto del = parse_one<Delete>("DELETE FROM t WHERE k = -5 OR k IN (-6, -7)");
  EXPECT_EQ(show(del.where), "((k = -5) OR k IN (-6, -7))");

  // Beyond bigint: a double, as PostgreSQL makes it numeric.
  auto big = parse_one<Select>("SELECT 9223372036854775808, -9223372036854775809");
  EXPECT_EQ(big.items[0].expr->value.type, Type::kDouble);
  EXPECT_EQ(big.items[1].expr->value.type, Type::kDouble);
  EXPECT_EQ(big.items[1].expr->value.d, -9223372036854775809.0);
}

// BUG (disabled): the re-read of a negative constant from the text only
// skips '-', '+', '(' and whitespace between the minus and the digits, so a
// comment there (valid SQL: `- /* c */ 4` is -4) makes it 0. The same
// empty "Integer": {} arrives for a negative WITH option
// (`partitions = -5`), which parse_options reads as 0.
TEST(ParserTest, DISABLED_NegativeLiteralWithCommentAndNegativeOption) {
  auto s = parse_one<Select>("SELECT - /* c */ 4, -( -- c\n 9)");
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ(s.items[0].expr->value.i, -4);
  EXPECT_EQ(s.items[1].expr->value.i, -9);
  auto ct = parse_one<CreateTable>("CREATE TABLE t (a int) WITH (partitions = -5)");
  EXPECT_EQ(ct.options["partitions"].type, Type::kInt);
  EXPECT_EQ(ct.options["partitions"].i, -5);
}

TEST(ParserTest, CreateIndex) {
  auto ci = parse_one<CreateIndex>("CREATE INDEX by_customer ON orders (customer)");
  EXPECT_EQ(ci.name, "by_customer");
  EXPECT_EQ(ci.table, "orders");
  EXPECT_EQ(ci.table_location, 28);
  EXPECT_EQ(ci.column, "customer");
  EXPECT_FALSE(ci.if_not_exists);
  auto unnamed = parse_one<CreateIndex>("CREATE INDEX IF NOT EXISTS i2 ON t (c)");
  EXPECT_TRUE(unnamed.if_not_exists);
  auto derived = parse_one<CreateIndex>("CREATE INDEX ON orders (qty)");
  EXPECT_EQ(derived.name, "orders_qty_idx");
  EXPECT_EQ(parse_error("CREATE INDEX i ON t (a, b)").code, "0A000");
  EXPECT_EQ(parse_error("CREATE INDEX i ON t ((a + 1))").code, "0A000");
  EXPECT_EQ(parse_error("CREATE UNIQUE INDEX i ON t (a)").code, "0A000");
  EXPECT_EQ(parse_error("CREATE INDEX i ON t (a) WHERE a > 0").code, "0A000");
}

TEST(ParserTest, DropVariants) {
  auto d = parse_one<Drop>("DROP TABLE IF EXISTS a, b CASCADE");
  EXPECT_EQ(d.kind, ObjectKind::kTable);
  EXPECT_EQ(d.names, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(d.if_exists);
  EXPECT_TRUE(d.cascade);
  auto mv = parse_one<Drop>("DROP MATERIALIZED VIEW v");
  EXPECT_EQ(mv.kind, ObjectKind::kView);
  EXPECT_EQ(mv.names, (std::vector<std::string>{"v"}));
  EXPECT_FALSE(mv.if_exists);
  EXPECT_FALSE(mv.cascade);
  EXPECT_EQ(parse_one<Drop>("DROP VIEW v RESTRICT").kind, ObjectKind::kView);
  EXPECT_FALSE(parse_one<Drop>("DROP VIEW v RESTRICT").cascade);
  auto idx = parse_one<Drop>("DROP INDEX IF EXISTS i");
  EXPECT_EQ(idx.kind, ObjectKind::kIndex);
  EXPECT_TRUE(idx.if_exists);
  EXPECT_EQ(parse_one<Drop>("DROP TABLE public.t").names, (std::vector<std::string>{"t"}));
  EXPECT_EQ(parse_error("DROP SCHEMA s").code, "0A000");
  EXPECT_EQ(parse_error("DROP FUNCTION f()").code, "0A000");

  std::vector<Statement> tags = parse_ok("DROP TABLE t; DROP MATERIALIZED VIEW v; DROP INDEX i");
  ASSERT_EQ(tags.size(), 3u);
  EXPECT_EQ(command_tag(tags[0]), "DROP TABLE");
  EXPECT_EQ(command_tag(tags[1]), "DROP MATERIALIZED VIEW");
  EXPECT_EQ(command_tag(tags[2]), "DROP INDEX");
}

TEST(ParserTest, ShowExplainRefresh) {
  EXPECT_EQ(parse_one<Show>("SHOW TABLES").what, "tables");
  EXPECT_EQ(parse_one<Show>("show views").what, "views");
  EXPECT_EQ(parse_one<Show>("SHOW INDEXES").what, "indexes");
  SqlError e = parse_error("SHOW search_path");
  EXPECT_EQ(e.code, "0A000");
  EXPECT_NE(e.message.find("SHOW search_path"), std::string::npos) << e.message;

  const char* sql = "EXPLAIN SELECT a FROM t WHERE a = 1";
  auto statements = parse_ok(sql);
  ASSERT_EQ(statements.size(), 1u);
  EXPECT_EQ(command_tag(statements[0]), "EXPLAIN");
  auto* ex = std::get_if<std::shared_ptr<Explain>>(&statements[0].body);
  ASSERT_NE(ex, nullptr);
  const Select* inner = std::get_if<Select>(&(*ex)->inner.body);
  ASSERT_NE(inner, nullptr);
  EXPECT_EQ(inner->from, "t");
  EXPECT_EQ(show(inner->where), "(a = 1)");
  auto ev = parse_ok("EXPLAIN CREATE MATERIALIZED VIEW v AS SELECT a, count(*) FROM t GROUP BY a");
  ASSERT_EQ(ev.size(), 1u);
  auto* exv = std::get_if<std::shared_ptr<Explain>>(&ev[0].body);
  ASSERT_NE(exv, nullptr);
  EXPECT_NE(std::get_if<CreateView>(&(*exv)->inner.body), nullptr);
  EXPECT_EQ(parse_error("EXPLAIN INSERT INTO t VALUES (1)").code, "0A000");

  auto r = parse_one<Refresh>("REFRESH MATERIALIZED VIEW totals");
  EXPECT_EQ(r.name, "totals");
  EXPECT_EQ(command_tag(parse_ok("REFRESH MATERIALIZED VIEW totals")[0]), "REFRESH MATERIALIZED VIEW");
}

TEST(ParserTest, CommandTags) {
  auto st = parse_ok(
      "SELECT 1; CREATE TABLE t (a int); INSERT INTO t VALUES (1); UPDATE t SET a = 2; DELETE FROM t; "
      "CREATE MATERIALIZED VIEW v AS SELECT a FROM t; CREATE INDEX i ON t (a); SHOW TABLES");
  std::vector<std::string> want = {"SELECT", "CREATE TABLE", "INSERT", "UPDATE", "DELETE", "CREATE MATERIALIZED VIEW",
                                   "CREATE INDEX", "SHOW"};
  ASSERT_EQ(st.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(command_tag(st[i]), want[i]) << i;
}

TEST(ParserTest, SyntaxErrorHasSqlstateAndBytePosition) {
  SqlError e = parse_error("SELECT * FROM WHERE");
  EXPECT_EQ(e.code, "42601");
  EXPECT_EQ(e.message, "syntax error at or near \"WHERE\"");
  EXPECT_EQ(e.position, 14);

  // libpg_query counts characters; the error position is in bytes.
  std::string utf8 = "SELECT 'h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac' FROM WHERE";
  SqlError u = parse_error(utf8);
  EXPECT_EQ(u.code, "42601");
  EXPECT_EQ(u.position, int(utf8.find("WHERE")));
  EXPECT_EQ(u.position, 32);

  // In a later statement of the request: the position is in the request.
  std::string two = "SELECT 1; SELEC 2";
  SqlError t = parse_error(two);
  EXPECT_EQ(t.code, "42601");
  EXPECT_EQ(t.position, 10);

  SqlError q = parse_error("SELECT 'abc");
  EXPECT_EQ(q.code, "42601");
  EXPECT_EQ(q.position, 7);
}

TEST(ParserTest, UnsupportedConstructsAre0A000) {
  struct Case {
    std::string sql;
    std::string at;  // where the error points; empty: no position
  };
  std::vector<Case> cases = {
      {"SELECT a FROM t JOIN u ON t.a = u.a", ""},
      {"SELECT a FROM t, u", ""},
      {"SELECT a FROM (SELECT 1 AS a) s", ""},
      {"SELECT a FROM t WHERE a IN (SELECT b FROM u)", "IN (SELECT"},
      {"SELECT (SELECT 1)", "(SELECT"},
      {"SELECT 1 UNION SELECT 2", ""},
      {"SELECT 1 EXCEPT SELECT 2", ""},
      {"WITH x AS (SELECT 1) SELECT * FROM x", ""},
      {"SELECT sum(a) OVER () FROM t", "sum("},
      {"SELECT row_number() OVER (ORDER BY a) FROM t", "row_number"},
      {"SELECT a INTO t2 FROM t", ""},
      {"VALUES (1)", ""},
      {"BEGIN", ""},
  };
  for (const auto& c : cases) {
    SqlError e = parse_error(c.sql);
    EXPECT_EQ(e.code, "0A000") << c.sql << ": " << e.message;
    EXPECT_NE(e.message.find("not supported"), std::string::npos) << c.sql << ": " << e.message;
    if (!c.at.empty()) {
      EXPECT_EQ(e.position, pos_of(c.sql, c.at)) << c.sql;
    }
  }
  EXPECT_NE(parse_error("SELECT a FROM t JOIN u ON true").message.find("joins"), std::string::npos);
  EXPECT_NE(parse_error("SELECT sum(a) OVER () FROM t").message.find("window functions"), std::string::npos);
  EXPECT_NE(parse_error("SELECT 1 UNION SELECT 2").message.find("UNION"), std::string::npos);
  EXPECT_NE(parse_error("SELECT (SELECT 1)").message.find("subqueries"), std::string::npos);
}

// Regression test for a fixed bug: parse_select() reads only "relname" of the FROM item and
// never looks at "schemaname", so `SELECT a FROM other.t` silently reads
// table t (and a view can be created over "s.t" the same way), while
// CREATE TABLE/INSERT/UPDATE/DELETE reject a schema ("schemas is not
// supported", 0A000) through relname().
TEST(ParserTest, SchemaQualifiedFromIsRejected) {
  const char* sql = "SELECT a FROM s.t";
  SqlError e = parse_error(sql);
  EXPECT_EQ(e.code, "0A000") << e.message;
  EXPECT_EQ(e.position, pos_of(sql, "s.t"));
  EXPECT_EQ(parse_error("CREATE MATERIALIZED VIEW v AS SELECT a FROM other.t").code, "0A000");
}

TEST(ParserTest, SeveralStatementsKeepTheirTextsAndOffsets) {
  std::string sql = "  SELECT 1;\n  INSERT INTO t VALUES (-4);SELECT 'caf\xc3\xa9' ; SHOW TABLES";
  auto st = parse_ok(sql);
  ASSERT_EQ(st.size(), 4u);
  EXPECT_EQ(st[0].text, "SELECT 1");
  EXPECT_EQ(st[0].offset, 2);
  EXPECT_EQ(st[1].text, "INSERT INTO t VALUES (-4)");
  EXPECT_EQ(st[1].offset, int(sql.find("INSERT")));
  EXPECT_EQ(std::get<Insert>(st[1].body).rows[0][0]->value.i, -4);
  EXPECT_EQ(st[2].text.rfind("SELECT 'caf\xc3\xa9'", 0), 0u) << st[2].text;
  EXPECT_EQ(st[2].offset, int(sql.find("SELECT 'caf")));
  EXPECT_EQ(st[3].text, "SHOW TABLES");
  EXPECT_EQ(st[3].offset, int(sql.find("SHOW")));
  for (const auto& s : st) EXPECT_EQ(sql.substr(size_t(s.offset), s.text.size()), s.text);

  // Expression locations are byte offsets into the whole request.
  auto later = parse_ok("SELECT 1; SELECT '\xc3\xa9', b FROM t");
  ASSERT_EQ(later.size(), 2u);
  const auto& sel = std::get<Select>(later[1].body);
  EXPECT_EQ(sel.items[1].expr->location, 23);

  // No statements at all is not an error for the parser.
  EXPECT_TRUE(parse_ok("").empty());
  EXPECT_TRUE(parse_ok(" ; ;").empty());
}

}  // namespace
}  // namespace evert::sql
