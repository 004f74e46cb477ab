#include "views/engine.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "log/log_manager.h"
#include "log/log_test_util.h"
#include "log/partition.h"
#include "log/record_batch.h"
#include "testing/temp_dir.h"

namespace evert::views {
namespace {

using sql::Row;
using sql::Type;
using sql::Value;
using Clock = std::chrono::steady_clock;

std::string repr(const Value& v) {
  switch (v.type) {
    case Type::kNull: return "NULL";
    case Type::kBool: return v.i ? "true" : "false";
    case Type::kInt: return std::to_string(v.i);
    case Type::kDouble: return "d" + sql::to_text(v);
    case Type::kText: return "'" + v.s + "'";
    case Type::kTimestamp: return "ts:" + sql::format_timestamp(v.i);
  }
  return "?";
}

// "'alice' 2 d2.5; 'bob' 1 NULL": rows separated by "; ", values by " ".
std::string rows_of(const StatementResult& r) {
  std::string out;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    if (i) out += "; ";
    for (size_t j = 0; j < r.rows[i].size(); ++j) out += (j ? " " : "") + repr(r.rows[i][j]);
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out;
}

QueryOptions waiting_for(std::vector<TopicOffset> offsets, int timeout_ms = 5000) {
  QueryOptions o;
  o.wait_for = std::move(offsets);
  o.timeout = std::chrono::milliseconds(timeout_ms);
  return o;
}

// A real log and engine in a temporary directory, wired as the server
// wires them (server.cc): the log's listener slot 1 feeds Engine::on_append,
// and it is cleared before the engine closes.
class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { open_all(); }
  void TearDown() override { close_all(); }

  void open_all() {
    log::LogOptions lo;
    lo.data_dir = dir_.path() + "/log";
    lo.flush.kind = log::FlushPolicy::Kind::kNone;
    lo.background = false;
    lo.sync_threads = 1;
    log::OpenReport report;
    auto log = log::LogManager::open(lo, &report);
    ASSERT_TRUE(log.is_ok()) << log.status().to_string();
    log_ = std::move(log).value();
    EngineOptions eo;
    eo.state_dir = state_dir();
    eo.log = log_.get();
    eo.decode_ahead = decode_ahead_;
    eo.partial = partial_;
    auto engine = Engine::open(eo);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
    log_->set_append_listener(1, [e = engine_.get()](const std::string& topic, int32_t, int64_t) {
      e->on_append(topic);
    });
  }

  DecodeAhead decode_ahead_;  // open_all()'s, for every view
  PartialAggregation partial_;  // likewise

  // Random events into the three partitions of `topic`: 40 batches of 1 to
  // 9 each per partition; event(id, batch, &malformed) makes each value.
  // Counts them into *total and the malformed into *bad, and returns each
  // partition's last offset.
  std::vector<TopicOffset> produce_random(
      const std::string& topic, std::mt19937& rng,
      const std::function<std::optional<std::string>(int64_t id, int batch, bool* malformed)>& event, int64_t* total,
      int64_t* bad) {
    std::vector<TopicOffset> last;
    for (int32_t p = 0; p < 3; ++p) {
      int64_t end = -1;
      for (int batch = 0; batch < 40; ++batch) {
        std::vector<std::optional<std::string>> values;
        size_t n = 1 + rng() % 9;
        for (size_t i = 0; i < n; ++i, ++*total) {
          bool malformed = false;
          values.push_back(event(*total, batch, &malformed));
          if (malformed) ++*bad;
        }
        end = produce(topic, p, values);
      }
      last.push_back({topic, p, end});
    }
    return last;
  }

  // A rebuild of `view` reads `events` events, finds nothing to change, and
  // `sql` still answers `expected`.
  void expect_rebuild_agrees(const std::string& view, int64_t events, const std::string& sql,
                             const std::string& expected) {
    auto rebuilt = engine_->rebuild(view);
    if (!rebuilt.ok()) {
      ADD_FAILURE() << view << ": rebuild failed";
      return;
    }
    EXPECT_EQ(rebuilt.value().differences, 0) << view;
    EXPECT_EQ(rebuilt.value().events, events) << view;
    EXPECT_EQ(query(sql), expected) << view;
  }

  void close_all() {
    if (log_) log_->set_append_listener(1, nullptr);
    if (engine_) engine_->close();
    engine_.reset();
    if (log_) {
      Status s = log_->close();
      EXPECT_TRUE(s.is_ok()) << s.to_string();
    }
    log_.reset();
  }

  void reopen() {
    close_all();
    open_all();
  }

  std::string state_dir() const { return dir_.path() + "/state"; }

  // The state directory's RocksDB, opened by a test while the engine is
  // closed, with its two column families (default, state).
  void open_state_db(bool read_only, std::unique_ptr<rocksdb::DB>* db,
                     std::vector<rocksdb::ColumnFamilyHandle*>* handles) {
    rocksdb::DBOptions o;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {{rocksdb::kDefaultColumnFamilyName, {}}, {"state", {}}};
    rocksdb::DB* raw = nullptr;
    rocksdb::Status st = read_only ? rocksdb::DB::OpenForReadOnly(o, state_dir(), families, handles, &raw)
                                   : rocksdb::DB::Open(o, state_dir(), families, handles, &raw);
    ASSERT_TRUE(st.ok()) << st.ToString();
    db->reset(raw);
  }

  ExecuteResult run(const std::string& sql, const QueryOptions& options = QueryOptions()) {
    return engine_->execute(sql, options);
  }

  // Runs `sql`, which must succeed; returns its last statement's result.
  StatementResult ok(const std::string& sql, const QueryOptions& options = QueryOptions()) {
    ExecuteResult r = run(sql, options);
    if (r.error) {
      ADD_FAILURE() << sql << "\n  -> " << r.error->code << " " << r.error->message << " at " << r.error->position;
      return StatementResult{};
    }
    if (r.results.empty()) {
      ADD_FAILURE() << sql << ": no results";
      return StatementResult{};
    }
    return r.results.back();
  }

  // The rows of a query, as text.
  std::string query(const std::string& sql, const QueryOptions& options = QueryOptions()) {
    return rows_of(ok(sql, options));
  }

  sql::SqlError fails(const std::string& sql, const QueryOptions& options = QueryOptions()) {
    ExecuteResult r = run(sql, options);
    if (!r.error) {
      ADD_FAILURE() << sql << ": succeeded";
      return sql::SqlError{"", "", -2};
    }
    return *r.error;
  }

  // Appends raw record values (nullopt: a null value) to one partition.
  int64_t produce(const std::string& topic, int32_t partition, const std::vector<std::optional<std::string>>& values) {
    log::BatchBuilder bb(1700000000000);
    for (const auto& v : values) {
      bb.add(std::nullopt, v ? std::optional<std::string_view>(*v) : std::nullopt, 1700000000000);
    }
    std::string batch = bb.finish();
    auto part = log_->partition(topic, partition);
    EXPECT_NE(part, nullptr);
    if (!part) return -1;
    auto r = part->append(MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()), batch.size()));
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? r->last_offset : -1;
  }

  // Appends keyed records (a nullopt value is a tombstone) to one partition.
  int64_t produce_keyed(const std::string& topic, int32_t partition,
                        const std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>>& records) {
    log::BatchBuilder bb(1700000000000);
    for (const auto& [k, v] : records) {
      bb.add(k ? std::optional<std::string_view>(*k) : std::nullopt,
             v ? std::optional<std::string_view>(*v) : std::nullopt, 1700000000000);
    }
    std::string batch = bb.finish();
    auto part = log_->partition(topic, partition);
    EXPECT_NE(part, nullptr);
    if (!part) return -1;
    auto r = part->append(MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()), batch.size()));
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? r->last_offset : -1;
  }

  // Polls the view's status until `done` holds (or 5 s pass).
  ViewStatus status_when(const std::string& view, const std::function<bool(const ViewStatus&)>& done) {
    auto deadline = Clock::now() + std::chrono::seconds(5);
    std::optional<ViewStatus> st;
    while (Clock::now() < deadline) {
      st = engine_->view_status(view);
      if (st && done(*st)) return *st;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ADD_FAILURE() << "view " << view << " did not reach the expected status; state "
                  << (st ? st->state : "<none>") << ", events " << (st ? st->events : -1);
    return st.value_or(ViewStatus{});
  }

  testing::TempDir dir_;
  std::unique_ptr<log::LogManager> log_;
  std::unique_ptr<Engine> engine_;
};

const char* kOrders = "CREATE TABLE orders (id bigint, customer text, qty bigint, price double precision) "
                      "WITH (partitions = 2)";
const char* kOrderRows =
    "INSERT INTO orders VALUES (1, 'alice', 2, 10.0), (2, 'bob', 1, 5.5), (3, 'alice', 3, 2.5), (4, 'carol', NULL, NULL)";
const char* kByCustomer =
    "CREATE MATERIALIZED VIEW by_customer AS SELECT customer, count(*) AS n, count(qty) AS nq, sum(qty) AS qty, "
    "min(price) AS lo, max(price) AS hi, avg(price) AS mean, count(DISTINCT qty) AS kinds FROM orders GROUP BY customer";

TEST_F(EngineTest, CreateTableInsertViewSelect) {
  EXPECT_EQ(ok(kOrders).command, "CREATE TABLE");
  EXPECT_EQ(ok(kByCustomer).command, "CREATE MATERIALIZED VIEW");
  StatementResult ins = ok(kOrderRows);
  EXPECT_EQ(ins.command, "INSERT");
  EXPECT_EQ(ins.rows_affected, 4);
  ASSERT_EQ(ins.offsets.size(), 4u);
  // No key column: round-robin over the two partitions.
  for (const auto& o : ins.offsets) EXPECT_EQ(o.topic, "orders");
  EXPECT_NE(ins.offsets[0].partition, ins.offsets[1].partition);
  EXPECT_EQ(ins.offsets[0].partition, ins.offsets[2].partition);

  StatementResult sel = ok("SELECT * FROM by_customer ORDER BY customer", waiting_for(ins.offsets));
  EXPECT_TRUE(sel.has_rows);
  EXPECT_EQ(joined(sel.columns), "customer,n,nq,qty,lo,hi,mean,kinds");
  EXPECT_EQ(joined(sel.types),
            "text,bigint,bigint,bigint,double precision,double precision,double precision,bigint");
  EXPECT_EQ(rows_of(sel),
            "'alice' 2 2 5 d2.5 d10 d6.25 2; 'bob' 1 1 1 d5.5 d5.5 d5.5 1; 'carol' 1 0 NULL NULL NULL NULL 0");
  // Without ORDER BY a view reads in key order.
  EXPECT_EQ(query("SELECT customer, n FROM by_customer"), "'alice' 2; 'bob' 1; 'carol' 1");
  // A point lookup on the key, and the same through Engine::lookup.
  EXPECT_EQ(query("SELECT n, qty FROM by_customer WHERE customer = 'alice'"), "2 5");
  EXPECT_EQ(query("EXPLAIN SELECT n FROM by_customer WHERE customer = 'alice'").rfind(
                "'select: point lookup on the key of view by_customer'", 0),
            0u);
  auto looked = engine_->lookup("by_customer", "bob");
  ASSERT_TRUE(looked.ok()) << looked.error().message;
  EXPECT_EQ(rows_of(looked.value()), "'bob' 1 1 1 d5.5 d5.5 d5.5 1");
  auto none = engine_->lookup("by_customer", "nobody");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none.value().rows.empty());
  auto missing = engine_->lookup("no_such_view", "x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "42P01");
  // Range conditions on the key.
  EXPECT_EQ(query("SELECT customer FROM by_customer WHERE customer > 'alice' AND customer <= 'bob'"), "'bob'");
  EXPECT_EQ(query("SELECT customer FROM by_customer WHERE customer BETWEEN 'b' AND 'z' ORDER BY 1 DESC"),
            "'carol'; 'bob'");

  // The table itself: a scan of its log, with the plan's filter, sort, DISTINCT, LIMIT.
  EXPECT_EQ(query("SELECT id, customer FROM orders WHERE qty >= 2 ORDER BY id"), "1 'alice'; 3 'alice'");
  EXPECT_EQ(query("SELECT customer, qty FROM orders ORDER BY qty DESC, id"),
            "'carol' NULL; 'alice' 3; 'alice' 2; 'bob' 1");  // DESC puts NULLs first
  EXPECT_EQ(query("SELECT customer, qty FROM orders ORDER BY qty NULLS FIRST, id"),
            "'carol' NULL; 'bob' 1; 'alice' 2; 'alice' 3");
  EXPECT_EQ(query("SELECT qty FROM orders ORDER BY qty"), "1; 2; 3; NULL");
  EXPECT_EQ(query("SELECT DISTINCT customer FROM orders ORDER BY 1 LIMIT 2 OFFSET 1"), "'bob'; 'carol'");
  EXPECT_EQ(query("SELECT count(*), sum(qty), avg(price), min(customer) FROM orders"), "4 6 d6 'alice'");
  EXPECT_EQ(query("SELECT count(*), sum(qty) FROM orders WHERE qty > 100"), "0 NULL");
  EXPECT_EQ(query("SELECT customer, sum(qty) AS s FROM orders GROUP BY 1 HAVING count(*) >= 1 ORDER BY s DESC NULLS LAST"),
            "'alice' 5; 'bob' 1; 'carol' NULL");
  EXPECT_EQ(query("SELECT id % 2 AS odd, count(*) FROM orders GROUP BY odd ORDER BY odd"), "0 2; 1 2");
  EXPECT_EQ(query("SELECT 1 + 1 AS two, 'x' AS s, 7 / 2, -7 % 3"), "2 'x' 3 -1");
}

TEST_F(EngineTest, HavingAndFilterViewsFollowNewRows) {
  ok(kOrders);
  ok("CREATE MATERIALIZED VIEW repeat AS SELECT customer, sum(qty) AS total FROM orders GROUP BY customer "
     "HAVING count(*) > 1");
  ok("CREATE MATERIALIZED VIEW big AS SELECT id, customer, qty * 10 AS q10 FROM orders WHERE qty >= 2");
  ok("CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n, sum(qty) AS total FROM orders");
  EXPECT_EQ(query("SELECT * FROM totals"), "0 NULL");  // a global aggregate has its row before any input
  StatementResult ins = ok(kOrderRows);
  EXPECT_EQ(query("SELECT * FROM repeat", waiting_for(ins.offsets)), "'alice' 5");
  EXPECT_EQ(query("SELECT * FROM big ORDER BY id", waiting_for(ins.offsets)), "1 'alice' 20; 3 'alice' 30");
  EXPECT_EQ(query("SELECT * FROM totals", waiting_for(ins.offsets)), "4 6");
  // bob reaches the HAVING threshold; a row below the filter changes nothing in big.
  StatementResult more = ok("INSERT INTO orders VALUES (5, 'bob', 1, 1.0)");
  EXPECT_EQ(query("SELECT * FROM repeat ORDER BY customer", waiting_for(more.offsets)), "'alice' 5; 'bob' 2");
  EXPECT_EQ(query("SELECT * FROM big ORDER BY id", waiting_for(more.offsets)), "1 'alice' 20; 3 'alice' 30");
  EXPECT_EQ(query("SELECT * FROM totals", waiting_for(more.offsets)), "5 7");
}

TEST_F(EngineTest, UpsertUpdatesAndDeletesRetractMinMaxAndCountDistinct) {
  ok("CREATE TABLE accounts (id bigint, owner text, balance bigint, tier text) "
     "WITH (key = 'id', envelope = 'upsert', partitions = 3)");
  ok("CREATE MATERIALIZED VIEW tiers AS SELECT tier, count(*) AS n, sum(balance) AS total, min(balance) AS lo, "
     "max(balance) AS hi, count(DISTINCT owner) AS owners FROM accounts GROUP BY tier");
  ok("CREATE MATERIALIZED VIEW overall AS SELECT count(*) AS n, min(balance) AS lo, max(balance) AS hi FROM accounts");
  const std::string tiers = "; SELECT * FROM tiers ORDER BY tier";

  StatementResult ins = ok("INSERT INTO accounts VALUES (1, 'ann', 100, 'gold'), (2, 'ben', 50, 'gold'), "
                           "(3, 'ann', 70, 'gold'), (4, 'cat', 10, 'basic')");
  EXPECT_EQ(ins.rows_affected, 4);
  EXPECT_EQ(query("SELECT * FROM tiers ORDER BY tier", waiting_for(ins.offsets)),
            "'basic' 1 10 10 10 1; 'gold' 3 220 50 100 2");

  StatementResult up = ok("UPDATE accounts SET balance = 200 WHERE id = 2");
  EXPECT_EQ(up.command, "UPDATE");
  EXPECT_EQ(up.rows_affected, 1);
  EXPECT_EQ(query("SELECT * FROM tiers ORDER BY tier", waiting_for(up.offsets)),
            "'basic' 1 10 10 10 1; 'gold' 3 370 70 200 2");
  // Deleting ben's only account retracts him from count(DISTINCT owner) and 200 from max.
  StatementResult del = ok("DELETE FROM accounts WHERE id = 2");
  EXPECT_EQ(del.command, "DELETE");
  EXPECT_EQ(del.rows_affected, 1);
  EXPECT_EQ(query("SELECT * FROM tiers ORDER BY tier", waiting_for(del.offsets)),
            "'basic' 1 10 10 10 1; 'gold' 2 170 70 100 1");
  // ann still owns account 3 in gold: she stays counted once.
  EXPECT_EQ(query("DELETE FROM accounts WHERE id = 1" + tiers), "'basic' 1 10 10 10 1; 'gold' 1 70 70 70 1");
  // Moving the last gold row empties the gold group: it disappears.
  EXPECT_EQ(query("UPDATE accounts SET tier = 'basic' WHERE id = 3" + tiers), "'basic' 2 80 10 70 2");
  // INSERT of an existing key replaces the row.
  EXPECT_EQ(query("INSERT INTO accounts VALUES (4, 'cat', 5, 'basic')" + tiers), "'basic' 2 75 5 70 2");
  // Changing the key deletes the old row.
  StatementResult rekey = ok("UPDATE accounts SET id = 40 WHERE id = 4");
  EXPECT_EQ(rekey.rows_affected, 1);
  EXPECT_EQ(rekey.offsets.size(), 2u);  // a tombstone for 4, the row for 40
  EXPECT_EQ(query("SELECT * FROM accounts ORDER BY id", waiting_for(rekey.offsets)),
            "3 'ann' 70 'basic'; 40 'cat' 5 'basic'");
  EXPECT_EQ(query("SELECT * FROM tiers", waiting_for(rekey.offsets)), "'basic' 2 75 5 70 2");
  EXPECT_EQ(query("SELECT owner FROM accounts WHERE id = 40"), "'cat'");
  EXPECT_EQ(query("SELECT owner FROM accounts WHERE id = 4"), "");
  EXPECT_EQ(query("EXPLAIN SELECT owner FROM accounts WHERE id = 40"),
            "'select: point lookup on the key of table accounts'; '  -> filter (id = 40)'");
  EXPECT_EQ(query("SELECT * FROM overall", waiting_for(rekey.offsets)), "2 5 70");
  EXPECT_EQ(ok("UPDATE accounts SET balance = 0 WHERE id = 999").rows_affected, 0);
  EXPECT_EQ(ok("DELETE FROM accounts WHERE balance > 1000").rows_affected, 0);
  // Everything deleted: the global aggregate shows an empty set, the grouped view no rows.
  StatementResult all = ok("DELETE FROM accounts");
  EXPECT_EQ(all.rows_affected, 2);
  EXPECT_EQ(query("SELECT * FROM overall", waiting_for(all.offsets)), "0 NULL NULL");
  EXPECT_EQ(query("SELECT * FROM tiers", waiting_for(all.offsets)), "");
  EXPECT_EQ(query("SELECT count(*) FROM accounts", waiting_for(all.offsets)), "0");

  auto rebuilt = engine_->rebuild("tiers");
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().message;
  EXPECT_EQ(rebuilt.value().differences, 0);
  EXPECT_EQ(rebuilt.value().rows, 0);

  // Writes that an upsert table refuses.
  EXPECT_EQ(fails("INSERT INTO accounts (owner) VALUES ('nobody')").code, "23502");
  ok(kOrders);
  sql::SqlError append_update = fails("UPDATE orders SET qty = 1");
  EXPECT_EQ(append_update.code, "0A000");
  EXPECT_EQ(append_update.position, 7);
  EXPECT_EQ(fails("DELETE FROM orders").code, "0A000");
}

TEST_F(EngineTest, UpsertRecordsFromOtherProducers) {
  ok("CREATE TABLE kv (k text, v bigint) WITH (key = 'k', envelope = 'upsert')");
  ok("CREATE MATERIALIZED VIEW kv_rows AS SELECT k, v FROM kv");
  ok("CREATE MATERIALIZED VIEW kv_sum AS SELECT count(*) AS n, sum(v) AS total FROM kv");
  StatementResult ins = ok("INSERT INTO kv VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4)");
  EXPECT_EQ(query("SELECT * FROM kv_rows ORDER BY k", waiting_for(ins.offsets)), "'a' 1; 'b' 2; 'c' 3; 'd' 4");
  // The records INSERT wrote: the record key is the key column's text.
  // Tombstones name the row by record key, as text or as a JSON string; a
  // value names it by its key column, whatever the record key says.
  int64_t last = produce_keyed("kv", 0,
                               {{std::string("a"), std::nullopt},
                                {std::string("\"b\""), std::nullopt},
                                {std::nullopt, std::string(R"({"k": "c", "v": 30})")},
                                {std::string("zzz"), std::string(R"({"k": "d", "v": 40})")},
                                {std::nullopt, std::nullopt},
                                {std::string("e"), std::string(R"({"k": null, "v": 5})")},
                                {std::string("nope"), std::nullopt}});
  EXPECT_EQ(query("SELECT * FROM kv_rows ORDER BY k", waiting_for({{"kv", 0, last}})), "'c' 30; 'd' 40");
  EXPECT_EQ(query("SELECT * FROM kv_sum", waiting_for({{"kv", 0, last}})), "2 70");
  EXPECT_EQ(query("SELECT * FROM kv ORDER BY k", waiting_for({{"kv", 0, last}})), "'c' 30; 'd' 40");
  ViewStatus st = *engine_->view_status("kv_rows");
  EXPECT_EQ(st.errors, 2);
  ASSERT_EQ(st.recent_errors.size(), 2u);
  EXPECT_EQ(st.recent_errors[0].offset, 8);
  EXPECT_EQ(st.recent_errors[0].reason, "tombstone without a record key");
  EXPECT_EQ(st.recent_errors[1].offset, 9);
  EXPECT_EQ(st.recent_errors[1].reason, "null key \"k\"");
  auto rebuilt = engine_->rebuild("kv_sum");
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt.value().differences, 0);
  EXPECT_EQ(rebuilt.value().events, 11);
}

TEST_F(EngineTest, EvaluationErrorsInAViewAreCountedAndSkipped) {
  ok("CREATE TABLE t (id bigint, a bigint, b bigint)");
  ok("CREATE MATERIALIZED VIEW ratios AS SELECT id, a / b AS r FROM t");
  ok("CREATE MATERIALIZED VIEW sums AS SELECT count(*) AS n, sum(a * b) AS ab FROM t");
  StatementResult ins = ok("INSERT INTO t VALUES (1, 7, 2), (2, 1, 0), (3, -7, 2), (4, 9223372036854775807, 2)");
  EXPECT_EQ(query("SELECT * FROM ratios ORDER BY id", waiting_for(ins.offsets)), "1 3; 3 -3; 4 4611686018427387903");
  ViewStatus st = *engine_->view_status("ratios");
  EXPECT_EQ(st.events, 4);
  EXPECT_EQ(st.errors, 1);
  ASSERT_EQ(st.recent_errors.size(), 1u);
  EXPECT_EQ(st.recent_errors[0].offset, 1);
  EXPECT_EQ(st.recent_errors[0].reason, "evaluating the view: division by zero");
  // The row whose a * b overflows is left out of the aggregate entirely.
  EXPECT_EQ(query("SELECT * FROM sums", waiting_for(ins.offsets)), "3 0");
  EXPECT_EQ(engine_->view_status("sums")->recent_errors.at(0).reason, "evaluating the view: bigint out of range");
}

// BUG (disabled): sum(bigint) is typed bigint, but when the exact sum
// leaves the int64 range group_combined() returns it as a double, so the
// result holds a double precision value in a column declared bigint (and
// the changelog writes 1.8446744073709552e+19, which a view over this one
// rejects as "not of type bigint"). PostgreSQL's sum(bigint) is numeric;
// with no numeric type here, 22003 or a double precision column would be
// consistent.
TEST_F(EngineTest, DISABLED_SumOverflowKeepsTheDeclaredType) {
  ok("CREATE TABLE t (k text, v bigint)");
  ok("CREATE MATERIALIZED VIEW s AS SELECT k, sum(v) AS total FROM t GROUP BY k");
  ok("CREATE MATERIALIZED VIEW over_s AS SELECT total FROM s");
  StatementResult ins = ok("INSERT INTO t VALUES ('a', 9223372036854775807), ('a', 9223372036854775807)");
  StatementResult sel = ok("SELECT total FROM s", waiting_for(ins.offsets));
  ASSERT_EQ(sel.rows.size(), 1u);
  EXPECT_EQ(joined(sel.types), "bigint");
  EXPECT_EQ(sel.rows[0][0].type, Type::kInt) << repr(sel.rows[0][0]);
  ok("SELECT * FROM over_s", waiting_for(ins.offsets));
  EXPECT_EQ(engine_->view_status("over_s")->errors, 0);
}

TEST_F(EngineTest, ViewOverView) {
  ok(kOrders);
  ok("CREATE MATERIALIZED VIEW per_customer AS SELECT customer, count(*) AS n FROM orders GROUP BY customer");
  ok("CREATE MATERIALIZED VIEW histogram AS SELECT n, count(*) AS customers FROM per_customer GROUP BY n");
  ok("CREATE MATERIALIZED VIEW busy AS SELECT customer, n FROM per_customer WHERE n >= 2");
  const std::string hist = "; SELECT * FROM histogram ORDER BY n";
  // Reads in the same request wait for its writes, through both views.
  EXPECT_EQ(query("INSERT INTO orders (id, customer) VALUES (1, 'alice'), (2, 'bob'), (3, 'alice')" + hist),
            "1 1; 2 1");
  EXPECT_EQ(query("SELECT * FROM busy ORDER BY customer", waiting_for({{"orders", 0, 1}, {"orders", 1, 0}})),
            "'alice' 2");
  EXPECT_EQ(query("INSERT INTO orders (id, customer) VALUES (4, 'bob'), (5, 'carol')" + hist), "1 1; 2 2");
  EXPECT_EQ(query("INSERT INTO orders (id, customer) VALUES (6, 'alice')" + hist), "1 1; 2 1; 3 1");
  StatementResult dan = ok("INSERT INTO orders (id, customer) VALUES (7, 'dan')");
  EXPECT_EQ(query("SELECT * FROM busy ORDER BY customer", waiting_for(dan.offsets)), "'alice' 3; 'bob' 2");
  EXPECT_EQ(query("SELECT * FROM histogram ORDER BY n", waiting_for(dan.offsets)), "1 2; 2 1; 3 1");
  // The changelog of per_customer holds one record per change.
  auto info = log_->describe_topic("_evert.view.per_customer");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->partitions, 1);
  std::string explain = query("EXPLAIN SELECT * FROM histogram");
  EXPECT_NE(explain.find("source: per_customer (topic _evert.view.per_customer, changelog: -before, +after)"),
            std::string::npos)
      << explain;
  auto rebuilt = engine_->rebuild("histogram");
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().message;
  EXPECT_EQ(rebuilt.value().differences, 0);
  EXPECT_EQ(rebuilt.value().rows, 3);
}

TEST_F(EngineTest, CloseAndReopenKeepsStateAndOffsets) {
  ok(kOrders);
  ok("CREATE TABLE accounts (id bigint, tier text) WITH (key = 'id', envelope = 'upsert')");
  ok(kByCustomer);
  ok("CREATE MATERIALIZED VIEW per_tier AS SELECT tier, count(*) AS n FROM accounts GROUP BY tier");
  ok("CREATE MATERIALIZED VIEW histogram AS SELECT n, count(*) AS customers FROM by_customer GROUP BY n");
  ok("CREATE INDEX orders_by_customer ON orders (customer)");
  ok(kOrderRows);
  ok("INSERT INTO accounts VALUES (1, 'gold'), (2, 'gold'), (3, 'basic'); UPDATE accounts SET tier = 'basic' WHERE id = 2");
  const std::string before_customers = query("SELECT customer, n, qty, lo, hi FROM by_customer",
                                             waiting_for({{"orders", 0, 1}, {"orders", 1, 1}}));
  EXPECT_EQ(before_customers, "'alice' 2 5 d2.5 d10; 'bob' 1 1 d5.5 d5.5; 'carol' 1 NULL NULL NULL");
  EXPECT_EQ(query("SELECT * FROM histogram ORDER BY n", waiting_for({{"orders", 0, 1}, {"orders", 1, 1}})),
            "1 2; 2 1");
  EXPECT_EQ(query("SELECT * FROM per_tier ORDER BY tier", waiting_for({{"accounts", 0, 3}})), "'basic' 2; 'gold' 1");
  // The index too must have applied the rows before the restart, or the
  // read after it may run before the index's first batch.
  EXPECT_EQ(query("SELECT id FROM orders WHERE customer = 'alice' ORDER BY id",
                  waiting_for({{"orders", 0, 1}, {"orders", 1, 1}})),
            "1; 3");
  ViewStatus before = status_when("by_customer", [](const ViewStatus& s) { return s.events == 4 && s.state == "live"; });
  EXPECT_EQ(before.offsets, (std::vector<int64_t>{2, 2}));

  reopen();

  // The state is back without reading the source again.
  EXPECT_EQ(query("SELECT customer, n, qty, lo, hi FROM by_customer"), before_customers);
  EXPECT_EQ(query("SELECT * FROM histogram ORDER BY n"), "1 2; 2 1");
  EXPECT_EQ(query("SELECT * FROM per_tier ORDER BY tier"), "'basic' 2; 'gold' 1");
  EXPECT_EQ(query("SELECT id, tier FROM accounts ORDER BY id"), "1 'gold'; 2 'basic'; 3 'basic'");
  EXPECT_EQ(query("SELECT id FROM orders WHERE customer = 'alice' ORDER BY id"), "1; 3");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ViewStatus after = *engine_->view_status("by_customer");
  EXPECT_EQ(after.events, 4);
  EXPECT_EQ(after.events_since_start, 0);
  EXPECT_EQ(after.offsets, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(after.state, "live");
  EXPECT_EQ(engine_->view_status("per_tier")->events_since_start, 0);
  EXPECT_EQ(engine_->view_status("histogram")->events_since_start, 0);
  EXPECT_EQ(query("SHOW TABLES"),
            "'accounts' 'accounts' 1 'upsert' 'id' 'id bigint, tier text'; "
            "'orders' 'orders' 2 'append' NULL 'id bigint, customer text, qty bigint, price double precision'");
  EXPECT_EQ(query("SHOW INDEXES").rfind("'orders_by_customer' 'orders' 'customer'", 0), 0u);

  // And it continues from where it stopped.
  StatementResult five = ok("INSERT INTO orders VALUES (5, 'bob', 4, 1.0)");
  EXPECT_EQ(query("SELECT customer, n, qty, lo FROM by_customer WHERE customer = 'bob'", waiting_for(five.offsets)),
            "'bob' 2 5 d1");
  EXPECT_EQ(query("SELECT * FROM histogram ORDER BY n", waiting_for(five.offsets)), "1 1; 2 2");
  EXPECT_EQ(query("UPDATE accounts SET tier = 'gold' WHERE id = 3; SELECT * FROM per_tier ORDER BY tier"),
            "'basic' 1; 'gold' 2");
  ViewStatus later = *engine_->view_status("by_customer");
  EXPECT_EQ(later.events, 5);
  EXPECT_EQ(later.events_since_start, 1);
  for (const char* v : {"by_customer", "per_tier", "histogram"}) {
    auto rebuilt = engine_->rebuild(v);
    ASSERT_TRUE(rebuilt.ok()) << v << ": " << rebuilt.error().message;
    EXPECT_EQ(rebuilt.value().differences, 0) << v;
  }
}

// A state directory written before views kept their rows and groups in a
// column family of their own: every key in the default one. Opening it
// moves them over; the views come back without reading their sources again.
TEST_F(EngineTest, StateFromBeforeTheStateColumnFamilyIsMovedOnOpen) {
  ok(kOrders);
  ok("CREATE TABLE accounts (id bigint, tier text) WITH (key = 'id', envelope = 'upsert')");
  ok(kByCustomer);
  ok("CREATE MATERIALIZED VIEW per_tier AS SELECT tier, count(*) AS n FROM accounts GROUP BY tier");
  ok("CREATE MATERIALIZED VIEW big AS SELECT id, customer FROM orders WHERE qty > 1");
  ok(kOrderRows);
  ok("INSERT INTO accounts VALUES (1, 'gold'), (2, 'gold'), (3, 'basic'); UPDATE accounts SET tier = 'basic' WHERE id = 2");
  const auto orders_applied = waiting_for({{"orders", 0, 1}, {"orders", 1, 1}});
  const std::string customers = query("SELECT customer, n, qty, lo, hi FROM by_customer", orders_applied);
  const std::string big = query("SELECT * FROM big ORDER BY id", orders_applied);
  EXPECT_EQ(query("SELECT * FROM per_tier ORDER BY tier", waiting_for({{"accounts", 0, 3}})), "'basic' 2; 'gold' 1");
  status_when("by_customer", [](const ViewStatus& s) { return s.events == 4 && s.state == "live"; });
  status_when("big", [](const ViewStatus& s) { return s.events == 4 && s.state == "live"; });
  status_when("per_tier", [](const ViewStatus& s) { return s.events == 4 && s.state == "live"; });
  close_all();

  // Rewrite the directory into the old layout with RocksDB itself.
  {
    std::unique_ptr<rocksdb::DB> db;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    open_state_db(false, &db, &handles);
    rocksdb::WriteBatch wb;
    int moved = 0;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[1]));
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++moved) wb.Put(it->key(), it->value());
    it.reset();
    EXPECT_GT(moved, 5);
    ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &wb).ok());
    ASSERT_TRUE(db->DropColumnFamily(handles[1]).ok());
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }

  open_all();
  EXPECT_EQ(query("SELECT customer, n, qty, lo, hi FROM by_customer"), customers);
  EXPECT_EQ(query("SELECT * FROM big ORDER BY id"), big);
  EXPECT_EQ(query("SELECT * FROM per_tier ORDER BY tier"), "'basic' 2; 'gold' 1");
  EXPECT_EQ(query("SELECT id, tier FROM accounts ORDER BY id"), "1 'gold'; 2 'basic'; 3 'basic'");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  for (const char* v : {"by_customer", "big", "per_tier"}) {
    ViewStatus st = *engine_->view_status(v);
    EXPECT_EQ(st.events_since_start, 0) << v;  // nothing read again
    EXPECT_EQ(st.events, 4) << v;
  }
  // The moved state is where commits now go: a new row, then a restart.
  StatementResult five = ok("INSERT INTO orders VALUES (5, 'bob', 4, 1.0)");
  EXPECT_EQ(query("SELECT customer, n FROM by_customer WHERE customer = 'bob'", waiting_for(five.offsets)), "'bob' 2");
  status_when("by_customer", [](const ViewStatus& s) { return s.events == 5 && s.state == "live"; });
  reopen();
  EXPECT_EQ(query("SELECT customer, n FROM by_customer WHERE customer = 'bob'"), "'bob' 2");
  auto rebuilt = engine_->rebuild("by_customer");
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().message;
  EXPECT_EQ(rebuilt.value().differences, 0);
}

// Groups made and erased between ordered reads: range reads and full scans
// see exactly the live groups, in order.
TEST_F(EngineTest, OrderedReadsFollowGroupsMadeAndErasedBetweenThem) {
  ok("CREATE TABLE items (id bigint, tag text) WITH (key = 'id', envelope = 'upsert')");
  ok("CREATE MATERIALIZED VIEW per_tag AS SELECT tag, count(*) AS n FROM items GROUP BY tag");
  std::string insert;
  for (int i = 0; i < 200; ++i)
    insert += (i ? ", (" : "(") + std::to_string(i) + ", 't" + std::to_string(1000 + i) + "')";
  ok("INSERT INTO items VALUES " + insert);
  // Before any ordered read: erase every group but multiples of 7 (their one row goes).
  std::string deleted;
  for (int i = 0; i < 200; ++i) {
    if (i % 7 != 0) deleted += (deleted.empty() ? "" : ", ") + std::to_string(i);
  }
  StatementResult del = ok("DELETE FROM items WHERE id IN (" + deleted + ")");
  auto expect = [](int from, int to) {
    std::string out;
    for (int i = from; i < to; ++i) {
      if (i % 7 == 0) out += std::string(out.empty() ? "" : "; ") + "'t" + std::to_string(1000 + i) + "'";
    }
    return out;
  };
  EXPECT_EQ(query("SELECT tag FROM per_tag", waiting_for(del.offsets)), expect(0, 200));
  EXPECT_EQ(query("SELECT tag FROM per_tag WHERE tag >= 't1050' AND tag < 't1100'"), expect(50, 100));
  // More groups after the first ordered read, then one erased again.
  StatementResult more = ok("INSERT INTO items VALUES (1001, 't1001'), (1002, 't1999'), (1003, 't0000')");
  EXPECT_EQ(query("SELECT tag FROM per_tag WHERE tag < 't1010'", waiting_for(more.offsets)),
            "'t0000'; 't1000'; 't1001'; 't1007'");
  StatementResult gone = ok("DELETE FROM items WHERE id = 1001");
  EXPECT_EQ(query("SELECT tag FROM per_tag WHERE tag < 't1010'", waiting_for(gone.offsets)),
            "'t0000'; 't1000'; 't1007'");
  EXPECT_EQ(query("SELECT tag FROM per_tag WHERE tag > 't1190'"), "'t1196'; 't1999'");
}

TEST_F(EngineTest, RefreshReportsNoDifferences) {
  ok(kOrders);
  ok(kByCustomer);
  StatementResult ins = ok(kOrderRows);
  ok("SELECT 1 FROM by_customer", waiting_for(ins.offsets));
  StatementResult refresh = ok("REFRESH MATERIALIZED VIEW by_customer");
  EXPECT_EQ(refresh.command, "REFRESH MATERIALIZED VIEW");
  EXPECT_EQ(joined(refresh.columns), "events,rows,differences");
  EXPECT_EQ(rows_of(refresh), "4 3 0");
  auto again = engine_->rebuild("by_customer");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value().events, 4);
  EXPECT_EQ(again.value().rows, 3);
  EXPECT_EQ(again.value().differences, 0);
  // The view keeps working after a rebuild.
  EXPECT_EQ(query("INSERT INTO orders VALUES (9, 'alice', 1, 100); SELECT n, hi FROM by_customer WHERE customer = 'alice'"),
            "3 d100");
  EXPECT_EQ(fails("REFRESH MATERIALIZED VIEW nope").code, "42P01");
  EXPECT_FALSE(engine_->rebuild("nope").ok());
}

TEST_F(EngineTest, MalformedRecordsAreCountedWithPartitionAndOffset) {
  ok("CREATE TABLE events (id bigint, name text) WITH (partitions = 2)");
  ok("CREATE MATERIALIZED VIEW names AS SELECT name, count(*) AS n FROM events GROUP BY name");
  int64_t last = produce("events", 1,
                         {R"({"id": 1, "name": "a"})", std::string("not json"), R"({"id": "x", "name": "b"})",
                          R"({"id": 3, "name": "a", "extra": true})", std::nullopt, R"({"id": 4})"});
  ASSERT_EQ(last, 5);
  EXPECT_EQ(query("SELECT * FROM names", waiting_for({{"events", 1, last}})), "'a' 2");
  ViewStatus st = *engine_->view_status("names");
  EXPECT_EQ(st.events, 6);
  EXPECT_EQ(st.errors, 4);
  ASSERT_EQ(st.recent_errors.size(), 4u);
  std::vector<std::pair<int64_t, std::string>> want = {{1, "not a JSON object"},
                                                       {2, "field \"id\" is not of type bigint"},
                                                       {4, "null value (a tombstone) in an append-only table"},
                                                       {5, "missing field \"name\""}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(st.recent_errors[i].partition, 1) << i;
    EXPECT_EQ(st.recent_errors[i].offset, want[i].first) << i;
    EXPECT_EQ(st.recent_errors[i].reason, want[i].second) << i;
  }
  EXPECT_EQ(st.state, "live");
  EXPECT_EQ(st.failure, "");
  StatementResult show = ok("SHOW VIEWS");
  ASSERT_EQ(show.rows.size(), 1u);
  EXPECT_EQ(joined(show.columns),
            "name,source,state,progress,rows,events,events_per_second,lag_records,lag_ms,errors,last_error");
  EXPECT_EQ(repr(show.rows[0][9]), "4");
  EXPECT_EQ(repr(show.rows[0][10]), "'partition 1 offset 5: missing field \"name\"'");

  // Only the last five are kept; the count keeps growing.
  last = produce("events", 0, {std::string("[]"), std::string("1"), std::string("{"), R"({"id": 5, "name": "c"})"});
  EXPECT_EQ(query("SELECT * FROM names ORDER BY name", waiting_for({{"events", 0, last}})), "'a' 2; 'c' 1");
  st = *engine_->view_status("names");
  EXPECT_EQ(st.errors, 7);
  ASSERT_EQ(st.recent_errors.size(), 5u);
  EXPECT_EQ(st.recent_errors.front().partition, 1);
  EXPECT_EQ(st.recent_errors.front().offset, 4);
  EXPECT_EQ(st.recent_errors.back().partition, 0);
  EXPECT_EQ(st.recent_errors.back().offset, 2);
  EXPECT_EQ(st.offsets, (std::vector<int64_t>{4, 6}));

  // A rebuild recounts the same events and finds the same state.
  auto rebuilt = engine_->rebuild("names");
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt.value().events, 10);
  EXPECT_EQ(rebuilt.value().differences, 0);
  EXPECT_EQ(engine_->view_status("names")->errors, 7);
  // The error count is part of the checkpoint.
  reopen();
  EXPECT_EQ(engine_->view_status("names")->errors, 7);
}

TEST_F(EngineTest, OnErrorStopMarksTheViewFailed) {
  ok("CREATE TABLE events (id bigint, name text)");
  ok("CREATE MATERIALIZED VIEW strict WITH (on_error = 'stop') AS SELECT name, count(*) AS n FROM events GROUP BY name");
  ok("CREATE MATERIALIZED VIEW lenient WITH (on_error = 'skip') AS SELECT name, count(*) AS n FROM events GROUP BY name");
  int64_t first = produce("events", 0, {R"({"id": 1, "name": "a"})"});
  EXPECT_EQ(query("SELECT * FROM strict", waiting_for({{"events", 0, first}})), "'a' 1");
  int64_t last = produce("events", 0, {std::string("garbage"), R"({"id": 3, "name": "a"})"});
  ViewStatus st = status_when("strict", [](const ViewStatus& s) { return s.state == "failed"; });
  EXPECT_EQ(st.state, "failed");
  EXPECT_EQ(st.failure, "malformed event at partition 0 offset 1: not a JSON object");
  EXPECT_EQ(st.errors, 1);
  // The lenient view skips the event and goes on.
  EXPECT_EQ(query("SELECT * FROM lenient", waiting_for({{"events", 0, last}})), "'a' 2");
  EXPECT_EQ(engine_->view_status("lenient")->state, "live");
  // A read that must wait for the failed view fails with 57014 and says why.
  sql::SqlError e = fails("SELECT * FROM strict", waiting_for({{"events", 0, last + 5}}, 200));
  EXPECT_EQ(e.code, "57014");
  EXPECT_NE(e.message.find("view strict failed: malformed event at partition 0 offset 1"), std::string::npos)
      << e.message;
  StatementResult show = ok("SHOW VIEWS");
  ASSERT_EQ(show.rows.size(), 2u);
  EXPECT_EQ(repr(show.rows[1][0]), "'strict'");
  EXPECT_EQ(repr(show.rows[1][2]), "'failed'");
  EXPECT_EQ(repr(show.rows[1][10]), "'malformed event at partition 0 offset 1: not a JSON object'");

  EXPECT_EQ(fails("CREATE MATERIALIZED VIEW bad WITH (on_error = 'maybe') AS SELECT name FROM events").code, "22023");
  EXPECT_EQ(fails("CREATE MATERIALIZED VIEW bad WITH (colour = 'red') AS SELECT name FROM events").code, "22023");
}

// Regression test for a fixed bug: on_error = 'stop' does not stop at the malformed event.
// record_error() sets the failure, but process_some() checks it only
// before each partition, so the rest of the records read in the same
// batch are still applied and the view's offset moves past the bad event
// (here the view counts {"id": 3} after the failure at offset 1: n = 2,
// offsets = {3}). The failure is also not part of the checkpoint: after a
// restart the view is "live" again, silently past the event it stopped at.
TEST_F(EngineTest, OnErrorStopAppliesNothingAfterTheBadEventAndStaysFailed) {
  ok("CREATE TABLE events (id bigint, name text)");
  ok("CREATE MATERIALIZED VIEW strict WITH (on_error = 'stop') AS SELECT name, count(*) AS n FROM events GROUP BY name");
  produce("events", 0, {R"({"id": 1, "name": "a"})", std::string("garbage"), R"({"id": 3, "name": "a"})"});
  ViewStatus st = status_when("strict", [](const ViewStatus& s) { return s.state == "failed"; });
  EXPECT_EQ(query("SELECT n FROM strict"), "1");
  EXPECT_EQ(st.offsets, (std::vector<int64_t>{1}));
  EXPECT_EQ(st.events, 2);
  reopen();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(engine_->view_status("strict")->state, "failed");
}

// Regression test for a fixed bug: a read that waits on a failed view blocks for its whole
// timeout (default 5 s): View::wait_applied()'s predicate only compares
// offsets, so the failure is noticed only after the deadline, although a
// failed view never advances.
TEST_F(EngineTest, ReadOfAFailedViewFailsFast) {
  ok("CREATE TABLE events (id bigint, name text)");
  ok("CREATE MATERIALIZED VIEW strict WITH (on_error = 'stop') AS SELECT name, count(*) AS n FROM events GROUP BY name");
  int64_t last = produce("events", 0, {std::string("garbage")});
  status_when("strict", [](const ViewStatus& s) { return s.state == "failed"; });
  auto t0 = Clock::now();
  EXPECT_EQ(fails("SELECT * FROM strict", waiting_for({{"events", 0, last + 1}}, 3000)).code, "57014");
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(500));
}

TEST_F(EngineTest, ReadYourWritesTimesOutWith57014) {
  ok(kOrders);
  ok("CREATE TABLE accounts (id bigint, tier text) WITH (key = 'id', envelope = 'upsert')");
  ok(kByCustomer);
  ok("CREATE MATERIALIZED VIEW histogram AS SELECT n, count(*) AS customers FROM by_customer GROUP BY n");
  StatementResult ins = ok(kOrderRows);
  EXPECT_EQ(query("SELECT count(*) FROM by_customer", waiting_for(ins.offsets)), "3");

  for (const char* sql : {"SELECT * FROM by_customer", "SELECT * FROM histogram"}) {
    auto t0 = Clock::now();
    sql::SqlError e = fails(sql, waiting_for({{"orders", 0, 1000}}, 150));
    auto waited = Clock::now() - t0;
    EXPECT_EQ(e.code, "57014") << sql << ": " << e.message;
    EXPECT_NE(e.message.find("read-your-writes"), std::string::npos) << e.message;
    EXPECT_GE(waited, std::chrono::milliseconds(140)) << sql;
    EXPECT_LT(waited, std::chrono::milliseconds(2000)) << sql;
  }
  sql::SqlError table = fails("SELECT * FROM accounts", waiting_for({{"accounts", 0, 50}}, 150));
  EXPECT_EQ(table.code, "57014");
  // Offsets already reached do not wait.
  auto t0 = Clock::now();
  EXPECT_EQ(query("SELECT count(*) FROM by_customer", waiting_for(ins.offsets, 150)), "3");
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(140));
  // Waiting on a topic the view does not read does not block it.
  EXPECT_EQ(query("SELECT count(*) FROM by_customer", waiting_for({{"accounts", 0, 99}}, 150)), "3");
}

TEST_F(EngineTest, DropWithDependentsNeedsCascade) {
  ok(kOrders);
  ok("CREATE MATERIALIZED VIEW per_customer AS SELECT customer, count(*) AS n FROM orders GROUP BY customer");
  ok("CREATE MATERIALIZED VIEW histogram AS SELECT n, count(*) AS customers FROM per_customer GROUP BY n");
  ok("CREATE INDEX orders_by_customer ON orders (customer)");
  ok(std::string(kOrderRows) + "; SELECT * FROM histogram");

  sql::SqlError table = fails("DROP TABLE orders");
  EXPECT_EQ(table.code, "2BP01");
  EXPECT_EQ(table.message, "cannot drop orders because per_customer depends on it (use CASCADE)");
  sql::SqlError view = fails("DROP MATERIALIZED VIEW per_customer");
  EXPECT_EQ(view.code, "2BP01");
  EXPECT_EQ(view.message, "cannot drop per_customer because histogram depends on it (use CASCADE)");
  EXPECT_EQ(fails("DROP TABLE nope").code, "42P01");
  EXPECT_EQ(fails("DROP MATERIALIZED VIEW orders").code, "42P01");
  EXPECT_EQ(ok("DROP TABLE IF EXISTS nope").command, "DROP TABLE");
  // Nothing was dropped by the failed statements.
  EXPECT_EQ(query("SELECT * FROM histogram ORDER BY n"), "1 2; 2 1");

  EXPECT_EQ(ok("DROP INDEX orders_by_customer").command, "DROP INDEX");
  EXPECT_EQ(query("SHOW INDEXES"), "");
  EXPECT_EQ(ok("DROP MATERIALIZED VIEW per_customer CASCADE").command, "DROP MATERIALIZED VIEW");
  EXPECT_EQ(query("SHOW VIEWS"), "");
  EXPECT_EQ(fails("SELECT * FROM histogram").code, "42P01");
  EXPECT_FALSE(log_->describe_topic("_evert.view.per_customer").has_value());
  EXPECT_FALSE(log_->describe_topic("_evert.view.histogram").has_value());

  // A view of the same name starts over from the log.
  ok("CREATE MATERIALIZED VIEW per_customer AS SELECT customer, count(*) AS n FROM orders GROUP BY customer");
  EXPECT_EQ(query("SELECT * FROM per_customer", waiting_for({{"orders", 0, 1}, {"orders", 1, 1}})),
            "'alice' 2; 'bob' 1; 'carol' 1");
  EXPECT_EQ(ok("DROP TABLE orders CASCADE").command, "DROP TABLE");
  EXPECT_EQ(query("SHOW TABLES"), "");
  EXPECT_EQ(query("SHOW VIEWS"), "");
  // The catalog forgets them across a restart too.
  reopen();
  EXPECT_EQ(query("SHOW TABLES"), "");
  EXPECT_EQ(fails("SELECT * FROM per_customer").code, "42P01");
}

TEST_F(EngineTest, StatementErrorsCarrySqlstateAndPosition) {
  ok(kOrders);
  ok(kByCustomer);
  std::string sql = "SELECT 1; SELECT nope FROM orders; SELECT 2";
  ExecuteResult r = run(sql);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->code, "42703");
  EXPECT_EQ(r.error->position, int(sql.find("nope")));
  EXPECT_EQ(r.results.size(), 1u);  // the statements before the error ran

  std::string missing = "SELECT * FROM orders; SELECT * FROM ghosts";
  sql::SqlError e = fails(missing);
  EXPECT_EQ(e.code, "42P01");
  EXPECT_EQ(e.message, "relation \"ghosts\" does not exist");
  EXPECT_EQ(e.position, int(missing.find("ghosts")));
  EXPECT_EQ(http_status_for(e.code), 404);

  EXPECT_EQ(fails(kOrders).code, "42P07");
  EXPECT_EQ(http_status_for("42P07"), 409);
  EXPECT_EQ(ok(std::string(kOrders).insert(13, "IF NOT EXISTS ")).command, "CREATE TABLE");
  EXPECT_EQ(fails("CREATE TABLE other (a bigint) WITH (topic = 'orders')").code, "42710");
  EXPECT_EQ(fails("CREATE TABLE u (a bigint) WITH (envelope = 'upsert')").code, "22023");
  EXPECT_EQ(fails("CREATE TABLE u (a bigint) WITH (partitions = 0)").code, "22023");
  EXPECT_EQ(fails("CREATE TABLE u (a bigint) WITH (colour = 'red')").code, "22023");
  EXPECT_EQ(fails("CREATE TABLE u (a bigint, a text)").code, "42701");
  EXPECT_EQ(fails("CREATE TABLE _evert_x (a bigint)").code, "42939");
  std::string over_missing = "CREATE MATERIALIZED VIEW v AS SELECT a FROM ghosts";
  EXPECT_EQ(fails(over_missing).code, "42P01");
  EXPECT_EQ(fails(over_missing).position, int(over_missing.find("ghosts")));
  EXPECT_EQ(fails("CREATE MATERIALIZED VIEW v AS SELECT 1 AS one").code, "0A000");
  EXPECT_EQ(fails(kByCustomer).code, "42P07");

  std::string bad_value = "INSERT INTO orders VALUES (1, 'a', 'many', 1.0)";
  sql::SqlError bv = fails(bad_value);
  EXPECT_EQ(bv.code, "22P02");
  EXPECT_EQ(bv.message, "invalid input syntax for type bigint: \"many\"");
  EXPECT_EQ(bv.position, int(bad_value.find("'many'")));
  EXPECT_EQ(fails("INSERT INTO orders VALUES (1, 'a')").code, "42601");
  EXPECT_EQ(fails("INSERT INTO orders VALUES (1, 'a', 1, 1.0, 5)").code, "42601");
  EXPECT_EQ(fails("INSERT INTO orders (id, nope) VALUES (1, 2)").code, "42703");
  EXPECT_EQ(fails("INSERT INTO orders (id, id) VALUES (1, 2)").code, "42701");
  EXPECT_EQ(fails("INSERT INTO orders VALUES (9223372036854775807 + 1, 'a', 1, 1.0)").code, "22003");
  EXPECT_EQ(fails("INSERT INTO by_customer VALUES ('x', 1)").code, "42809");
  // Text and numbers are coerced into the column types.
  EXPECT_EQ(ok("INSERT INTO orders VALUES ('7', 'dan', 2.0, 3)").rows_affected, 1);
  EXPECT_EQ(query("SELECT id, qty, price FROM orders"), "7 2 d3");
  EXPECT_EQ(fails("SELECT 1/0").code, "22012");
  EXPECT_EQ(fails("").code, "42601");
  EXPECT_EQ(fails("SELEC 1").code, "42601");
}

TEST_F(EngineTest, IndexAndMultiColumnKeyLookups) {
  ok(kOrders);
  ok("CREATE INDEX ON orders (customer)");
  ok("CREATE MATERIALIZED VIEW pairs AS SELECT customer, qty, count(*) AS n FROM orders GROUP BY customer, qty");
  StatementResult ins = ok(kOrderRows);
  EXPECT_EQ(query("SELECT id FROM orders WHERE customer = 'alice' ORDER BY id", waiting_for(ins.offsets)), "1; 3");
  EXPECT_EQ(query("SELECT id FROM orders WHERE customer = 'zed'", waiting_for(ins.offsets)), "");
  EXPECT_EQ(query("EXPLAIN SELECT id FROM orders WHERE customer = 'alice'"),
            "'select: index lookup with orders_customer_idx on customer = ...'; '  -> filter (customer = 'alice')'");
  EXPECT_EQ(query("SELECT * FROM pairs", waiting_for(ins.offsets)),
            "'alice' 2 1; 'alice' 3 1; 'bob' 1 1; 'carol' NULL 1");
  auto hit = engine_->lookup("pairs", R"(["alice", 3])");
  ASSERT_TRUE(hit.ok()) << hit.error().message;
  EXPECT_EQ(rows_of(hit.value()), "'alice' 3 1");
  auto numeric_text = engine_->lookup("pairs", R"(["bob", "1"])");
  ASSERT_TRUE(numeric_text.ok()) << numeric_text.error().message;
  EXPECT_EQ(rows_of(numeric_text.value()), "'bob' 1 1");
  auto not_array = engine_->lookup("pairs", "alice");
  ASSERT_FALSE(not_array.ok());
  EXPECT_EQ(not_array.error().code, "22P02");
  auto wrong_size = engine_->lookup("pairs", R"(["alice"])");
  ASSERT_FALSE(wrong_size.ok());
  EXPECT_EQ(wrong_size.error().code, "22P02");
  EXPECT_EQ(query("SELECT n FROM pairs WHERE customer = 'alice' AND qty = 2"), "1");
  EXPECT_EQ(query("EXPLAIN SELECT n FROM pairs WHERE customer = 'alice' AND qty = 2").rfind(
                "'select: point lookup on the key of view pairs'", 0),
            0u);
  EXPECT_EQ(fails("SELECT * FROM orders_customer_idx").code, "42809");
  EXPECT_EQ(fails("CREATE INDEX i2 ON pairs (customer)").code, "0A000");
  EXPECT_EQ(fails("CREATE INDEX i2 ON orders (nope)").code, "42703");
}

}  // namespace
}  // namespace evert::views

namespace evert::views {
namespace {

// Creates a view over many events and drops it while it is still
// backfilling. Returns 0 when DROP returns; exits the process with 1 if
// DROP is still blocked after 5 s (run it in a child process).
int drop_during_backfill() {
  testing::TempDir dir;
  log::LogOptions lo;
  lo.data_dir = dir.path() + "/log";
  lo.flush.kind = log::FlushPolicy::Kind::kNone;
  lo.background = false;
  lo.sync_threads = 1;
  log::OpenReport report;
  auto log = std::move(log::LogManager::open(lo, &report)).value();
  EngineOptions eo;
  eo.state_dir = dir.path() + "/state";
  eo.log = log.get();
  auto engine = std::move(Engine::open(eo)).value();
  Engine* e = engine.get();
  log->set_append_listener(1, [e](const std::string& topic, int32_t, int64_t) { e->on_append(topic); });
  int code = 0;
  if (e->execute("CREATE TABLE events (id bigint, name text)", {}).error) code = 2;
  auto part = log->partition("events", 0);
  for (int b = 0; b < 200 && code == 0; ++b) {
    log::BatchBuilder bb(1700000000000);
    for (int i = 0; i < 1000; ++i) {
      std::string v = "{\"id\":" + std::to_string(b * 1000 + i) + ",\"name\":\"n" + std::to_string(i % 5000) + "\"}";
      bb.add(std::nullopt, v, 1700000000000);
    }
    std::string batch = bb.finish();
    if (!part->append(MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()), batch.size())).is_ok()) code = 2;
  }
  if (code == 0 &&
      e->execute("CREATE MATERIALIZED VIEW names AS SELECT name, count(*) AS n FROM events GROUP BY name", {}).error)
    code = 2;
  // Returns once the first read of the backfill is applied (long before it is committed).
  if (code == 0 && e->execute("SELECT count(*) FROM names", waiting_for({{"events", 0, 0}})).error) code = 2;
  // Normally still "backfilling" here (170k events to go); if a slow machine
  // let it catch up, the DROP below merely tests less.
  if (code == 0) {
    auto dropped = std::async(std::launch::async, [e] { return e->execute("DROP MATERIALIZED VIEW names", {}); });
    if (dropped.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      std::fprintf(stderr, "DROP MATERIALIZED VIEW is still blocked after 5 s\n");
      std::_Exit(1);
    }
    if (dropped.get().error) code = 3;
  }
  log->set_append_listener(1, nullptr);
  engine->close();
  (void)log->close();
  return code;
}

// Regression test: DROP runs under the catalog lock (unique Impl::mu) and
// View::stop() joins the view's thread, whose final commit() appends the
// pending changelog records; that append calls the log's listener ->
// Engine::on_append(). When on_append() took the catalog lock, this
// deadlocked for any view with uncommitted changelog output (up to 5 ms
// after a change when live, the whole backfill otherwise). Run in a child
// process so that a hang is a failure, not a hung suite.
TEST(EngineDeathTest, DropOfABackfillingViewDoesNotDeadlock) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::_Exit(drop_during_backfill()), ::testing::ExitedWithCode(0), "");
}

// The views over an append table that a backfill decodes on other threads
// (ParallelDecoder) against the same views decoded by their own thread:
// stretches of 7 records in blocks of 3, so that stretches, blocks and the
// producer's batches end in different places, with malformed events and
// tombstones among them, over three partitions.
TEST_F(EngineTest, DecodingAheadAgreesWithTheViewsOwnThread) {
  decode_ahead_ = DecodeAhead{2, 1, 7, 3};
  reopen();
  ok("CREATE TABLE ev (id bigint, g text, v int, x double) WITH (partitions = 3)");
  std::mt19937 rng(20261127);
  int64_t bad = 0, total = 0;
  std::vector<TopicOffset> last =
      produce_random("ev", rng, [&](int64_t id, int, bool* malformed) -> std::optional<std::string> {
        switch (rng() % 12) {
          case 0: *malformed = true; return std::string("garbage");
          case 1: *malformed = true; return std::nullopt;
          case 2: *malformed = true; return fmt::format(R"({{"id": {}}})", id);  // g, v, x missing
          case 3: *malformed = true; return fmt::format(R"({{"id": {}, "g": "a", "v": "x", "x": 1}})", id);
          case 4: return fmt::format(R"({{"id": {}, "g": "g{}", "v": null, "x": 0.5}})", id, rng() % 5);
          default:
            return fmt::format(R"({{"id": {}, "g": "g{}", "v": {}, "x": {}}})", id, rng() % 13, int(rng() % 101) - 50,
                               double(rng() % 1000) / 8);
        }
      }, &total, &bad);
  const std::vector<std::string> views = {
      "AS SELECT g, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi, avg(x) AS ax, "
      "count(DISTINCT v) AS dv FROM ev WHERE v > -40 OR v IS NULL GROUP BY g",
      "AS SELECT count(*) AS n, sum(v) AS s, count(x) AS nx FROM ev",
      "AS SELECT v * 2 AS twice, count(*) AS n FROM ev WHERE NOT g = 'g3' GROUP BY v * 2",
  };
  auto results = [&](const std::string& suffix) -> std::vector<std::string> {
    std::vector<std::string> out;
    for (size_t i = 0; i < views.size(); ++i) {
      std::string name = fmt::format("v{}_{}", i, suffix);
      ok(fmt::format("CREATE MATERIALIZED VIEW {} {}", name, views[i]));
      out.push_back(query(fmt::format("SELECT * FROM {} ORDER BY 1", name), waiting_for(last, 20000)));
      ViewStatus st = status_when(name, [](const ViewStatus& s) { return s.state == "live"; });
      EXPECT_EQ(st.errors, bad) << name;
      EXPECT_EQ(st.events, total) << name;
      if (suffix == "ahead") {
        EXPECT_GT(st.decoded_ahead, 0) << name;
        expect_rebuild_agrees(name, total, fmt::format("SELECT * FROM {} ORDER BY 1", name), out.back());
      } else {
        EXPECT_EQ(st.decoded_ahead, 0) << name;
      }
    }
    return out;
  };
  std::vector<std::string> ahead = results("ahead");
  decode_ahead_.threads = 0;
  reopen();
  std::vector<std::string> own = results("own");
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(ahead[i], own[i]) << views[i];
    EXPECT_FALSE(own[i].empty()) << views[i];
  }
  EXPECT_GT(bad, 0);
}

// on_error = 'stop' when the bad event comes from a block decoded ahead:
// the view applies what came before it in the same block, stops at it, and
// stays there.
TEST_F(EngineTest, DecodingAheadStopsAtTheBadEvent) {
  decode_ahead_ = DecodeAhead{2, 1, 4, 3};
  reopen();
  ok("CREATE TABLE events (id bigint, name text)");
  produce("events", 0, {R"({"id": 1, "name": "a"})", R"({"id": 2, "name": "a"})", R"({"id": 3, "name": "b"})",
                        R"({"id": 4, "name": "a"})", R"({"id": 5, "name": "b"})", std::string("garbage"),
                        R"({"id": 7, "name": "a"})", R"({"id": 8, "name": "a"})"});
  ok("CREATE MATERIALIZED VIEW strict WITH (on_error = 'stop') AS SELECT name, count(*) AS n FROM events GROUP BY name");
  ViewStatus st = status_when("strict", [](const ViewStatus& s) { return s.state == "failed"; });
  EXPECT_EQ(st.failure, "malformed event at partition 0 offset 5: not a JSON object");
  EXPECT_EQ(query("SELECT * FROM strict ORDER BY name"), "'a' 3; 'b' 2");
  EXPECT_EQ(st.offsets, (std::vector<int64_t>{5}));
  EXPECT_EQ(st.events, 6);
  EXPECT_GT(st.decoded_ahead, 0);
  reopen();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(engine_->view_status("strict")->state, "failed");
  EXPECT_EQ(query("SELECT * FROM strict ORDER BY name"), "'a' 3; 'b' 2");
}

// Views of COUNT, SUM and AVG that sum their events per group before the
// groups (PartialAggregation, here from the first record and with at most
// three keys between folds, so that folds come often and mid-block) agree
// with the same views applying every event to its group, with and without
// decoding ahead: nulls, malformed events, a filter, an expression key, no
// GROUP BY, keys too long for a slot, and sums that leave int64 between
// folds. A view with MIN or a double SUM is never summed.
TEST_F(EngineTest, PartialAggregationAgreesWithApplyingEachEvent) {
  ok("CREATE TABLE ev (id bigint, g text, v bigint, x double, t text) WITH (partitions = 3)");
  std::mt19937 rng(20261128);
  int64_t bad = 0, total = 0;
  const int64_t kBig = 4'000'000'000'000'000'000;  // three of them leave int64
  // First, four events whose sum leaves int64 within one stretch and one table.
  for (int i = 0; i < 4; ++i, ++total) {
    produce("ev", 0, {fmt::format(R"({{"id": {}, "g": "big", "v": {}, "x": 1, "t": "t"}})", total, kBig)});
  }
  std::vector<TopicOffset> last =
      produce_random("ev", rng, [&](int64_t id, int batch, bool* malformed) -> std::optional<std::string> {
        std::string t = fmt::format("a key longer than a slot holds {}", rng() % 4);
        switch (rng() % 12) {
          case 0: *malformed = true; return std::string("garbage");
          case 1: *malformed = true; return std::nullopt;
          case 2: *malformed = true; return fmt::format(R"({{"id": {}}})", id);
          case 3: *malformed = true; return fmt::format(R"({{"id": {}, "g": "a", "v": "x", "x": 1, "t": ""}})", id);
          case 4: return fmt::format(R"({{"id": {}, "g": "g{}", "v": null, "x": 0.5, "t": "{}"}})", id, rng() % 5, t);
          case 5:  // +kBig and -kBig by turns of three batches
            return fmt::format(R"({{"id": {}, "g": "big", "v": {}, "x": 1, "t": "{}"}})", id,
                               (batch / 3) % 2 == 0 ? kBig : -kBig, t);
          default:
            return fmt::format(R"({{"id": {}, "g": "g{}", "v": {}, "x": {}, "t": "{}"}})", id, rng() % 13,
                               int(rng() % 101) - 50, double(rng() % 1000) / 8, t);
        }
      }, &total, &bad);
  struct Case {
    std::string sql;
    bool sums;  // PartialAggregates::suits
  };
  const std::vector<Case> views = {
      {"AS SELECT g, count(*) AS n, count(v) AS nv, sum(v) AS s, avg(v) AS av, count(x) AS nx FROM ev "
       "WHERE v > -40 OR v IS NULL GROUP BY g", true},
      {"AS SELECT count(*) AS n, sum(v) AS s FROM ev", true},
      {"AS SELECT v * 2 AS twice, count(*) AS n FROM ev WHERE NOT g = 'g3' GROUP BY v * 2", true},
      {"AS SELECT t, g, count(*) AS n, sum(id) AS ids FROM ev GROUP BY t, g", true},
      {"AS SELECT g, sum(x) AS sx, min(v) AS lo FROM ev GROUP BY g", false},
  };
  auto results = [&](const std::string& suffix, bool summing) -> std::vector<std::string> {
    std::vector<std::string> out;
    for (size_t i = 0; i < views.size(); ++i) {
      std::string name = fmt::format("v{}_{}", i, suffix);
      ok(fmt::format("CREATE MATERIALIZED VIEW {} {}", name, views[i].sql));
      out.push_back(query(fmt::format("SELECT * FROM {} ORDER BY 1, 2", name), waiting_for(last, 20000)));
      ViewStatus st = status_when(name, [](const ViewStatus& s) { return s.state == "live"; });
      EXPECT_EQ(st.errors, bad) << name;
      EXPECT_EQ(st.events, total) << name;
      if (summing && views[i].sums) {
        EXPECT_GT(st.summed_ahead, 0) << name;
      } else {
        EXPECT_EQ(st.summed_ahead, 0) << name;
      }
      // Decoded ahead, every record comes from the decoding threads: none
      // is left for the view to read itself (it would, at a gap).
      if (decode_ahead_.threads > 0) {
        EXPECT_EQ(st.decoded_ahead, total) << name;
      }
      expect_rebuild_agrees(name, total, fmt::format("SELECT * FROM {} ORDER BY 1, 2", name), out.back());
    }
    return out;
  };
  partial_ = PartialAggregation{1, std::chrono::milliseconds(60000), 3, 5};
  decode_ahead_.threads = 0;
  reopen();
  std::vector<std::string> summed = results("summed", true);
  decode_ahead_ = DecodeAhead{2, 1, 7, 3};
  reopen();
  std::vector<std::string> summed_ahead = results("summed_ahead", true);
  partial_.min_records = -1;
  decode_ahead_.threads = 0;
  reopen();
  std::vector<std::string> each = results("each", false);
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(summed[i], each[i]) << views[i].sql;
    EXPECT_EQ(summed_ahead[i], each[i]) << views[i].sql;
    EXPECT_FALSE(each[i].empty()) << views[i].sql;
  }
  // The filter keeps only the +kBig events of group big: its sum left int64.
  EXPECT_NE(each[0].find("'big' 28 28 d1.12e+20 "), std::string::npos) << each[0];
  EXPECT_GT(bad, 0);
}

// on_error = 'stop' while summing ahead: the sums folded into the groups are
// those of the events before the bad one, reading alone and decoded ahead.
// (Such a view always sums on its own thread: make_decoder() does not let
// the decoding threads sum for it, since a block's sums would hold the
// events after the bad one too.)
TEST_F(EngineTest, PartialAggregationStopsAtTheBadEvent) {
  partial_ = PartialAggregation{1, std::chrono::milliseconds(60000), 1 << 10, 3};
  ok("CREATE TABLE events (id bigint, name text)");
  produce("events", 0, {R"({"id": 1, "name": "a"})", R"({"id": 2, "name": "a"})", R"({"id": 3, "name": "b"})",
                        R"({"id": 4, "name": "a"})", R"({"id": 5, "name": "b"})", std::string("garbage"),
                        R"({"id": 7, "name": "a"})", R"({"id": 8, "name": "a"})"});
  for (int threads : {0, 2}) {
    decode_ahead_ = DecodeAhead{threads, 1, 4, 3};
    reopen();
    std::string name = fmt::format("strict{}", threads);
    ok(fmt::format("CREATE MATERIALIZED VIEW {} WITH (on_error = 'stop') AS SELECT name, count(*) AS n, sum(id) AS ids "
                   "FROM events GROUP BY name",
                   name));
    // The view reports "failed" at the bad event, and its offsets and
    // counters once the batch before it is committed: wait for both.
    ViewStatus st = status_when(name, [](const ViewStatus& s) { return s.state == "failed" && !s.offsets.empty(); });
    EXPECT_EQ(st.failure, "malformed event at partition 0 offset 5: not a JSON object");
    EXPECT_EQ(query(fmt::format("SELECT * FROM {} ORDER BY name", name)), "'a' 3 7; 'b' 2 8");
    EXPECT_EQ(st.offsets, (std::vector<int64_t>{5}));
    EXPECT_EQ(st.events, 6);
    EXPECT_GT(st.summed_ahead, 0);
  }
}

// Groups are kept in RocksDB in a compact form (version 1) that leaves the
// key values to the group's RocksDB key unless that would not give them
// back exactly (a double: -0 and 0 encode alike). A restart must read back
// exactly what was there, for every aggregate and key type; and a group in
// the first form (version 0) must still be read.
TEST_F(EngineTest, GroupStateSurvivesARestartInEitherEncoding) {
  ok("CREATE TABLE m (k text, t timestamp, d double precision, b boolean, v bigint, x double precision)");
  ok("CREATE MATERIALIZED VIEW by_k AS SELECT k, count(*) AS n, count(v) AS nv, sum(v) AS sv, avg(v) AS av, "
     "sum(x) AS sx, min(x) AS lo, max(k) AS hi, count(DISTINCT v) AS dv FROM m GROUP BY k");
  ok("CREATE MATERIALIZED VIEW by_keys AS SELECT d, t, b, count(*) AS n, sum(x) AS sx FROM m GROUP BY d, t, b");
  ok("CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n, sum(v) AS sv FROM m");
  ok("CREATE MATERIALIZED VIEW old AS SELECT k, count(*) AS n, sum(v) AS sv FROM m GROUP BY k");
  ok("CREATE MATERIALIZED VIEW ds AS SELECT k, d FROM m WHERE d IS NOT NULL");
  // Sums past 64 bits, a double sum that needs its compensation, a -0 key
  // met before the 0 it shares a group with, a NUL in a key, nulls.
  int64_t last = produce(
      "m", 0,
      {R"({"k": "a", "t": "2024-01-01 00:00:00", "d": -0.0, "b": true, "v": 9223372036854775807, "x": 0.1})",
       R"({"k": "a", "t": "2024-01-01 00:00:00", "d": 0.0, "b": true, "v": 9223372036854775807, "x": 1e16})",
       R"({"k": "a\u0000b", "t": null, "d": 1.5, "b": false, "v": -3, "x": -0.0})",
       R"({"k": "", "t": "1969-12-31 23:59:59", "d": null, "b": null, "v": null, "x": null})",
       R"({"k": null, "t": "2024-01-01 00:00:00", "d": -2.5, "b": false, "v": 0, "x": 1})",
       R"({"k": "b", "t": null, "d": -0.0, "b": true, "v": -9223372036854775807, "x": -1e16})"});
  const auto applied = waiting_for({{"m", 0, last}});
  const std::vector<std::string> queries = {"SELECT * FROM by_k ORDER BY k", "SELECT * FROM by_keys ORDER BY d, t, b",
                                            "SELECT * FROM total", "SELECT * FROM ds ORDER BY d, k"};
  std::vector<std::string> before;
  for (const auto& q : queries) before.push_back(query(q, applied));
  EXPECT_NE(before[1].find("d-0 ts:2024-01-01 00:00:00 true 2"), std::string::npos) << before[1];
  EXPECT_EQ(query("SELECT n, sv FROM old WHERE k = 'a'", applied), "2 d1.8446744073709552e+19");
  using namespace std::string_literals;
  EXPECT_EQ(before[3], "NULL d-2.5; 'a' d-0; 'a' d0; 'b' d-0; 'a\0b' d1.5"s);
  for (const char* v : {"by_k", "by_keys", "total", "old", "ds"})
    status_when(v, [](const ViewStatus& s) { return s.events == 6 && s.state == "live"; });
  close_all();

  // Group 'a' of `old` rewritten in the first form, with other counts: the
  // restart must read them, not the source.
  {
    std::unique_ptr<rocksdb::DB> db;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    open_state_db(false, &db, &handles);
    auto be64 = [](std::string& out, uint64_t v) {
      for (int i = 7; i >= 0; --i) out.push_back(char(v >> (8 * i)));
    };
    std::string a_key;
    sql::encode_key(Value::text("a"), &a_key);
    // Every group is in version 1 form.
    std::vector<std::string> a_groups;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[1]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string k = it->key().ToString();
      if (k.size() >= 10 && k[9] == 'g') {  // the group of a view without GROUP BY too (an empty key)
        EXPECT_EQ(it->value()[0], '\x01') << "a group not in version 1 form";
      }
      if (k.size() == 10 + a_key.size() && k[9] == 'g' && k.substr(10) == a_key) a_groups.push_back(k);
    }
    it.reset();
    ASSERT_EQ(a_groups.size(), 2u);  // by_k's and old's, in the order the views were made
    std::string v0;
    be64(v0, 7);  // rows
    be64(v0, 2);  // aggregates
    for (uint64_t x : {0, 0, 0, 0, 0, 0}) be64(v0, x);  // count(*): all in `rows`
    for (uint64_t x : {5, 0, 70, 0, 0, 0}) be64(v0, x);  // sum(v): count, sum (high, low), doubles, no values
    sql::encode_row({Value::text("a")}, &v0);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[1], a_groups[1], v0).ok());
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }
  open_all();

  for (size_t i = 0; i < queries.size(); ++i) EXPECT_EQ(query(queries[i]), before[i]);
  EXPECT_EQ(query("SELECT n, sv FROM old WHERE k = 'a'"), "7 70");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  for (const char* v : {"by_k", "by_keys", "total", "old", "ds"}) {
    EXPECT_EQ(engine_->view_status(v)->events_since_start, 0) << v;  // nothing read again
  }
  for (const char* v : {"by_k", "by_keys", "total", "ds"}) {
    auto rebuilt = engine_->rebuild(v);
    ASSERT_TRUE(rebuilt.ok()) << v << ": " << rebuilt.error().message;
    EXPECT_EQ(rebuilt.value().differences, 0) << v;
  }
  // The group read in the first form goes on from its counts.
  StatementResult more = ok("INSERT INTO m (k, v) VALUES ('a', 1)");
  EXPECT_EQ(query("SELECT n, sv FROM old WHERE k = 'a'", waiting_for(more.offsets)), "8 71");
  for (size_t i = 0; i < queries.size(); ++i) EXPECT_NE(query(queries[i], waiting_for(more.offsets)), "");
}

// A backfill's first commit writes a marker as its changelog outbox, not
// the records: after a crash between the state's write and the changelog's
// append, they are rebuilt from the state, exactly as they were.
TEST_F(EngineTest, AFirstCommitsChangelogIsRebuiltFromItsState) {
  ok("CREATE TABLE events (id bigint, name text, x double precision)");
  int64_t last = -1;
  for (int from = 0; from < 20000; from += 5000) {  // batches under the topic's message size
    std::vector<std::optional<std::string>> values;
    for (int i = from; i < from + 5000; ++i) {
      std::string x = i == 0 ? "-0.0" : fmt::format("{}", i * 0.37);  // a -0 key, kept with its group
      values.push_back(fmt::format(R"({{"id": {}, "name": "n{}", "x": {}}})", i, i % 17000, x));
    }
    last = produce("events", 0, values);
  }
  // Two views whose first commit writes a marker; and one with HAVING,
  // whose records do not follow from its groups alone: it writes them.
  ok("CREATE MATERIALIZED VIEW per_name AS SELECT name, count(*) AS n, sum(x) AS sx, avg(x) AS ax, max(id) AS top "
     "FROM events GROUP BY name");
  ok("CREATE MATERIALIZED VIEW per_x AS SELECT x, count(*) AS n FROM events GROUP BY x");
  ok("CREATE MATERIALIZED VIEW twice AS SELECT name, count(*) AS n FROM events GROUP BY name HAVING count(*) > 1");
  const auto applied = waiting_for({{"events", 0, last}});
  EXPECT_EQ(query("SELECT count(*), sum(n) FROM per_name", applied), "17000 20000");
  EXPECT_EQ(query("SELECT count(*), sum(n) FROM per_x", applied), "20000 20000");
  EXPECT_EQ(query("SELECT n FROM per_x WHERE x = 0", applied), "1");
  EXPECT_EQ(query("SELECT count(*), sum(n) FROM twice", applied), "3000 6000");
  const std::vector<std::string> changelogs = {"_evert.view.per_name", "_evert.view.per_x", "_evert.view.twice"};
  const std::vector<size_t> sizes = {17000, 20000, 3000};
  std::vector<std::vector<log::test::TestRecord>> published;
  for (size_t v = 0; v < changelogs.size(); ++v) {
    const std::string name = changelogs[v].substr(std::string("_evert.view.").size());
    status_when(name, [](const ViewStatus& s) { return s.events == 20000 && s.state == "live"; });
    published.push_back(log::test::read_records(*log_->partition(changelogs[v], 0), 0));
    ASSERT_EQ(published.back().size(), sizes[v]) << name;
  }
  // per_x's -0 group shows -0.
  bool negative_zero = false;
  for (const auto& r : published[1]) negative_zero |= *r.value == R"({"key":[-0],"before":null,"after":{"x":-0,"n":1},"source_offsets":{"0":20000}})";
  EXPECT_TRUE(negative_zero);
  close_all();

  // The outboxes (in the default column family): two markers, one of records.
  {
    std::unique_ptr<rocksdb::DB> db;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    open_state_db(true, &db, &handles);
    int markers = 0, records = 0;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[0]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() == 10 && it->key()[0] == 'v' && it->key()[9] == 'o') {
        if (it->value()[16] == '\xff') {
          ++markers;
          EXPECT_LT(it->value().size(), 100u);
        } else {
          ++records;
          EXPECT_GT(it->value().size(), 3000u * 50);
        }
      }
    }
    it.reset();
    EXPECT_EQ(markers, 2);
    EXPECT_EQ(records, 1);
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }

  // The changelogs as a crash would have left them: none of the records, or
  // the first 1000 (not a batch's end).
  for (size_t kept : {size_t(0), size_t(1000)}) {
    close_all();
    {
      log::LogOptions lo;
      lo.data_dir = dir_.path() + "/log";
      lo.background = false;
      log::OpenReport report;
      auto log = log::LogManager::open(lo, &report);
      ASSERT_TRUE(log.is_ok()) << log.status().to_string();
      for (size_t v = 0; v < changelogs.size(); ++v) {
        ASSERT_TRUE((*log)->delete_topic(changelogs[v]).is_ok());
        ASSERT_TRUE((*log)->create_topic(changelogs[v], 1, {}).is_ok());
        // The view of records appends whole batches again: kept only where
        // the marker's rebuild can start anywhere.
        if (kept > 0 && v < 2) {
          log::BatchBuilder bb(published[v][0].timestamp);
          for (size_t i = 0; i < kept; ++i) bb.add(published[v][i].key, published[v][i].value, published[v][i].timestamp);
          std::string batch = bb.finish();
          ASSERT_TRUE((*log)->partition(changelogs[v], 0)->append(log::test::mutable_bytes(batch)).is_ok());
        }
      }
      ASSERT_TRUE((*log)->close().is_ok());
    }
    open_all();
    for (size_t v = 0; v < changelogs.size(); ++v) {
      EXPECT_EQ(log::test::read_records(*log_->partition(changelogs[v], 0), 0), published[v])
          << changelogs[v] << ", kept " << kept;
    }
    EXPECT_EQ(query("SELECT n, top FROM per_name WHERE name = 'n16999'"), "1 16999");
    EXPECT_EQ(engine_->view_status("per_name")->events_since_start, 0);
  }
  // And the view goes on from there.
  StatementResult more = ok("INSERT INTO events VALUES (20000, 'n5', 1.5)");
  EXPECT_EQ(query("SELECT n, top FROM per_name WHERE name = 'n5'", waiting_for(more.offsets)), "3 20000");
  EXPECT_EQ(log_->partition(changelogs[0], 0)->high_watermark(), 17001);
}

// A commit of more than 16,384 groups builds its changelog on a second
// thread (View::commit): a view over the view must see every group of it,
// and the groups' state must survive a restart.
TEST_F(EngineTest, ALargeFirstCommitPublishesEveryGroup) {
  ok("CREATE TABLE events (id bigint, name text)");
  std::vector<std::optional<std::string>> values;
  for (int i = 0; i < 20000; ++i) values.push_back(fmt::format(R"({{"id": {}, "name": "n{}"}})", i, i % 17000));
  int64_t last = produce("events", 0, values);
  ok("CREATE MATERIALIZED VIEW per_name AS SELECT name, count(*) AS n FROM events GROUP BY name");
  ok("CREATE MATERIALIZED VIEW histogram AS SELECT n, count(*) AS names FROM per_name GROUP BY n");
  EXPECT_EQ(query("SELECT count(*), sum(n) FROM per_name", waiting_for({{"events", 0, last}})), "17000 20000");
  auto histogram = [&] {
    std::string got;
    for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;) {
      got = query("SELECT * FROM histogram ORDER BY n");
      if (got == "1 14000; 2 3000") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return got;
  };
  EXPECT_EQ(histogram(), "1 14000; 2 3000");
  auto info = log_->describe_topic("_evert.view.per_name");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(log_->partition("_evert.view.per_name", 0)->high_watermark(), 17000);
  reopen();
  EXPECT_EQ(query("SELECT count(*), sum(n) FROM per_name"), "17000 20000");
  EXPECT_EQ(query("SELECT n FROM per_name WHERE name = 'n16999'"), "1");
  EXPECT_EQ(query("SELECT n FROM per_name WHERE name = 'n2999'"), "2");
  EXPECT_EQ(histogram(), "1 14000; 2 3000");
}

}  // namespace
}  // namespace evert::views
