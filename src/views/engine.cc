#include "views/engine.h"

#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <shared_mutex>

#include <fmt/format.h>
#include <simdjson.h>

#include "base/logging.h"
#include "log/log_manager.h"
#include "log/partition.h"
#include "log/record_batch.h"
#include "sql/parser.h"
#include "sql/plan.h"
#include "views/event_decoder.h"

namespace evert::views {

using sql::Row;
using sql::Schema;
using sql::SqlError;
using sql::throw_sql;
using sql::Type;
using sql::Value;

int http_status_for(const std::string& code) {
  if (code == "42P01" || code == "42704") return 404;
  if (code == "42P07" || code == "42710") return 409;
  if (code.rfind("XX", 0) == 0 || code.rfind("58", 0) == 0) return 500;
  return 400;
}

namespace {

constexpr size_t kInsertRowsMax = 100000;  // rows per INSERT statement
constexpr const char* kChangelogPrefix = "_evert.view.";

// Kafka's default partitioner hash (murmur2, as the Java client and KafkaJS
// compute it), so INSERT and those producers put a key on the same partition.
uint32_t murmur2(std::string_view data) {
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  uint32_t h = 0x9747b28c ^ uint32_t(data.size());
  size_t n4 = data.size() / 4;
  for (size_t i = 0; i < n4; ++i) {
    const auto* p = reinterpret_cast<const uint8_t*>(data.data()) + 4 * i;
    uint32_t k = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const auto* tail = reinterpret_cast<const uint8_t*>(data.data()) + 4 * n4;
  switch (data.size() % 4) {
    case 3: h ^= uint32_t(tail[2]) << 16; [[fallthrough]];
    case 2: h ^= uint32_t(tail[1]) << 8; [[fallthrough]];
    case 1:
      h ^= uint32_t(tail[0]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

void put_u64(std::string* out, uint64_t v) {
  for (int k = 7; k >= 0; --k) out->push_back(char((v >> (8 * k)) & 0xff));
}

uint64_t get_u64(std::string_view in) {
  uint64_t x = 0;
  for (size_t k = 0; k < 8 && k < in.size(); ++k) x = (x << 8) | uint8_t(in[k]);
  return x;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct TableEntry {
  std::string name;
  uint64_t id = 0;
  std::string sql;
  Schema schema;
  std::string topic;
  SourceKind envelope = SourceKind::kAppend;
  int key_column = -1;
  std::shared_ptr<View> state;  // upsert tables: the current rows by key
};

struct ViewEntry {
  std::string name;
  uint64_t id = 0;
  std::string sql;
  std::string source;  // a table or a view
  bool over_view = false;
  std::shared_ptr<View> view;
};

struct IndexEntry {
  std::string name;
  uint64_t id = 0;
  std::string sql;
  std::string table;
  std::string column;
  std::shared_ptr<View> view;
};

std::string option_text(const std::map<std::string, Value>& options, const std::string& name,
                        const std::string& fallback) {
  auto it = options.find(name);
  if (it == options.end()) return fallback;
  return sql::to_text(it->second);
}

}  // namespace

constexpr const char* kStateFamily = "state";

struct Engine::Impl {
  EngineOptions options;
  std::unique_ptr<rocksdb::DB> db;
  // The views' rows and groups (View::Deps::state); the catalog,
  // checkpoints and outboxes are in the default column family.
  rocksdb::ColumnFamilyHandle* state_cf = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;

  ~Impl() { close_db(); }
  void close_db() {
    for (auto* h : handles) {
      if (db) (void)db->DestroyColumnFamilyHandle(h);
    }
    handles.clear();
    state_cf = nullptr;
    db.reset();
  }
  mutable std::shared_mutex mu;  // the catalog
  std::map<std::string, std::shared_ptr<TableEntry>> tables;
  std::map<std::string, std::shared_ptr<ViewEntry>> views;
  std::map<std::string, std::shared_ptr<IndexEntry>> indexes;
  std::mutex ddl_mu;  // one DDL statement at a time
  std::atomic<uint64_t> round_robin{0};
  // Who to wake on an append to a topic. Its own lock, never held while
  // waiting: appends come from view runners that DDL may be joining.
  std::mutex wake_mu;
  std::multimap<std::string, std::weak_ptr<View>> wake_by_topic;

  void register_wake(const std::shared_ptr<View>& v) {
    std::lock_guard lock(wake_mu);
    wake_by_topic.emplace(v->spec().source.topic, v);
  }
  void unregister_wake(const View* v) {
    std::lock_guard lock(wake_mu);
    for (auto it = wake_by_topic.begin(); it != wake_by_topic.end();) {
      auto sp = it->second.lock();
      if (!sp || sp.get() == v) {
        it = wake_by_topic.erase(it);
      } else {
        ++it;
      }
    }
  }
  uint64_t next_id = 1;

  // ---- catalog persistence ----
  uint64_t allocate_id() {
    uint64_t id = next_id++;
    std::string v;
    put_u64(&v, next_id);
    auto s = db->Put(rocksdb::WriteOptions(), "n", v);
    if (!s.ok()) throw_sql("58030", "writing the catalog: " + s.ToString());
    return id;
  }

  void persist(char kind, const std::string& name, uint64_t id, const std::string& text) {
    std::string v(1, kind);
    put_u64(&v, id);
    v += text;
    auto s = db->Put(rocksdb::WriteOptions(), "c" + name, v);
    if (!s.ok()) throw_sql("58030", "writing the catalog: " + s.ToString());
  }

  void unpersist(const std::string& name) {
    auto s = db->Delete(rocksdb::WriteOptions(), "c" + name);
    if (!s.ok()) throw_sql("58030", "writing the catalog: " + s.ToString());
  }

  bool name_taken(const std::string& name) const {
    return tables.count(name) || views.count(name) || indexes.count(name);
  }

  // False when `name` exists and IF NOT EXISTS lets the statement do
  // nothing; 42P07 when it exists otherwise.
  bool claim_name(const std::string& name, bool if_not_exists) const {
    if (!name_taken(name)) return true;
    if (if_not_exists) return false;
    throw_sql("42P07", fmt::format("relation \"{}\" already exists", name));
  }

  View::Deps deps() { return View::Deps{options.log, db.get(), state_cf, options.decode_ahead, options.partial}; }

  std::shared_ptr<View> start_view(ViewSpec spec) {
    auto v = std::make_shared<View>(std::move(spec), deps());
    Status s = v->open();
    if (!s) throw_sql("58030", fmt::format("opening {}: {}", v->spec().name, s.to_string()));
    v->start();
    register_wake(v);
    return v;
  }

  // The schema and source a relation offers to a view reading it.
  SourceSpec source_of(const std::string& name, int location, bool* over_view) {
    if (auto t = tables.find(name); t != tables.end()) {
      *over_view = false;
      return SourceSpec{t->second->topic, t->second->envelope, t->second->schema, t->second->key_column};
    }
    if (auto v = views.find(name); v != views.end()) {
      *over_view = true;
      const ViewSpec& spec = v->second->view->spec();
      return SourceSpec{spec.changelog_topic, SourceKind::kChangelog, spec.plan.output, -1};
    }
    if (indexes.count(name)) throw_sql("42809", fmt::format("\"{}\" is an index", name), location);
    throw_sql("42P01", fmt::format("relation \"{}\" does not exist", name), location);
  }

  static sql::SelectPlan star_plan(const Schema& schema) {
    sql::SelectPlan plan;
    plan.input = schema;
    plan.output = schema;
    for (size_t i = 0; i < schema.size(); ++i) {
      auto col = std::make_shared<sql::Expr>();
      col->kind = sql::ExprKind::kColumn;
      col->column = int(i);
      col->name = schema[i].name;
      col->type = schema[i].type;
      plan.outputs.push_back(col);
    }
    return plan;
  }

  // ---- DDL ----
  StatementResult create_table(const sql::CreateTable& ct, const std::string& text, bool replay, uint64_t id) {
    if (!claim_name(ct.name, ct.if_not_exists && !replay)) return StatementResult{"CREATE TABLE"};
    if (ct.columns.empty()) throw_sql("42601", "a table needs at least one column");
    if (ct.name.rfind("_evert", 0) == 0) throw_sql("42939", "names starting with _evert are reserved");
    auto t = std::make_shared<TableEntry>();
    t->name = ct.name;
    t->sql = text;
    for (const auto& c : ct.columns) {
      if (sql::find_column(t->schema, c.name) >= 0)
        throw_sql("42701", fmt::format("column \"{}\" specified more than once", c.name), c.location);
      t->schema.push_back({c.name, c.type});
    }
    static const std::set<std::string> kOptions = {"topic", "partitions", "key", "envelope", "format"};
    for (const auto& [k, v] : ct.options) {
      if (!kOptions.count(k)) throw_sql("22023", fmt::format("unrecognized table option \"{}\"", k));
    }
    t->topic = option_text(ct.options, "topic", ct.name);
    std::string envelope = option_text(ct.options, "envelope", "append");
    std::string format = option_text(ct.options, "format", "json");
    if (format != "json") throw_sql("22023", fmt::format("unsupported format \"{}\" (only 'json')", format));
    if (envelope == "append") {
      t->envelope = SourceKind::kAppend;
    } else if (envelope == "upsert") {
      t->envelope = SourceKind::kUpsert;
    } else {
      throw_sql("22023", fmt::format("envelope must be 'append' or 'upsert', not \"{}\"", envelope));
    }
    std::string key = option_text(ct.options, "key", "");
    if (!key.empty()) {
      t->key_column = sql::find_column(t->schema, key);
      if (t->key_column < 0) throw_sql("42703", fmt::format("key column \"{}\" does not exist", key));
    }
    if (t->envelope == SourceKind::kUpsert && t->key_column < 0)
      throw_sql("22023", "an upsert table needs a key column: WITH (key = '<column>')");
    int64_t partitions = 1;
    if (auto it = ct.options.find("partitions"); it != ct.options.end()) {
      if (it->second.type != Type::kInt || it->second.i < 1 || it->second.i > 10000)
        throw_sql("22023", "partitions must be an integer from 1 to 10000");
      partitions = it->second.i;
    }
    if (t->topic.rfind("_evert", 0) == 0 || t->topic.rfind("__", 0) == 0)
      throw_sql("42939", fmt::format("topic \"{}\" is internal", t->topic));
    for (const auto& [n, other] : tables) {
      if (other->topic == t->topic)
        throw_sql("42710", fmt::format("topic \"{}\" is already bound to table \"{}\"", t->topic, n));
    }
    if (!options.log->describe_topic(t->topic)) {
      auto created = options.log->create_topic(t->topic, int32_t(partitions), {});
      if (!created && created.status().code() != ErrorCode::kAlreadyExists)
        throw_sql("58030", "creating topic: " + created.status().to_string());
    }
    t->id = replay ? id : allocate_id();
    if (t->envelope == SourceKind::kUpsert) {
      ViewSpec spec;
      spec.name = ct.name;
      spec.id = t->id;
      spec.kind = ViewKind::kTableState;
      spec.source = SourceSpec{t->topic, SourceKind::kUpsert, t->schema, t->key_column};
      spec.plan = star_plan(t->schema);
      t->state = start_view(std::move(spec));
    }
    if (!replay) persist('t', ct.name, t->id, text);
    tables[ct.name] = t;
    return StatementResult{"CREATE TABLE"};
  }

  StatementResult create_view(const sql::CreateView& cv, const std::string& text, bool replay, uint64_t id) {
    if (!claim_name(cv.name, cv.if_not_exists && !replay)) return StatementResult{"CREATE MATERIALIZED VIEW"};
    if (cv.name.rfind("_evert", 0) == 0) throw_sql("42939", "names starting with _evert are reserved");
    if (cv.query.from.empty()) throw_sql("0A000", "a view needs a FROM clause");
    bool over_view = false;
    SourceSpec source = source_of(cv.query.from, cv.query.from_location, &over_view);
    auto plan = sql::plan_select(cv.query, source.schema, true);
    bool stop_on_error = false;
    for (const auto& [k, v] : cv.options) {
      if (k == "on_error") {
        std::string policy = sql::to_text(v);
        if (policy != "skip" && policy != "stop") throw_sql("22023", "on_error must be 'skip' or 'stop'");
        stop_on_error = policy == "stop";
      } else {
        throw_sql("22023", fmt::format("unrecognized view option \"{}\"", k));
      }
    }
    auto e = std::make_shared<ViewEntry>();
    e->name = cv.name;
    e->sql = text;
    e->source = cv.query.from;
    e->over_view = over_view;
    e->id = replay ? id : allocate_id();
    std::string changelog = kChangelogPrefix + cv.name;
    if (!replay) {
      // A leftover changelog of a dropped view of the same name goes first.
      if (options.log->describe_topic(changelog)) (void)options.log->delete_topic(changelog);
      auto created = options.log->create_topic(changelog, 1, {});
      if (!created && created.status().code() != ErrorCode::kAlreadyExists)
        throw_sql("58030", "creating the changelog topic: " + created.status().to_string());
    }
    ViewSpec spec;
    spec.name = cv.name;
    spec.id = e->id;
    spec.kind = ViewKind::kView;
    spec.source = source;
    spec.plan = std::move(plan);
    spec.changelog_topic = changelog;
    spec.stop_on_error = stop_on_error;
    e->view = start_view(std::move(spec));
    if (!replay) persist('v', cv.name, e->id, text);
    views[cv.name] = e;
    return StatementResult{"CREATE MATERIALIZED VIEW"};
  }

  StatementResult create_index(const sql::CreateIndex& ci, const std::string& text, bool replay, uint64_t id) {
    if (!claim_name(ci.name, ci.if_not_exists && !replay)) return StatementResult{"CREATE INDEX"};
    auto t = tables.find(ci.table);
    if (t == tables.end()) {
      if (views.count(ci.table))
        throw_sql("0A000", "indexes on views are not supported: a view is already keyed by its GROUP BY columns",
                  ci.table_location);
      throw_sql("42P01", fmt::format("relation \"{}\" does not exist", ci.table), ci.table_location);
    }
    int col = sql::find_column(t->second->schema, ci.column);
    if (col < 0) throw_sql("42703", fmt::format("column \"{}\" does not exist", ci.column));
    auto e = std::make_shared<IndexEntry>();
    e->name = ci.name;
    e->sql = text;
    e->table = ci.table;
    e->column = ci.column;
    e->id = replay ? id : allocate_id();
    ViewSpec spec;
    spec.name = ci.name;
    spec.id = e->id;
    spec.kind = ViewKind::kIndex;
    spec.source = SourceSpec{t->second->topic, t->second->envelope, t->second->schema, t->second->key_column};
    spec.plan = star_plan(t->second->schema);
    spec.index_column = col;
    e->view = start_view(std::move(spec));
    if (!replay) persist('i', ci.name, e->id, text);
    indexes[ci.name] = e;
    return StatementResult{"CREATE INDEX"};
  }

  void drop_view_object(const std::shared_ptr<View>& v) {
    if (!v) return;
    unregister_wake(v.get());
    v->stop();
    Status s = v->destroy();
    if (!s) log_warn("dropping {}: {}", v->spec().name, s.to_string());
  }

  std::vector<std::string> dependents_of(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : views) {
      if (v->source == name) out.push_back(n);
    }
    for (const auto& [n, i] : indexes) {
      if (i->table == name) out.push_back(n);
    }
    return out;
  }

  void drop_one(sql::ObjectKind kind, const std::string& name, bool if_exists, bool cascade) {
    bool exists = kind == sql::ObjectKind::kTable  ? tables.count(name) > 0
                  : kind == sql::ObjectKind::kView ? views.count(name) > 0
                                                   : indexes.count(name) > 0;
    if (!exists) {
      if (if_exists) return;
      const char* what = kind == sql::ObjectKind::kTable  ? "table"
                         : kind == sql::ObjectKind::kView ? "materialized view"
                                                          : "index";
      throw_sql("42P01", fmt::format("{} \"{}\" does not exist", what, name));
    }
    auto deps = dependents_of(name);
    if (!deps.empty() && !cascade)
      throw_sql("2BP01", fmt::format("cannot drop {} because {} depends on it (use CASCADE)", name, deps.front()));
    for (const auto& d : deps) {
      drop_one(views.count(d) ? sql::ObjectKind::kView : sql::ObjectKind::kIndex, d, true, true);
    }
    if (kind == sql::ObjectKind::kTable) {
      drop_view_object(tables[name]->state);
      tables.erase(name);
    } else if (kind == sql::ObjectKind::kView) {
      auto v = views[name];
      drop_view_object(v->view);
      (void)options.log->delete_topic(v->view->spec().changelog_topic);
      views.erase(name);
    } else {
      drop_view_object(indexes[name]->view);
      indexes.erase(name);
    }
    unpersist(name);
  }

  // ---- reading ----
  struct Source {
    Schema schema;
    std::vector<Row> rows;
    std::string access;  // for EXPLAIN
  };

  // The source offsets `v` must apply to reflect `offsets` (topic ->
  // partition -> offset) of the tables it reads; for a view over a view,
  // this waits until the parent has committed those changes and returns
  // the parent's changelog end. Empty: nothing to wait for.
  std::map<int32_t, int64_t> needed(const std::shared_ptr<View>& v,
                                    const std::map<std::string, std::map<int32_t, int64_t>>& offsets,
                                    std::chrono::steady_clock::time_point deadline) {
    const ViewSpec& spec = v->spec();
    if (spec.source.kind != SourceKind::kChangelog) {
      auto it = offsets.find(spec.source.topic);
      return it == offsets.end() ? std::map<int32_t, int64_t>{} : it->second;
    }
    std::shared_ptr<View> parent;
    {
      std::shared_lock lock(mu);
      for (const auto& [n, e] : views) {
        if (e->view->spec().changelog_topic == spec.source.topic) parent = e->view;
      }
    }
    if (!parent) return {};
    auto parent_need = needed(parent, offsets, deadline);
    if (parent_need.empty()) return {};
    auto end = parent->wait_committed(parent_need, deadline);
    if (!end) throw_sql("57014", fmt::format("read-your-writes: {}", end.status().message()));
    if (*end <= 0) return {};
    return {{0, *end - 1}};
  }

  // Waits until `v` reflects `offsets` of the tables it (transitively) reads.
  void wait_view(const std::shared_ptr<View>& v, const std::map<std::string, std::map<int32_t, int64_t>>& offsets,
                 std::chrono::steady_clock::time_point deadline) {
    auto need = needed(v, offsets, deadline);
    if (need.empty()) return;
    Status s = v->wait_applied(need, deadline);
    if (!s) {
      throw_sql("57014", fmt::format("read-your-writes: {} (waited for {} to reach the requested offsets)",
                                     s.message(), v->spec().name));
    }
  }

  // All offsets a reader may wait for: every partition end of `topic`.
  std::map<int32_t, int64_t> current_ends(const std::string& topic) {
    std::map<int32_t, int64_t> out;
    auto info = options.log->describe_topic(topic);
    if (!info) return out;
    for (int32_t p = 0; p < info->partitions; ++p) {
      auto part = options.log->partition(topic, p);
      if (part && part->high_watermark() > 0) out[p] = part->high_watermark() - 1;
    }
    return out;
  }
};

namespace {

// Equality and range conditions on columns found in the top-level ANDs of a WHERE.
struct Conjuncts {
  std::map<int, Value> equal;                  // column -> value
  std::map<int, std::pair<std::optional<Value>, std::optional<Value>>> range;  // inclusive bounds (a superset)
};

void collect_conjuncts(const sql::ExprPtr& e, Conjuncts* out) {
  if (!e) return;
  if (e->kind == sql::ExprKind::kAnd) {
    for (const auto& a : e->args) collect_conjuncts(a, out);
    return;
  }
  auto col_const = [](const sql::ExprPtr& a, const sql::ExprPtr& b) {
    return a->kind == sql::ExprKind::kColumn && b->kind == sql::ExprKind::kConst && !b->value.is_null();
  };
  if (e->kind == sql::ExprKind::kCompare) {
    sql::ExprPtr a = e->args[0], b = e->args[1];
    sql::Op op = e->op;
    if (!col_const(a, b)) {
      if (!col_const(b, a)) return;
      std::swap(a, b);
      switch (op) {
        case sql::Op::kLt: op = sql::Op::kGt; break;
        case sql::Op::kLe: op = sql::Op::kGe; break;
        case sql::Op::kGt: op = sql::Op::kLt; break;
        case sql::Op::kGe: op = sql::Op::kLe; break;
        default: break;
      }
    }
    auto& r = out->range[a->column];
    switch (op) {
      case sql::Op::kEq: out->equal[a->column] = b->value; break;
      case sql::Op::kGt:
      case sql::Op::kGe: r.first = b->value; break;
      case sql::Op::kLt:
      case sql::Op::kLe: r.second = b->value; break;
      default: break;
    }
    return;
  }
  if (e->kind == sql::ExprKind::kBetween && !e->negated && col_const(e->args[0], e->args[1]) &&
      e->args[2]->kind == sql::ExprKind::kConst && !e->args[2]->value.is_null()) {
    auto& r = out->range[e->args[0]->column];
    r.first = e->args[1]->value;
    r.second = e->args[2]->value;
  }
}

std::optional<Value> coerce_to(const Value& v, Type t) {
  auto r = sql::coerce(v, t);
  if (!r) return std::nullopt;
  if (r->type == Type::kDouble && t == Type::kInt) return std::nullopt;
  if (t == Type::kInt && v.type == Type::kDouble && double(int64_t(v.d)) != v.d) return std::nullopt;
  return *r;
}

// Runs a plan over input rows: filter, [aggregate], project, distinct, sort, limit.
std::vector<Row> run_plan(const sql::SelectPlan& plan, const std::vector<Row>& input) {
  struct Out {
    Row row;
    Row sort;
  };
  std::vector<Out> out;
  auto sort_row = [&](const Row& output, const Row& base) {
    if (plan.order.empty()) return Row{};
    Row full = output;
    full.insert(full.end(), base.begin(), base.end());
    Row keys;
    for (const auto& k : plan.order) keys.push_back(sql::eval(*k.expr, full));
    return keys;
  };
  if (plan.aggregate) {
    std::map<std::string, Group> groups;
    if (plan.group_exprs.empty()) groups[""].aggs.resize(plan.aggs.size());
    Row args;
    for (const Row& r : input) {
      if (plan.filter && !sql::eval_predicate(*plan.filter, r)) continue;
      std::string key;
      Row kv;
      for (const auto& g : plan.group_exprs) {
        kv.push_back(sql::eval(*g, r));
        sql::encode_key(kv.back(), &key);
      }
      args.clear();
      for (const auto& a : plan.aggs) args.push_back(a.arg ? sql::eval(*a.arg, r) : Value::null());
      auto [it, inserted] = groups.try_emplace(key);
      if (inserted) {
        it->second.key = kv;
        it->second.aggs.resize(plan.aggs.size());
      }
      apply_to_group(plan, it->second, args, +1);
    }
    for (auto& [k, g] : groups) {
      Row combined = group_combined(plan, g);
      bool visible = g.rows > 0 || plan.group_exprs.empty();
      if (visible && plan.having) visible = sql::eval_predicate(*plan.having, combined);
      if (!visible) continue;
      Row o;
      for (const auto& x : plan.outputs) o.push_back(sql::eval(*x, combined));
      Row s = sort_row(o, combined);
      out.push_back({std::move(o), std::move(s)});
    }
  } else {
    for (const Row& r : input) {
      if (plan.filter && !sql::eval_predicate(*plan.filter, r)) continue;
      Row o;
      for (const auto& x : plan.outputs) o.push_back(sql::eval(*x, r));
      Row s = sort_row(o, r);
      out.push_back({std::move(o), std::move(s)});
    }
  }
  if (plan.distinct) {
    std::set<std::string> seen;
    std::vector<Out> unique;
    for (auto& o : out) {
      std::string k;
      sql::encode_row(o.row, &k);
      if (seen.insert(k).second) unique.push_back(std::move(o));
    }
    out = std::move(unique);
  }
  if (!plan.order.empty()) {
    std::stable_sort(out.begin(), out.end(), [&](const Out& a, const Out& b) {
      for (size_t i = 0; i < plan.order.size(); ++i) {
        const Value& x = a.sort[i];
        const Value& y = b.sort[i];
        const auto& k = plan.order[i];
        if (x.is_null() || y.is_null()) {
          if (x.is_null() && y.is_null()) continue;
          // nulls_first puts NULL before values regardless of direction.
          return x.is_null() == k.nulls_first;
        }
        int c = sql::compare(x, y);
        if (c != 0) return k.desc ? c > 0 : c < 0;
      }
      return false;
    });
  }
  std::vector<Row> rows;
  size_t start = size_t(std::min<int64_t>(plan.offset, int64_t(out.size())));
  size_t end = out.size();
  if (plan.limit) end = std::min(end, start + size_t(*plan.limit));
  for (size_t i = start; i < end; ++i) rows.push_back(std::move(out[i].row));
  return rows;
}

void set_columns(StatementResult* r, const Schema& schema) {
  r->has_rows = true;
  for (const auto& c : schema) {
    r->columns.push_back(c.name);
    r->types.push_back(sql::type_name(c.type));
  }
}

}  // namespace

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() { close(); }

Result<std::unique_ptr<Engine>> Engine::open(const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  dbo.max_background_jobs = 2;
  // The vector memtable below takes no concurrent writers (each write is
  // one view's commit anyway).
  dbo.allow_concurrent_memtable_write = false;
  rocksdb::ColumnFamilyOptions catalog_cf;
  catalog_cf.write_buffer_size = 64 << 20;  // changelog outboxes: up to a commit's whole changelog each
  // A commit writes every group it changed: thousands of keys spread over
  // the key space, each a skip-list search in the default memtable (a
  // profile of steady maintenance put 17% of the view's thread there). The
  // state is only read when a view opens, so its memtable is an unsorted
  // vector, appended to and sorted once when it is flushed or read.
  rocksdb::ColumnFamilyOptions state_cf;
  state_cf.write_buffer_size = 64 << 20;
  state_cf.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  std::vector<std::string> existing;
  bool had_state = false;
  if (rocksdb::DB::ListColumnFamilies(dbo, options.state_dir, &existing).ok()) {
    had_state = std::find(existing.begin(), existing.end(), kStateFamily) != existing.end();
  } else {
    had_state = true;  // a new directory: nothing to move
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {{rocksdb::kDefaultColumnFamilyName, catalog_cf},
                                                           {kStateFamily, state_cf}};
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(dbo, options.state_dir, families, &impl->handles, &raw);
  if (!s.ok()) return error(ErrorCode::kIoError, "opening view state in " + options.state_dir + ": " + s.ToString());
  impl->db.reset(raw);
  impl->state_cf = impl->handles[1];
  if (!had_state) {
    // A directory from before the state column family: move the views'
    // rows and groups ("v" + id + kind g/r/u) over in one atomic write.
    rocksdb::WriteBatch wb;
    std::unique_ptr<rocksdb::Iterator> old(impl->db->NewIterator(rocksdb::ReadOptions()));
    for (old->Seek("v"); old->Valid() && old->key().starts_with("v"); old->Next()) {
      rocksdb::Slice k = old->key();
      if (k.size() < 10 || std::string_view("gru").find(k[9]) == std::string_view::npos) continue;
      wb.Put(impl->state_cf, k, old->value());
      wb.Delete(k);
    }
    if (!old->status().ok()) return error(ErrorCode::kIoError, "reading view state: " + old->status().ToString());
    old.reset();
    s = impl->db->Write(rocksdb::WriteOptions(), &wb);
    if (!s.ok()) return error(ErrorCode::kIoError, "moving view state: " + s.ToString());
  }
  std::string next;
  if (impl->db->Get(rocksdb::ReadOptions(), "n", &next).ok()) impl->next_id = get_u64(next);
  // Replay the catalog in creation order.
  struct Entry {
    uint64_t id;
    char kind;
    std::string name;
    std::string sql;
  };
  std::vector<Entry> entries;
  std::unique_ptr<rocksdb::Iterator> it(impl->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("c"); it->Valid() && it->key().starts_with("c"); it->Next()) {
    std::string v = it->value().ToString();
    if (v.size() < 9) continue;
    entries.push_back({get_u64(std::string_view(v).substr(1, 8)), v[0], it->key().ToString().substr(1), v.substr(9)});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.id < b.id; });
  std::unique_lock lock(impl->mu);
  for (const Entry& e : entries) {
    auto parsed = sql::parse(e.sql);
    if (!parsed.ok() || parsed.value().size() != 1)
      return error(ErrorCode::kCorruption, "catalog entry " + e.name + " does not parse");
    try {
      const auto& body = parsed.value()[0].body;
      if (e.kind == 't') {
        impl->create_table(std::get<sql::CreateTable>(body), e.sql, true, e.id);
      } else if (e.kind == 'v') {
        impl->create_view(std::get<sql::CreateView>(body), e.sql, true, e.id);
      } else if (e.kind == 'i') {
        impl->create_index(std::get<sql::CreateIndex>(body), e.sql, true, e.id);
      }
    } catch (const sql::SqlException& ex) {
      return error(ErrorCode::kCorruption, "restoring " + e.name + ": " + ex.error.message);
    }
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

void Engine::close() {
  if (!impl_) return;
  std::unique_lock lock(impl_->mu);
  for (auto& [n, v] : impl_->views) v->view->stop();
  for (auto& [n, i] : impl_->indexes) i->view->stop();
  for (auto& [n, t] : impl_->tables) {
    if (t->state) t->state->stop();
  }
  impl_->views.clear();
  impl_->indexes.clear();
  impl_->tables.clear();
  impl_->close_db();
}

void Engine::on_append(const std::string& topic) {
  std::vector<std::shared_ptr<View>> wake;
  {
    std::lock_guard lock(impl_->wake_mu);
    auto [from, to] = impl_->wake_by_topic.equal_range(topic);
    for (auto it = from; it != to; ++it) {
      if (auto v = it->second.lock()) wake.push_back(std::move(v));
    }
  }
  for (auto& v : wake) v->notify();
}

std::vector<ViewStatus> Engine::view_statuses() const {
  std::vector<std::shared_ptr<View>> vs;
  {
    std::shared_lock lock(impl_->mu);
    for (auto& [n, v] : impl_->views) vs.push_back(v->view);
  }
  std::vector<ViewStatus> out;
  for (auto& v : vs) out.push_back(v->status());
  return out;
}

std::optional<ViewStatus> Engine::view_status(const std::string& name) const {
  std::shared_ptr<View> v;
  {
    std::shared_lock lock(impl_->mu);
    auto it = impl_->views.find(name);
    if (it == impl_->views.end()) return std::nullopt;
    v = it->second->view;
  }
  return v->status();
}

sql::SqlResult<RebuildReport> Engine::rebuild(const std::string& name) {
  std::shared_ptr<View> v;
  {
    std::shared_lock lock(impl_->mu);
    auto it = impl_->views.find(name);
    if (it == impl_->views.end())
      return SqlError{"42P01", fmt::format("materialized view \"{}\" does not exist", name), -1};
    v = it->second->view;
  }
  auto r = v->rebuild();
  if (!r) return SqlError{"58030", r.status().to_string(), -1};
  return *r;
}

sql::SqlResult<StatementResult> Engine::lookup(const std::string& name, const std::string& key_text) {
  std::shared_ptr<View> v;
  {
    std::shared_lock lock(impl_->mu);
    auto it = impl_->views.find(name);
    if (it == impl_->views.end())
      return SqlError{"42P01", fmt::format("materialized view \"{}\" does not exist", name), -1};
    v = it->second->view;
  }
  const ViewSpec& spec = v->spec();
  StatementResult result{"SELECT"};
  set_columns(&result, spec.plan.output);
  std::string key;
  if (spec.plan.aggregate) {
    size_t n = spec.plan.group_exprs.size();
    std::vector<std::string> parts;
    if (n == 1) {
      parts.push_back(key_text);
    } else if (n > 1) {
      simdjson::dom::parser p;
      simdjson::dom::array arr;
      if (p.parse(key_text).get_array().get(arr))
        return SqlError{"22P02", fmt::format("the key of \"{}\" has {} columns: pass a JSON array", name, n), -1};
      for (auto el : arr) {
        std::string_view s;
        if (el.is_string()) {
          if (el.get_string().get(s)) s = {};
          parts.emplace_back(s);
        } else {
          parts.push_back(simdjson::minify(el));
        }
      }
    }
    if (parts.size() != n)
      return SqlError{"22P02", fmt::format("the key of \"{}\" has {} column(s), got {}", name, n, parts.size()), -1};
    for (size_t i = 0; i < n; ++i) {
      auto val = sql::coerce(Value::text(parts[i]), spec.plan.group_exprs[i]->type);
      if (!val) return SqlError{"22P02", val.status().message(), -1};
      sql::encode_key(*val, &key);
    }
  } else {
    key = key_text;
  }
  v->read([&](const ViewState& st) {
    if (spec.plan.aggregate) {
      auto it = st.groups.find(key);
      Row row;
      if (it != st.groups.end() && group_output(spec.plan, it->second, &row)) result.rows.push_back(std::move(row));
    } else {
      auto it = st.rows.find(key);
      if (it != st.rows.end()) result.rows.push_back(it->second);
    }
  });
  return result;
}

namespace {

struct Executor {
  Engine::Impl& impl;
  const QueryOptions& options;
  std::chrono::steady_clock::time_point deadline;
  // Offsets to wait for: the request's wait_for plus this request's writes.
  std::map<std::string, std::map<int32_t, int64_t>> offsets;

  void note_offset(const std::string& topic, int32_t p, int64_t o) {
    auto& m = offsets[topic];
    auto it = m.find(p);
    if (it == m.end() || it->second < o) m[p] = o;
  }

  // ---- writes ----
  std::shared_ptr<TableEntry> table_for_write(const std::string& name, int location) {
    std::shared_lock lock(impl.mu);
    auto it = impl.tables.find(name);
    if (it == impl.tables.end()) {
      if (impl.views.count(name))
        throw_sql("42809", fmt::format("cannot change materialized view \"{}\": write to its tables", name), location);
      throw_sql("42P01", fmt::format("relation \"{}\" does not exist", name), location);
    }
    return it->second;
  }

  // Appends rows (nullopt value = tombstone with `keys[i]`) to the table's topic.
  std::vector<TopicOffset> append(const TableEntry& t, const std::vector<std::optional<Row>>& rows,
                                  const std::vector<std::string>& keys) {
    auto info = impl.options.log->describe_topic(t.topic);
    if (!info) throw_sql("58030", fmt::format("the topic \"{}\" of table \"{}\" is gone", t.topic, t.name));
    int32_t n = info->partitions;
    std::map<int32_t, std::vector<size_t>> by_partition;
    for (size_t i = 0; i < rows.size(); ++i) {
      int32_t p;
      if (t.key_column >= 0) {
        p = int32_t((murmur2(keys[i]) & 0x7fffffff) % uint32_t(n));
      } else {
        p = int32_t(impl.round_robin.fetch_add(1) % uint64_t(n));
      }
      by_partition[p].push_back(i);
    }
    std::vector<TopicOffset> out(rows.size());
    int64_t ts = now_ms();
    for (auto& [p, idx] : by_partition) {
      log::BatchBuilder bb(ts);
      for (size_t i : idx) {
        std::optional<std::string_view> key;
        if (t.key_column >= 0) key = keys[i];
        std::string value;
        if (rows[i]) value = row_to_json(t.schema, *rows[i]);
        bb.add(key, rows[i] ? std::optional<std::string_view>(value) : std::nullopt, ts);
      }
      std::string batch = bb.finish();
      auto part = impl.options.log->partition(t.topic, p);
      if (!part) throw_sql("58030", "partition missing");
      auto r = part->append(MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()), batch.size()));
      if (!r) throw_sql("58030", "appending to the log: " + r.status().to_string());
      for (size_t k = 0; k < idx.size(); ++k) {
        out[idx[k]] = TopicOffset{t.topic, p, r->base_offset + int64_t(k)};
        note_offset(t.topic, p, r->base_offset + int64_t(k));
      }
    }
    return out;
  }

  Row checked_row(const TableEntry& t, Row row, int location) {
    for (size_t c = 0; c < t.schema.size(); ++c) {
      auto v = sql::coerce(row[c], t.schema[c].type);
      if (!v) throw_sql("22P02", v.status().message(), location);
      row[c] = *v;
    }
    if (t.key_column >= 0 && row[size_t(t.key_column)].is_null())
      throw_sql("23502",
                fmt::format("null value in key column \"{}\" of table \"{}\"", t.schema[size_t(t.key_column)].name,
                            t.name),
                location);
    return row;
  }

  StatementResult insert(const sql::Insert& ins) {
    auto t = table_for_write(ins.table, ins.table_location);
    std::vector<int> cols;
    if (ins.columns.empty()) {
      for (size_t i = 0; i < t->schema.size(); ++i) cols.push_back(int(i));
    } else {
      for (const auto& c : ins.columns) {
        int idx = sql::find_column(t->schema, c);
        if (idx < 0) throw_sql("42703", fmt::format("column \"{}\" of relation \"{}\" does not exist", c, t->name));
        if (std::find(cols.begin(), cols.end(), idx) != cols.end())
          throw_sql("42701", fmt::format("column \"{}\" specified more than once", c));
        cols.push_back(idx);
      }
    }
    if (ins.rows.size() > kInsertRowsMax)
      throw_sql("54000", fmt::format("at most {} rows per INSERT", kInsertRowsMax));
    std::vector<std::optional<Row>> rows;
    std::vector<std::string> keys;
    Schema empty;
    for (const auto& values : ins.rows) {
      if (values.size() != cols.size()) {
        int loc = values.empty() ? -1 : values[0]->location;
        throw_sql("42601",
                  values.size() > cols.size() ? "INSERT has more expressions than target columns"
                                              : "INSERT has more target columns than expressions",
                  loc);
      }
      Row row(t->schema.size(), Value::null());
      for (size_t i = 0; i < values.size(); ++i) {
        auto bound = sql::bind_expr(values[i], empty);
        Value v = sql::eval(*bound, Row{});
        const auto& col = t->schema[size_t(cols[i])];
        auto c = sql::coerce(v, col.type);
        if (!c) throw_sql("22P02", c.status().message(), values[i]->location);
        row[size_t(cols[i])] = *c;
      }
      row = checked_row(*t, std::move(row), ins.table_location);
      keys.push_back(t->key_column >= 0 ? sql::to_text(row[size_t(t->key_column)]) : std::string());
      rows.push_back(std::move(row));
    }
    StatementResult r{"INSERT"};
    r.offsets = append(*t, rows, keys);
    r.rows_affected = int64_t(rows.size());
    return r;
  }

  // The current rows of an upsert table, after every write so far.
  std::vector<std::pair<std::string, Row>> current_rows(const TableEntry& t) {
    auto ends = impl.current_ends(t.topic);
    for (auto& [p, o] : ends) note_offset(t.topic, p, o);
    Status s = t.state->wait_applied(ends, deadline);
    if (!s) throw_sql("57014", fmt::format("table \"{}\" has not caught up: {}", t.name, s.message()));
    std::vector<std::pair<std::string, Row>> rows;
    t.state->read([&](const ViewState& st) {
      for (const auto& [k, row] : st.rows) rows.emplace_back(k, row);
    });
    return rows;
  }

  StatementResult update_or_delete(const std::string& table, int location, const sql::ExprPtr& where,
                                   const std::vector<std::pair<std::string, sql::ExprPtr>>* sets) {
    auto t = table_for_write(table, location);
    const char* verb = sets ? "UPDATE" : "DELETE";
    if (t->envelope != SourceKind::kUpsert)
      throw_sql("0A000",
                fmt::format("cannot {} table \"{}\": its envelope is 'append' (every record is a new fact); "
                            "use envelope = 'upsert' with a key to change rows",
                            verb, t->name),
                location);
    sql::ExprPtr filter = where ? sql::bind_expr(where, t->schema) : nullptr;
    std::vector<std::pair<int, sql::ExprPtr>> assignments;
    if (sets) {
      for (const auto& [col, e] : *sets) {
        int idx = sql::find_column(t->schema, col);
        if (idx < 0) throw_sql("42703", fmt::format("column \"{}\" of relation \"{}\" does not exist", col, t->name));
        assignments.emplace_back(idx, sql::bind_expr(e, t->schema));
      }
    }
    std::vector<std::optional<Row>> rows;
    std::vector<std::string> keys;
    for (auto& [key, row] : current_rows(*t)) {
      if (filter && !sql::eval_predicate(*filter, row)) continue;
      if (!sets) {
        rows.push_back(std::nullopt);
        keys.push_back(key);
        continue;
      }
      Row next = row;
      for (const auto& [idx, e] : assignments) {
        Value v = sql::eval(*e, row);
        auto c = sql::coerce(v, t->schema[size_t(idx)].type);
        if (!c) throw_sql("22P02", c.status().message(), e->location);
        next[size_t(idx)] = *c;
      }
      next = checked_row(*t, std::move(next), location);
      std::string new_key = sql::to_text(next[size_t(t->key_column)]);
      if (new_key != key) {  // the key changed: delete the old row
        rows.push_back(std::nullopt);
        keys.push_back(key);
      }
      rows.push_back(std::move(next));
      keys.push_back(new_key);
    }
    StatementResult r{verb};
    r.rows_affected = 0;
    for (const auto& x : rows) r.rows_affected += (x || !sets) ? 1 : 0;
    if (!rows.empty()) r.offsets = append(*t, rows, keys);
    return r;
  }

  // ---- reads ----
  sql::SelectPlan plan_for(const sql::Select& select, const Schema& schema) {
    return sql::plan_select(select, schema, false);
  }

  // Reads the rows of `from` that may satisfy the plan's filter.
  Engine::Impl::Source read_relation(const sql::Select& select, sql::SelectPlan* plan_out, bool explain_only) {
    Engine::Impl::Source src;
    std::shared_ptr<View> view;
    std::shared_ptr<TableEntry> table;
    std::shared_ptr<View> index_view;
    int index_column = -1;
    {
      std::shared_lock lock(impl.mu);
      if (auto it = impl.views.find(select.from); it != impl.views.end()) {
        view = it->second->view;
      } else if (auto t = impl.tables.find(select.from); t != impl.tables.end()) {
        table = t->second;
      } else if (impl.indexes.count(select.from)) {
        throw_sql("42809", fmt::format("\"{}\" is an index", select.from), select.from_location);
      } else {
        throw_sql("42P01", fmt::format("relation \"{}\" does not exist", select.from), select.from_location);
      }
      if (table) {
        // An index on a column the WHERE pins to a value.
        sql::SelectPlan probe = plan_for(select, table->schema);
        Conjuncts cj;
        collect_conjuncts(probe.filter, &cj);
        for (const auto& [n, idx] : impl.indexes) {
          if (idx->table != table->name) continue;
          int col = sql::find_column(table->schema, idx->column);
          if (cj.equal.count(col) && col != table->key_column) {
            index_view = idx->view;
            index_column = col;
            break;
          }
        }
      }
    }
    if (view) {
      const ViewSpec& spec = view->spec();
      src.schema = spec.plan.output;
      *plan_out = plan_for(select, src.schema);
      Conjuncts cj;
      collect_conjuncts(plan_out->filter, &cj);
      // A lookup on the view key: every GROUP BY column shown and pinned.
      std::string key;
      bool point = spec.plan.aggregate && !spec.plan.group_exprs.empty();
      if (point) {
        for (size_t g = 0; g < spec.plan.group_exprs.size(); ++g) {
          int col = spec.plan.group_output_column[g];
          auto it = col >= 0 ? cj.equal.find(col) : cj.equal.end();
          if (it == cj.equal.end()) {
            point = false;
            break;
          }
          auto v = coerce_to(it->second, spec.plan.group_exprs[g]->type);
          if (!v) {
            point = false;
            break;
          }
          sql::encode_key(*v, &key);
        }
      }
      std::optional<Value> lo, hi;
      bool range = false;
      if (!point && spec.plan.aggregate && spec.plan.group_exprs.size() == 1 && spec.plan.group_output_column[0] >= 0) {
        auto it = cj.range.find(spec.plan.group_output_column[0]);
        if (it != cj.range.end() && (it->second.first || it->second.second)) {
          range = true;
          Type t = spec.plan.group_exprs[0]->type;
          if (it->second.first) lo = coerce_to(*it->second.first, t);
          if (it->second.second) hi = coerce_to(*it->second.second, t);
          if ((it->second.first && !lo) || (it->second.second && !hi)) range = false;
        }
      }
      src.access = point ? fmt::format("point lookup on the key of view {}", spec.name)
                   : range ? fmt::format("range scan on the key of view {}", spec.name)
                           : fmt::format("full scan of view {}", spec.name);
      if (explain_only) return src;
      wait_view(view);
      view->read([&](const ViewState& st) {
        if (point) {
          auto it = st.groups.find(key);
          Row row;
          if (it != st.groups.end() && group_output(spec.plan, it->second, &row)) src.rows.push_back(std::move(row));
          return;
        }
        if (range) {
          std::string lo_key, hi_key;
          if (lo) sql::encode_key(*lo, &lo_key);
          if (hi) sql::encode_key(*hi, &hi_key);
          const auto& order = st.sorted_keys();
          auto it = lo ? order.lower_bound(lo_key) : order.begin();
          for (; it != order.end(); ++it) {
            if (hi && *it > std::string_view(hi_key)) break;
            auto g = st.groups.find(std::string(*it));
            Row row;
            if (g != st.groups.end() && group_output(spec.plan, g->second, &row)) src.rows.push_back(std::move(row));
          }
          return;
        }
        View::for_each_row(st, spec.plan, [&](const std::string&, const Row& r) { src.rows.push_back(r); });
      });
      return src;
    }
    src.schema = table->schema;
    *plan_out = plan_for(select, src.schema);
    Conjuncts cj;
    collect_conjuncts(plan_out->filter, &cj);
    if (table->state && table->key_column >= 0 && cj.equal.count(table->key_column)) {
      auto v = coerce_to(cj.equal[table->key_column], table->schema[size_t(table->key_column)].type);
      src.access = fmt::format("point lookup on the key of table {}", table->name);
      if (explain_only || !v) return src;
      wait_table(*table);
      std::string key = sql::to_text(*v);
      table->state->read([&](const ViewState& st) {
        auto it = st.rows.find(key);
        if (it != st.rows.end()) src.rows.push_back(it->second);
      });
      return src;
    }
    if (index_view) {
      auto v = coerce_to(cj.equal[index_column], table->schema[size_t(index_column)].type);
      src.access = fmt::format("index lookup with {} on {} = ...", index_view->spec().name,
                               table->schema[size_t(index_column)].name);
      if (explain_only || !v) return src;
      std::map<std::string, std::map<int32_t, int64_t>> mine;
      if (auto it = offsets.find(table->topic); it != offsets.end()) mine[table->topic] = it->second;
      impl.wait_view(index_view, mine, deadline);
      std::string prefix;
      sql::encode_key(*v, &prefix);
      index_view->read([&](const ViewState& st) {
        for (auto it = st.rows.lower_bound(prefix); it != st.rows.end() && it->first.starts_with(prefix); ++it)
          src.rows.push_back(it->second);
      });
      return src;
    }
    if (table->state) {
      src.access = fmt::format("full scan of table {} (current rows)", table->name);
      if (explain_only) return src;
      wait_table(*table);
      table->state->read([&](const ViewState& st) {
        for (const auto& [k, r] : st.rows) src.rows.push_back(r);
      });
      return src;
    }
    src.access = fmt::format("full scan of the log of table {} (topic {})", table->name, table->topic);
    if (explain_only) return src;
    // An append table: read its topic up to the current ends.
    ViewSpec spec;
    spec.name = table->name;
    spec.kind = ViewKind::kTableState;
    spec.source = SourceSpec{table->topic, SourceKind::kAppend, table->schema, -1};
    spec.plan = Engine::Impl::star_plan(table->schema);
    View scanner(spec, impl.deps());
    auto info = impl.options.log->describe_topic(table->topic);
    std::vector<int64_t> ends;
    for (int32_t p = 0; info && p < info->partitions; ++p) {
      auto part = impl.options.log->partition(table->topic, p);
      ends.push_back(part ? part->high_watermark() : 0);
    }
    ViewState st = scanner.scan(ends);
    for (auto& [k, r] : st.rows) src.rows.push_back(std::move(r));
    return src;
  }

  void wait_view(const std::shared_ptr<View>& v) {
    if (offsets.empty()) return;
    impl.wait_view(v, offsets, deadline);  // takes the catalog lock only to find parents
  }

  void wait_table(const TableEntry& t) {
    auto it = offsets.find(t.topic);
    if (it == offsets.end()) return;
    Status s = t.state->wait_applied(it->second, deadline);
    if (!s) throw_sql("57014", fmt::format("read-your-writes: table \"{}\": {}", t.name, s.message()));
  }

  StatementResult select(const sql::Select& select) {
    StatementResult r{"SELECT"};
    if (select.from.empty()) {
      auto plan = plan_for(select, Schema{});
      set_columns(&r, plan.output);
      r.rows = run_plan(plan, std::vector<Row>{Row{}});
      return r;
    }
    sql::SelectPlan plan;
    auto src = read_relation(select, &plan, false);
    set_columns(&r, plan.output);
    r.rows = run_plan(plan, src.rows);
    return r;
  }

  // ---- EXPLAIN ----
  std::vector<std::string> explain_view(const ViewSpec& spec, const std::string& source_name) {
    std::vector<std::string> lines;
    const auto& plan = spec.plan;
    const Schema& in = spec.source.schema;
    const char* envelope = spec.source.kind == SourceKind::kAppend   ? "append: each record is +row"
                           : spec.source.kind == SourceKind::kUpsert ? "upsert: -previous row, +new row per key"
                                                                     : "changelog: -before, +after";
    lines.push_back(fmt::format("materialized view {}", spec.name));
    lines.push_back(fmt::format("  source: {} (topic {}, {})", source_name, spec.source.topic, envelope));
    lines.push_back(fmt::format("  -> decode json [{}]", [&] {
      std::string s;
      for (size_t i = 0; i < in.size(); ++i) s += (i ? ", " : "") + in[i].name + " " + sql::type_name(in[i].type);
      return s;
    }()));
    if (plan.filter) lines.push_back("  -> filter " + sql::expr_to_string(*plan.filter, &in));
    if (plan.aggregate) {
      std::string keys, aggs;
      for (size_t i = 0; i < plan.group_exprs.size(); ++i)
        keys += (i ? ", " : "") + sql::expr_to_string(*plan.group_exprs[i], &in);
      for (size_t i = 0; i < plan.aggs.size(); ++i) {
        const auto& a = plan.aggs[i];
        std::string s = a.kind == sql::AggKind::kCountStar ? "count(*)"
                        : a.kind == sql::AggKind::kCountDistinct
                            ? "count(DISTINCT " + sql::expr_to_string(*a.arg, &in) + ")"
                            : std::string(sql::agg_name(a.kind)) + "(" + sql::expr_to_string(*a.arg, &in) + ")";
        if (a.kind == sql::AggKind::kMin || a.kind == sql::AggKind::kMax || a.kind == sql::AggKind::kCountDistinct)
          s += " [keeps value counts: exact under retraction]";
        aggs += (i ? ", " : "") + s;
      }
      lines.push_back(fmt::format("  -> group by [{}]: {}", keys.empty() ? "(all rows)" : keys, aggs));
      if (plan.having) lines.push_back("  -> having (on the group row)");
    }
    std::string outs;
    for (size_t i = 0; i < plan.output.size(); ++i)
      outs += (i ? ", " : "") + plan.output[i].name + " " + sql::type_name(plan.output[i].type);
    lines.push_back("  -> project [" + outs + "]");
    lines.push_back(fmt::format("  state: RocksDB prefix v/{} + in-memory hot tier; key: {}", spec.id,
                                plan.aggregate ? "the GROUP BY values" : "the source row identity"));
    lines.push_back("  changelog: topic " + spec.changelog_topic + " ({key, before, after})");
    return lines;
  }

  StatementResult explain(const sql::Explain& ex) {
    StatementResult r{"EXPLAIN"};
    r.has_rows = true;
    r.columns = {"QUERY PLAN"};
    r.types = {"text"};
    std::vector<std::string> lines;
    if (auto* cv = std::get_if<sql::CreateView>(&ex.inner.body)) {
      std::shared_lock lock(impl.mu);
      bool over_view = false;
      SourceSpec source = impl.source_of(cv->query.from, cv->query.from_location, &over_view);
      ViewSpec spec;
      spec.name = cv->name;
      spec.source = source;
      spec.plan = sql::plan_select(cv->query, source.schema, true);
      spec.changelog_topic = std::string(kChangelogPrefix) + cv->name;
      lines = explain_view(spec, cv->query.from);
    } else {
      const auto& select = std::get<sql::Select>(ex.inner.body);
      if (select.from.empty()) {
        lines.push_back("constant row");
      } else {
        sql::SelectPlan plan;
        auto src = read_relation(select, &plan, true);
        lines.push_back("select: " + src.access);
        if (plan.filter) lines.push_back("  -> filter " + sql::expr_to_string(*plan.filter, &src.schema));
        if (plan.aggregate) lines.push_back("  -> aggregate");
        if (!plan.order.empty()) lines.push_back("  -> sort");
        if (plan.limit) lines.push_back(fmt::format("  -> limit {}", *plan.limit));
        std::shared_lock lock(impl.mu);
        if (auto it = impl.views.find(select.from); it != impl.views.end()) {
          lines.push_back("view definition:");
          for (auto& l : explain_view(it->second->view->spec(), it->second->source)) lines.push_back("  " + l);
        }
      }
    }
    for (auto& l : lines) r.rows.push_back(Row{Value::text(l)});
    return r;
  }

  // ---- SHOW ----
  StatementResult show(const sql::Show& s) {
    StatementResult r{"SHOW"};
    std::shared_lock lock(impl.mu);
    auto text = [](std::string v) { return Value::text(std::move(v)); };
    if (s.what == "tables") {
      set_columns(&r, {{"name", Type::kText},
                       {"topic", Type::kText},
                       {"partitions", Type::kInt},
                       {"envelope", Type::kText},
                       {"key", Type::kText},
                       {"columns", Type::kText}});
      for (const auto& [n, t] : impl.tables) {
        std::string cols;
        for (size_t i = 0; i < t->schema.size(); ++i)
          cols += (i ? ", " : "") + t->schema[i].name + " " + sql::type_name(t->schema[i].type);
        auto info = impl.options.log->describe_topic(t->topic);
        r.rows.push_back({text(n), text(t->topic), Value::integer(info ? info->partitions : 0),
                          text(t->envelope == SourceKind::kUpsert ? "upsert" : "append"),
                          t->key_column >= 0 ? text(t->schema[size_t(t->key_column)].name) : Value::null(),
                          text(cols)});
      }
    } else if (s.what == "views") {
      set_columns(&r, {{"name", Type::kText},
                       {"source", Type::kText},
                       {"state", Type::kText},
                       {"progress", Type::kDouble},
                       {"rows", Type::kInt},
                       {"events", Type::kInt},
                       {"events_per_second", Type::kDouble},
                       {"lag_records", Type::kInt},
                       {"lag_ms", Type::kInt},
                       {"errors", Type::kInt},
                       {"last_error", Type::kText}});
      for (const auto& [n, v] : impl.views) {
        ViewStatus st = v->view->status();
        Value last = Value::null();
        if (!st.failure.empty()) {
          last = text(st.failure);
        } else if (!st.recent_errors.empty()) {
          const auto& e = st.recent_errors.back();
          last = text(fmt::format("partition {} offset {}: {}", e.partition, e.offset, e.reason));
        }
        r.rows.push_back({text(n), text(v->source), text(st.state), Value::real(std::round(st.progress * 10) / 10),
                          Value::integer(st.rows), Value::integer(st.events),
                          Value::real(std::round(st.events_per_second)), Value::integer(st.lag_records),
                          Value::integer(st.lag_ms), Value::integer(st.errors), last});
      }
    } else {
      set_columns(&r, {{"name", Type::kText},
                       {"table", Type::kText},
                       {"column", Type::kText},
                       {"state", Type::kText},
                       {"entries", Type::kInt}});
      for (const auto& [n, i] : impl.indexes) {
        ViewStatus st = i->view->status();
        r.rows.push_back({text(n), text(i->table), text(i->column), text(st.state), Value::integer(st.rows)});
      }
    }
    return r;
  }

  StatementResult run(const sql::Statement& st) {
    return std::visit(
        [&](const auto& s) -> StatementResult {
          using T = std::decay_t<decltype(s)>;
          if constexpr (std::is_same_v<T, sql::Select>) {
            return select(s);
          } else if constexpr (std::is_same_v<T, sql::Insert>) {
            return insert(s);
          } else if constexpr (std::is_same_v<T, sql::Update>) {
            return update_or_delete(s.table, s.table_location, s.where, &s.sets);
          } else if constexpr (std::is_same_v<T, sql::Delete>) {
            return update_or_delete(s.table, s.table_location, s.where, nullptr);
          } else if constexpr (std::is_same_v<T, sql::CreateTable>) {
            std::lock_guard ddl(impl.ddl_mu);
            std::unique_lock lock(impl.mu);
            return impl.create_table(s, st.text, false, 0);
          } else if constexpr (std::is_same_v<T, sql::CreateView>) {
            std::lock_guard ddl(impl.ddl_mu);
            std::unique_lock lock(impl.mu);
            return impl.create_view(s, st.text, false, 0);
          } else if constexpr (std::is_same_v<T, sql::CreateIndex>) {
            std::lock_guard ddl(impl.ddl_mu);
            std::unique_lock lock(impl.mu);
            return impl.create_index(s, st.text, false, 0);
          } else if constexpr (std::is_same_v<T, sql::Drop>) {
            std::lock_guard ddl(impl.ddl_mu);
            std::unique_lock lock(impl.mu);
            for (const auto& n : s.names) impl.drop_one(s.kind, n, s.if_exists, s.cascade);
            return StatementResult{sql::command_tag(st)};
          } else if constexpr (std::is_same_v<T, sql::Show>) {
            return show(s);
          } else if constexpr (std::is_same_v<T, sql::Refresh>) {
            std::shared_ptr<View> v;
            {
              std::shared_lock lock(impl.mu);
              auto it = impl.views.find(s.name);
              if (it == impl.views.end())
                throw_sql("42P01", fmt::format("materialized view \"{}\" does not exist", s.name));
              v = it->second->view;
            }
            auto rep = v->rebuild();
            if (!rep) throw_sql("58030", rep.status().to_string());
            StatementResult r{"REFRESH MATERIALIZED VIEW"};
            set_columns(&r, {{"events", Type::kInt}, {"rows", Type::kInt}, {"differences", Type::kInt}});
            r.rows.push_back({Value::integer(rep->events), Value::integer(rep->rows), Value::integer(rep->differences)});
            return r;
          } else {
            return explain(*s);
          }
        },
        st.body);
  }
};

}  // namespace

ExecuteResult Engine::execute(std::string_view text, const QueryOptions& options) {
  ExecuteResult out;
  auto parsed = sql::parse(text);
  if (!parsed.ok()) {
    out.error = parsed.error();
    return out;
  }
  Executor ex{*impl_, options, std::chrono::steady_clock::now() + options.timeout, {}};
  for (const auto& w : options.wait_for) ex.note_offset(w.topic, w.partition, w.offset);
  for (const auto& st : parsed.value()) {
    try {
      out.results.push_back(ex.run(st));
      if (out.results.back().command.empty()) out.results.back().command = sql::command_tag(st);
    } catch (const sql::SqlException& e) {
      out.error = e.error;
      if (out.error->position < 0 && st.offset >= 0) {
        // No better position: point at the statement.
        out.error->position = -1;
      }
      break;
    }
  }
  if (out.results.empty() && !out.error && parsed.value().empty()) {
    out.error = SqlError{"42601", "empty query", -1};
  }
  return out;
}

}  // namespace evert::views
