#include "views/view.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <new>

#include <fmt/format.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/logging.h"
#include "log/log_manager.h"
#include "log/partition.h"
#include "log/record_batch.h"
#include "views/event_decoder.h"
#include "views/parallel_decoder.h"
#include "views/partial_aggregates.h"

namespace evert::views {

using sql::Row;
using sql::Type;
using sql::Value;

namespace {

constexpr uint64_t kReadBytes = 1 << 20;           // per partition per batch
constexpr size_t kNodeDistance = 4;  // events between prefetching a group's slot and its node
constexpr int64_t kBatchRecordsMax = 16384;  // records applied under one lock hold (readers wait that long)
constexpr auto kCommitIntervalLive = std::chrono::milliseconds(5);
// Live, a view waits at least this many times its last commit's duration
// before the next commit (up to kCommitIntervalLiveMax), so that under a
// steady stream commits take a bounded share of its thread and the groups
// of a longer window are written once instead of once per 5 ms.
constexpr int kCommitDurationFactor = 4;
constexpr auto kCommitIntervalLiveMax = std::chrono::milliseconds(100);
// A commit's write batch is kept for the next one unless it grew past this.
constexpr size_t kCommitBatchKeepBytes = 16 << 20;
constexpr auto kCommitIntervalBackfill = std::chrono::milliseconds(5000);
// The runner's longest wait for a block decoded ahead before it looks
// again at what else it has to do (commits, stopping).
constexpr auto kDecodedWait = std::chrono::milliseconds(20);
constexpr size_t kDirtyMax = 1 << 20;              // commit early when this many keys changed
constexpr size_t kRecentErrorsMax = 5;
constexpr size_t kChangelogBatchBytes = 512 << 10;  // below the default max.message.bytes
// A commit of at least this many groups builds its changelog on a second
// thread, but for the last 1/kCommitTailShare of it, which the committing
// thread builds once it has written the groups' state (about as long).
constexpr size_t kParallelCommitMin = 16384;
constexpr size_t kCommitTailShare = 4;
// After an outbox's header: no batches follow, its records are rebuilt
// from the committed state (View::commit, View::republish_from_state).
// A batch would begin with its base offset, whose first byte is never 0xff.
constexpr char kOutboxFromState = '\xff';

void put_u64(std::string* out, uint64_t v) {  // big-endian
  uint8_t b[8];
  store_be64(b, v);
  out->append(reinterpret_cast<const char*>(b), 8);
}

bool get_u64(std::string_view in, size_t* pos, uint64_t* v) {
  if (*pos + 8 > in.size()) return false;
  *v = load_be64(reinterpret_cast<const uint8_t*>(in.data() + *pos));
  *pos += 8;
  return true;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Writes map[key] under db_key, or deletes db_key when the map has no such row.
template <typename Map>
void put_row(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* cf, const std::string& db_key, const Map& map,
             const std::string& key) {
  auto it = map.find(key);
  if (it == map.end()) {
    wb.Delete(cf, db_key);
    return;
  }
  std::string enc;
  sql::encode_row_exact(it->second, &enc);
  wb.Put(cf, db_key, enc);
}

std::string identity_of(int32_t partition, int64_t offset) { return fmt::format("{}-{:012d}", partition, offset); }

// Null: no row.
bool rows_equal(const Row* a, const Row* b, bool tolerant);
bool rows_equal(const std::optional<Row>& a, const std::optional<Row>& b, bool tolerant) {
  return rows_equal(a ? &*a : nullptr, b ? &*b : nullptr, tolerant);
}
bool rows_equal(const Row* a, const Row* b, bool tolerant) {
  if ((a != nullptr) != (b != nullptr)) return false;
  if (!a) return true;
  if (a->size() != b->size()) return false;
  for (size_t i = 0; i < a->size(); ++i) {
    const Value& x = (*a)[i];
    const Value& y = (*b)[i];
    if (x.type != y.type) return false;
    if (x.type == Type::kDouble) {
      if (x.d == y.d) continue;
      if (!tolerant) return false;
      double scale = std::max(std::fabs(x.d), std::fabs(y.d));
      if (std::fabs(x.d - y.d) > 1e-9 * scale) return false;
      continue;
    }
    if (x != y) return false;
  }
  return true;
}

}  // namespace

// Binary forms of what a view keeps in RocksDB.
//
// A group's state, version 1: a leading 0x01 (version 0, the first form,
// began with its row count as eight big-endian bytes, so with 0), then
// varints, with each aggregate's zero fields left out, and the group's key
// values only when its RocksDB key, decoded, would not give them back
// exactly (a double -0: -0 and 0 are one key). Values are in
// sql::encode_value_exact's form. A backfill's first commit
// writes every group: version 0's 48 bytes per aggregate made most of its
// write, checksummed by RocksDB in software.
struct ViewCodec {
  static constexpr char kGroupV1 = '\x01';
  enum : uint8_t { kKeyRow = 1 };  // group flags
  enum : uint8_t {                 // aggregate flags: the fields that follow
    kCount = 1,
    kSum = 2,
    kWideSum = 4,  // the sum does not fit 64 bits: 16 bytes, not a varint
    kDsum = 8,
    kDcomp = 16,
    kValues = 32,
  };

  // Whether a group of `plan` may have a double in its key (else
  // encode_group need not look at the key's values, a cache miss each).
  static bool double_keys(const sql::SelectPlan& plan) {
    return std::any_of(plan.group_exprs.begin(), plan.group_exprs.end(),
                       [](const auto& e) { return e->type == Type::kDouble || e->type == Type::kNull; });
  }
  static std::string encode_group(const Group& g, bool double_keys) {
    std::string out;
    encode_group(g, double_keys, &out);
    return out;
  }
  static void encode_group(const Group& g, bool double_keys, std::string* buf) {
    std::string& out = *buf;
    out.clear();
    out.push_back(kGroupV1);
    bool key_row = false;
    if (double_keys) {
      for (const Value& v : g.key) key_row |= v.type == Type::kDouble && v.d == 0 && std::signbit(v.d);
    }
    out.push_back(char(key_row ? kKeyRow : 0));
    put_varint(out, g.rows);
    put_uvarint(out, g.aggs.size());
    for (const AggState& a : g.aggs) {
      const bool wide = a.isum != __int128(int64_t(a.isum));
      const uint64_t dsum = std::bit_cast<uint64_t>(a.dsum), dcomp = std::bit_cast<uint64_t>(a.dcomp);
      const bool values = a.values && !a.values->empty();
      out.push_back(char((a.count != 0 ? kCount : 0) | (a.isum != 0 ? kSum : 0) | (wide ? kWideSum : 0) |
                         (dsum != 0 ? kDsum : 0) | (dcomp != 0 ? kDcomp : 0) | (values ? kValues : 0)));
      if (a.count != 0) put_varint(out, a.count);
      if (wide) {
        put_u64(&out, uint64_t(a.isum >> 64));
        put_u64(&out, uint64_t(a.isum));
      } else if (a.isum != 0) {
        put_varint(out, int64_t(a.isum));
      }
      if (dsum != 0) put_u64(&out, dsum);
      if (dcomp != 0) put_u64(&out, dcomp);
      if (values) {
        put_uvarint(out, a.values->size());
        for (const auto& [v, n] : *a.values) {
          sql::encode_value_exact(v, &out);
          put_varint(out, n);
        }
      }
    }
    if (key_row) sql::encode_row_exact(g.key, &out);
  }

  // `key` is the group's key in RocksDB (after the view's prefix), made of
  // `key_columns` encoded values; a group of a view has `aggregates`
  // aggregates. False for anything else, and for bytes this did not write.
  static bool decode_group(std::string_view in, std::string_view key, size_t key_columns, size_t aggregates,
                           Group* g) {
    if (in.empty()) return false;
    if (in[0] != kGroupV1) return decode_group_v0(in, key_columns, aggregates, g);
    ByteReader r(as_bytes(in.substr(1)));
    const uint8_t flags = uint8_t(r.i8());
    g->rows = r.varlong();
    const uint64_t naggs = r.uvarint();
    if (!r.ok() || (flags & ~kKeyRow) != 0 || naggs != aggregates) return false;
    g->aggs.clear();
    g->aggs.resize(naggs);
    for (AggState& a : g->aggs) {
      const uint8_t f = uint8_t(r.i8());
      if ((f & ~(kCount | kSum | kWideSum | kDsum | kDcomp | kValues)) != 0) return false;
      if (f & kCount) a.count = r.varlong();
      if (f & kWideSum) {
        uint64_t hi = uint64_t(r.i64()), lo = uint64_t(r.i64());
        a.isum = (__int128(int64_t(hi)) << 64) | __int128(lo);
      } else if (f & kSum) {
        a.isum = r.varlong();
      }
      if (f & kDsum) a.dsum = std::bit_cast<double>(uint64_t(r.i64()));
      if (f & kDcomp) a.dcomp = std::bit_cast<double>(uint64_t(r.i64()));
      if (f & kValues) {
        const uint64_t n = r.uvarint();
        if (!r.ok() || n > in.size()) return false;
        a.values = std::make_unique<ValueCounts>();
        for (uint64_t k = 0; k < n; ++k) {
          size_t pos = 1 + r.position();
          auto v = sql::decode_key(in, &pos);
          if (!v) return false;
          r.skip(pos - 1 - r.position());
          const int64_t times = r.varlong();
          if (!r.ok() || !a.values->emplace(std::move(*v), times).second) return false;
        }
      }
      if (!r.ok()) return false;
    }
    if (flags & kKeyRow) {
      auto row = sql::decode_row(in.substr(1 + r.position()));
      if (!row || row->size() != key_columns) return false;
      g->key = std::move(*row);
      return true;
    }
    if (!r.at_end()) return false;
    auto values = sql::decode_row(key);  // a group key is its values' encodings one after another
    if (!values || values->size() != key_columns) return false;
    g->key = std::move(*values);
    return true;
  }

  // The first form: fixed eight-byte fields.
  static bool decode_group_v0(std::string_view in, size_t key_columns, size_t aggregates, Group* g) {
    size_t pos = 0;
    uint64_t rows, naggs;
    if (!get_u64(in, &pos, &rows) || !get_u64(in, &pos, &naggs) || naggs != aggregates) return false;
    g->rows = int64_t(rows);
    g->aggs.clear();
    g->aggs.resize(naggs);
    for (AggState& a : g->aggs) {
      uint64_t count, hi, lo, bits, comp, nvalues;
      if (!get_u64(in, &pos, &count) || !get_u64(in, &pos, &hi) || !get_u64(in, &pos, &lo) ||
          !get_u64(in, &pos, &bits) || !get_u64(in, &pos, &comp) || !get_u64(in, &pos, &nvalues))
        return false;
      a.count = int64_t(count);
      a.isum = (__int128(int64_t(hi)) << 64) | __int128(lo);
      std::memcpy(&a.dsum, &bits, 8);
      std::memcpy(&a.dcomp, &comp, 8);
      for (uint64_t k = 0; k < nvalues; ++k) {
        auto v = sql::decode_key(in, &pos);
        uint64_t n;
        if (!v || !get_u64(in, &pos, &n)) return false;
        if (!a.values) a.values = std::make_unique<ValueCounts>();
        a.values->emplace(std::move(*v), int64_t(n));
      }
    }
    auto key = sql::decode_row(in.substr(pos));
    if (!key || key->size() != key_columns) return false;
    g->key = std::move(*key);
    return true;
  }
};

namespace {

void append_int_json(std::string& out, int64_t i) {
  char digits[24];
  auto r = std::to_chars(digits, digits + sizeof(digits), i);
  out.append(digits, r.ptr);
}

// sql::write_json()'s text of `v` appended to `out`: the common types
// directly, the others through `scratch`.
void append_value_json(std::string& out, const Value& v, JsonWriter& scratch) {
  switch (v.type) {
    case Type::kNull: out += "null"; return;
    case Type::kInt: append_int_json(out, v.i); return;
    case Type::kText: json_quote(out, v.s); return;
    default:
      scratch.clear();
      sql::write_json(scratch, v);
      out += scratch.str();
      return;
  }
}

// A commit's changelog records (docs/SQL.md), write_row_json()'s text
// assembled from pieces made once per commit: the output columns' quoted
// names and the source offsets' JSON. A commit and a recovery rebuilding
// its records from state (View::open) make each record alike, byte for
// byte.
class ChangeRecords {
 public:
  ChangeRecords(const sql::Schema& output, std::string offsets_json)
      : offsets_json_(std::move(offsets_json)) {
    for (size_t c = 0; c < output.size(); ++c) {
      std::string f(c == 0 ? "{" : ",");  // each name after the '{' or ',' before it
      json_quote(f, output[c].name);
      f.push_back(':');
      field_names_.push_back(std::move(f));
    }
  }

  // The record of a change of the key whose JSON is `key_json` from
  // `before` to `after` (null: no row) into `out`.
  void record(std::string& out, std::string_view key_json, const Row* before, const Row* after,
              JsonWriter& scratch) const {
    out.assign("{\"key\":");
    out += key_json;
    out += ",\"before\":";
    row(out, before, scratch);
    out += ",\"after\":";
    row(out, after, scratch);
    out += ",\"source_offsets\":";
    out += offsets_json_;
    out.push_back('}');
  }

  const std::string& offsets_json() const { return offsets_json_; }

 private:
  void row(std::string& out, const Row* r, JsonWriter& scratch) const {
    if (!r) {
      out += "null";
      return;
    }
    size_t n = std::min(field_names_.size(), r->size());
    if (n == 0) {
      out += "{}";
      return;
    }
    for (size_t c = 0; c < n; ++c) {
      out += field_names_[c];
      append_value_json(out, (*r)[c], scratch);
    }
    out.push_back('}');
  }

  std::vector<std::string> field_names_;
  std::string offsets_json_;
};

// Changelog records in batches that stay under the topic's message size.
struct ChangeBatches {
  explicit ChangeBatches(int64_t ts) : ts(ts) {}
  void add(std::string_view key, std::string_view value) {
    if (!open) open = std::make_unique<log::BatchBuilder>(ts);
    open->add(key, value, ts);
    ++records;
    if (open->size_bytes() >= kChangelogBatchBytes) close();
  }
  // Finishes the batch being filled, if any.
  void close() {
    if (open && open->record_count() > 0) done.push_back(open->finish());
    open.reset();
  }
  // Closes both, and `next`'s batches follow this one's.
  void append(ChangeBatches& next) {
    close();
    next.close();
    for (auto& b : next.done) done.push_back(std::move(b));
    records += next.records;
  }

  int64_t ts;
  std::unique_ptr<log::BatchBuilder> open;
  std::vector<std::string> done;
  int64_t records = 0;
};

// Aggregate i's result for group g.
Value aggregate_value(const sql::SelectPlan& plan, const Group& g, size_t i) {
  const AggState& a = g.aggs[i];
  const sql::AggSpec& spec = plan.aggs[i];
  Value v;
  switch (spec.kind) {
    case sql::AggKind::kCountStar: v = Value::integer(g.rows); break;
    case sql::AggKind::kCount: v = Value::integer(a.count); break;
    case sql::AggKind::kSum:
      if (a.count > 0) {
        if (spec.type == Type::kDouble) {
          v = Value::real(a.dsum + a.dcomp);
        } else if (a.isum >= INT64_MIN && a.isum <= INT64_MAX) {
          v = Value::integer(int64_t(a.isum));
        } else {
          v = Value::real(double(a.isum));
        }
      }
      break;
    case sql::AggKind::kAvg:
      if (a.count > 0) {
        double sum = spec.arg && spec.arg->type == Type::kDouble ? a.dsum + a.dcomp : double(a.isum);
        v = Value::real(sum / double(a.count));
      }
      break;
    case sql::AggKind::kMin:
      if (a.values && !a.values->empty()) v = a.values->begin()->first;
      break;
    case sql::AggKind::kMax:
      if (a.values && !a.values->empty()) v = a.values->rbegin()->first;
      break;
    case sql::AggKind::kCountDistinct: v = Value::integer(a.values ? int64_t(a.values->size()) : 0); break;
  }
  return v;
}

// Every output a column of the combined row [group key values..., aggregates...].
bool columns_only(const sql::SelectPlan& plan) {
  const size_t width = plan.group_exprs.size() + plan.aggs.size();
  for (const auto& o : plan.outputs) {
    if (o->kind != sql::ExprKind::kColumn || o->column < 0 || size_t(o->column) >= width) return false;
  }
  return true;
}

}  // namespace

Row group_combined(const sql::SelectPlan& plan, const Group& g) {
  Row combined = g.key;
  combined.reserve(g.key.size() + plan.aggs.size());
  for (size_t i = 0; i < plan.aggs.size(); ++i) combined.push_back(aggregate_value(plan, g, i));
  return combined;
}

bool group_output(const sql::SelectPlan& plan, const Group& g, Row* out) {
  if (!g.stale) {
    if (!g.visible) return false;
    *out = g.out;
    return true;
  }
  bool visible = g.rows > 0 || plan.group_exprs.empty();
  if (!visible) return false;
  if (!plan.having && columns_only(plan)) {
    // Most views output their group columns and aggregates as they are:
    // each straight from the group, without the combined row in between.
    const size_t keys = g.key.size();
    out->resize(plan.outputs.size());
    for (size_t i = 0; i < plan.outputs.size(); ++i) {
      auto c = size_t(plan.outputs[i]->column);
      (*out)[i] = c < keys ? g.key[c] : aggregate_value(plan, g, c - keys);
    }
    return true;
  }
  Row combined = group_combined(plan, g);
  if (plan.having) {
    try {
      visible = sql::eval_predicate(*plan.having, combined);
    } catch (const sql::SqlException&) {
      visible = false;
    }
  }
  if (!visible) return false;
  out->clear();
  for (const auto& o : plan.outputs) {
    try {
      out->push_back(sql::eval(*o, combined));
    } catch (const sql::SqlException&) {
      out->push_back(Value::null());
    }
  }
  return true;
}

void recompute_group(const sql::SelectPlan& plan, Group& g) {
  g.stale = true;
  g.visible = group_output(plan, g, &g.out);
  g.stale = false;
}

void apply_to_group(const sql::SelectPlan& plan, Group& g, const Row& args, int weight) {
  g.rows += weight;
  for (size_t i = 0; i < plan.aggs.size(); ++i) {
    const Value& v = args[i];
    if (v.is_null()) continue;
    AggState& a = g.aggs[i];
    switch (plan.aggs[i].kind) {
      case sql::AggKind::kCountStar: break;
      case sql::AggKind::kCount: a.count += weight; break;
      case sql::AggKind::kSum:
      case sql::AggKind::kAvg:
        a.count += weight;
        if (v.type == Type::kDouble) {
          // Compensated (Neumaier) summation, so that retracting values
          // gives back the sum of the rest (3, not 2.9999999999999987).
          double x = weight * v.d;
          double t = a.dsum + x;
          a.dcomp += std::fabs(a.dsum) >= std::fabs(x) ? (a.dsum - t) + x : (x - t) + a.dsum;
          a.dsum = t;
        } else {
          a.isum += __int128(weight) * v.i;
        }
        if (a.count == 0) {  // nothing left: no rounding residue either
          a.dsum = 0;
          a.dcomp = 0;
          a.isum = 0;
        }
        break;
      case sql::AggKind::kMin:
      case sql::AggKind::kMax:
      case sql::AggKind::kCountDistinct: {
        if (!a.values) a.values = std::make_unique<ValueCounts>();
        auto vit = a.values->find(v);
        if (vit == a.values->end()) {
          if (weight > 0) a.values->emplace(v, weight);
        } else if ((vit->second += weight) <= 0) {
          a.values->erase(vit);
        }
        break;
      }
    }
  }
}

namespace huge_pages {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPool = false;
#else
constexpr bool kPool = true;
#endif

void* allocate_huge(size_t bytes) {
  size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, rounded);
  if (!p) throw std::bad_alloc();
  (void)madvise(p, rounded, MADV_HUGEPAGE);  // a hint: without it the pages are 4 KiB
  return p;
}

void* map_zeroed(size_t bytes) {
  size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* m = mmap(nullptr, rounded + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  // Only the 2 MiB aligned part is kept.
  auto start = reinterpret_cast<uintptr_t>(m);
  uintptr_t aligned = (start + kHuge - 1) / kHuge * kHuge;
  if (aligned > start) munmap(m, aligned - start);
  if (size_t tail = start + rounded + kHuge - (aligned + rounded); tail > 0)
    munmap(reinterpret_cast<void*>(aligned + rounded), tail);
  (void)madvise(reinterpret_cast<void*>(aligned), rounded, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

void unmap_zeroed(void* p, size_t bytes) {
  if (p) munmap(p, (bytes + kHuge - 1) / kHuge * kHuge);
}

namespace {

// Size classes of 16 bytes (which keeps every block 16-aligned).
class Pool {
 public:
  void* allocate(size_t bytes) {
    size_t cls = (bytes + 15) / 16;
    std::lock_guard lock(mu_);
    if (void* p = free_[cls]) {
      free_[cls] = *static_cast<void**>(p);
      return p;
    }
    size_t size = cls * 16;
    if (!chunk_ || used_ + size > kHuge) {
      chunk_ = static_cast<char*>(allocate_huge(kHuge));  // the rest of the last one is left unused
      used_ = 0;
    }
    void* p = chunk_ + used_;
    used_ += size;
    return p;
  }
  void deallocate(void* p, size_t bytes) {
    size_t cls = (bytes + 15) / 16;
    std::lock_guard lock(mu_);
    *static_cast<void**>(p) = free_[cls];
    free_[cls] = p;
  }

 private:
  std::mutex mu_;
  char* chunk_ = nullptr;
  size_t used_ = 0;
  std::array<void*, kPooledMax / 16 + 1> free_{};
};

// Never destroyed: groups of views still open at exit may free into it.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

void* allocate(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (kPool && bytes <= kPooledMax) return pool().allocate(bytes);
  if (bytes < kHuge) return ::operator new(bytes);
  return allocate_huge(bytes);
}

void deallocate(void* p, size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (kPool && bytes <= kPooledMax) {
    pool().deallocate(p, bytes);
  } else if (bytes < kHuge) {
    ::operator delete(p);
  } else {
    std::free(p);
  }
}

}  // namespace huge_pages

const std::set<std::string_view>& ViewState::sorted_keys() const {
  // Readers share the state lock, so the merge has a lock of its own; the
  // runner holds the state exclusively whenever it adds or erases keys.
  static std::mutex merge_mu;
  std::lock_guard lock(merge_mu);
  if (!order_pending.empty()) {
    std::sort(order_pending.begin(), order_pending.end());
    // Ascending keys, each hinted just after the one before: into an empty
    // set (a backfill's first read) every insert takes constant time.
    auto hint = order.end();
    for (std::string_view k : order_pending) hint = std::next(order.insert(hint, k));
    order_pending.clear();
  }
  return order;
}

GroupEntry* GroupIndex::find(std::string_view key, uint64_t h) const {
  if (slots_.empty()) return nullptr;
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.hash == 0) return nullptr;
    if (s.hash == h && s.entry->first == key) return s.entry;
  }
}

void GroupIndex::prefetch_entry(uint64_t h) const {
  if (slots_.empty()) return;
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.hash == 0) return;
    if (s.hash == h) {
      // The node: its key and, a line on, the group's counters.
      __builtin_prefetch(s.entry);
      __builtin_prefetch(reinterpret_cast<const char*>(s.entry) + 64);
      return;
    }
  }
}

// Group keys are short (an encoded text key of ten bytes is common):
// eight bytes a step and one final mix, about a third of std::hash's
// instructions for such keys.
uint64_t GroupIndex::hash(std::string_view key) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15;
  auto mix = [](uint64_t h, uint64_t w) {
    h = (h ^ w) * kMul;
    return h ^ (h >> 29);
  };
  auto load64 = [](const char* p) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  };
  auto load32 = [](const char* p) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    return uint64_t(w);
  };
  const char* p = key.data();
  const size_t n = key.size();
  uint64_t h = uint64_t(n) * kMul;
  // Whole loads only (the last one may overlap the one before): bytes
  // gathered one by one into a word stalled the load that read it back.
  if (n > 8) {
    const char* end = p + n;
    for (; end - p > 8; p += 8) h = mix(h, load64(p));
    h = mix(h, load64(end - 8));
  } else if (n >= 4) {
    h = mix(h, (load32(p) << 32) | load32(p + n - 4));
  } else if (n > 0) {
    h = mix(h, uint64_t(uint8_t(p[0])) << 16 | uint64_t(uint8_t(p[n / 2])) << 8 | uint8_t(p[n - 1]));
  }
  // The final mix of MurmurHash3's 64-bit hash: every bit of the input
  // reaches the low bits a table's mask keeps.
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCD;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53;
  h ^= h >> 33;
  return h | 1;
}

void GroupIndex::grow() { rehash(slots_.empty() ? 64 : slots_.size() * 2); }

void GroupIndex::reserve(size_t n) {
  size_t slots = 64;
  while (slots < 2 * n) slots *= 2;
  if (slots > slots_.size()) rehash(slots);
}

void GroupIndex::rehash(size_t slots) {
  std::vector<Slot, HugePageAllocator<Slot>> old = std::move(slots_);
  slots_.assign(slots, Slot{});
  size_ = 0;
  for (const Slot& s : old) {
    if (s.hash != 0) insert(s.entry, s.hash);
  }
}

void GroupIndex::insert(GroupEntry* entry, uint64_t h) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  size_t mask = slots_.size() - 1;
  size_t i = h & mask;
  while (slots_[i].hash != 0) i = (i + 1) & mask;
  slots_[i] = Slot{h, entry};
  ++size_;
}

void GroupIndex::erase(std::string_view key, uint64_t h) {
  if (slots_.empty()) return;
  size_t mask = slots_.size() - 1;
  size_t i = h & mask;
  while (true) {
    if (slots_[i].hash == 0) return;
    if (slots_[i].hash == h && slots_[i].entry->first == key) break;
    i = (i + 1) & mask;
  }
  // Backward-shift deletion keeps every probe chain unbroken.
  size_t hole = i;
  for (size_t j = (hole + 1) & mask; slots_[j].hash != 0; j = (j + 1) & mask) {
    size_t home = slots_[j].hash & mask;
    bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot{};
  --size_;
}

View::View(ViewSpec spec, Deps deps)
    : spec_(std::move(spec)),
      deps_(deps),
      decoder_(std::make_unique<EventDecoder>(spec_.source.schema)),
      commit_batch_(std::make_unique<rocksdb::WriteBatch>()) {
  // An aggregate over an append-only table reads its rows only through
  // prepare_group_delta (append_to_chunk): the other columns' text is not copied.
  if (chunked()) decoder_->keep_only(columns_read(spec_.plan));
}

View::~View() { stop(); }

GroupEntry* View::add_global_group(ViewState& state) const {
  Group g;
  g.aggs.resize(spec_.plan.aggs.size());
  auto [it, inserted] = state.groups.emplace(std::string(), std::move(g));
  recompute(it->second);
  state.index.insert(&*it, GroupIndex::hash(it->first));
  state.add_key(it->first);
  return &*it;
}

std::string View::prefix(char kind) const {
  std::string p = "v";
  put_u64(&p, spec_.id);
  p.push_back(kind);
  return p;
}

Status View::open() {
  std::unique_lock lock(state_mu_);
  auto* db = deps_.db;
  std::string meta;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), prefix('m'), &meta);
  if (s.ok()) {
    size_t pos = 0;
    uint64_t n = 0, v = 0;
    if (!get_u64(meta, &pos, &n) || n > 100000) return error(ErrorCode::kCorruption, "bad view checkpoint");
    state_.next_offset.resize(n);
    for (auto& o : state_.next_offset) {
      if (!get_u64(meta, &pos, &v)) return error(ErrorCode::kCorruption, "bad view checkpoint");
      o = int64_t(v);
    }
    uint64_t events = 0, errors = 0, caught = 0, cl_end = 0;
    if (!get_u64(meta, &pos, &events) || !get_u64(meta, &pos, &errors) || !get_u64(meta, &pos, &caught) ||
        !get_u64(meta, &pos, &cl_end))
      return error(ErrorCode::kCorruption, "bad view checkpoint");
    state_.events = int64_t(events);
    state_.errors = int64_t(errors);
    state_.caught_up = caught != 0;
    changelog_end_ = int64_t(cl_end);
    uint64_t failure_size = 0;
    if (get_u64(meta, &pos, &failure_size) && pos + failure_size <= meta.size()) {
      failure_ = meta.substr(pos, failure_size);
    }
  } else if (!s.IsNotFound()) {
    return error(ErrorCode::kIoError, "reading view checkpoint: " + s.ToString());
  }
  auto scan = [&](char kind, const std::function<Status(std::string_view, std::string_view)>& fn) -> Status {
    std::string p = prefix(kind);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), deps_.state));
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      std::string_view k(it->key().data() + p.size(), it->key().size() - p.size());
      EVERT_RETURN_IF_ERROR(fn(k, std::string_view(it->value().data(), it->value().size())));
    }
    if (!it->status().ok()) return error(ErrorCode::kIoError, it->status().ToString());
    return Status::ok();
  };
  EVERT_RETURN_IF_ERROR(scan('g', [&](std::string_view k, std::string_view v) -> Status {
    Group g;
    if (!ViewCodec::decode_group(v, k, spec_.plan.group_exprs.size(), spec_.plan.aggs.size(), &g))
      return error(ErrorCode::kCorruption, "bad group state in view " + spec_.name);
    auto [it, inserted] = state_.groups.emplace(std::string(k), std::move(g));
    recompute(it->second);
    state_.index.insert(&*it, GroupIndex::hash(it->first));
    state_.add_key(it->first);
    return Status::ok();
  }));
  EVERT_RETURN_IF_ERROR(scan('r', [&](std::string_view k, std::string_view v) -> Status {
    auto row = sql::decode_row(v);
    if (!row) return row.status();
    state_.rows.emplace(std::string(k), std::move(*row));
    return Status::ok();
  }));
  EVERT_RETURN_IF_ERROR(scan('u', [&](std::string_view k, std::string_view v) -> Status {
    auto row = sql::decode_row(v);
    if (!row) return row.status();
    state_.upsert.emplace(std::string(k), std::move(*row));
    return Status::ok();
  }));
  if (spec_.plan.aggregate && spec_.plan.group_exprs.empty() && state_.groups.empty()) {
    // A view with aggregates and no GROUP BY has its one row from the
    // start (count 0): the first commit publishes it.
    GroupEntry* g = add_global_group(state_);
    g->second.dirty_at = int32_t(dirty_groups_.size());
    dirty_groups_.push_back(DirtyGroup{g, std::nullopt});
  }
  // Finish the changelog append of the last commit if the crash came first.
  if (!spec_.changelog_topic.empty()) {
    if (!deps_.log->describe_topic(spec_.changelog_topic)) {
      auto created = deps_.log->create_topic(spec_.changelog_topic, 1, {});
      if (!created && created.status().code() != ErrorCode::kAlreadyExists) return created.status();
    }
    auto part = deps_.log->partition(spec_.changelog_topic, 0);
    std::string outbox;
    if (part && db->Get(rocksdb::ReadOptions(), prefix('o'), &outbox).ok() && outbox.size() > 16) {
      size_t pos = 0;
      uint64_t base = 0, count = 0;
      get_u64(outbox, &pos, &base);
      get_u64(outbox, &pos, &count);
      if (outbox[pos] == kOutboxFromState) {
        EVERT_RETURN_IF_ERROR(
            republish_from_state(*part, int64_t(base), int64_t(count), std::string_view(outbox).substr(pos + 1)));
        pos = outbox.size();  // no batches follow
      }
      int64_t batch_base = int64_t(base);
      int64_t appended = 0;
      while (pos + log::batch_layout::kHeaderSize <= outbox.size()) {
        auto bytes = ByteSpan(reinterpret_cast<const uint8_t*>(outbox.data()) + pos, outbox.size() - pos);
        log::BatchHeader h = log::decode_batch_header(bytes);
        size_t total = h.total_size();
        if (pos + total > outbox.size()) break;
        int64_t hw = part->high_watermark();
        if (hw == batch_base) {
          std::string b = outbox.substr(pos, total);
          auto r = part->append(MutableByteSpan(reinterpret_cast<uint8_t*>(b.data()), b.size()));
          if (!r) return r.status().with_context("re-appending view changelog");
          appended += h.records_count;
        } else if (hw < batch_base) {
          log_warn("view {}: changelog ends at {} but the checkpoint expects {}; changes in between are lost "
                   "(rebuild downstream views)",
                   spec_.name, hw, batch_base);
          break;
        }
        batch_base += h.records_count;
        pos += total;
      }
      if (appended > 0) {
        log_info("view {}: re-appended {} of {} changelog records after a crash", spec_.name, appended, count);
      }
    }
    if (part && part->high_watermark() > changelog_end_) changelog_end_ = part->high_watermark();
  }
  applied_ = state_.next_offset;
  committed_ = state_.next_offset;
  phase_ = !failure_.empty() ? "failed" : state_.caught_up ? "live" : "backfilling";
  last_commit_ = std::chrono::steady_clock::now();
  return Status::ok();
}

void View::start() {
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void View::stop() {
  stop_ = true;
  notify();
  if (thread_.joinable()) thread_.join();
}

void View::notify() {
  {
    std::lock_guard lock(wake_mu_);
    wake_ = true;
  }
  wake_cv_.notify_one();
}

Status View::destroy() {
  rocksdb::WriteBatch wb;
  for (char k : std::string("mgruo")) {
    std::string p = prefix(k);
    std::string end = p;
    end.back() = char(end.back() + 1);
    wb.DeleteRange(k == 'm' || k == 'o' ? deps_.db->DefaultColumnFamily() : deps_.state, p, end);
  }
  auto s = deps_.db->Write(rocksdb::WriteOptions(), &wb);
  if (!s.ok()) return error(ErrorCode::kIoError, s.ToString());
  return Status::ok();
}

void View::record_error(ViewState& state, int32_t partition, int64_t offset, std::string reason) {
  ++state.errors;
  if (&state != &state_) return;  // a rebuild recounts without reporting again
  std::lock_guard lock(progress_mu_);
  recent_errors_.push_back({partition, offset, std::move(reason)});
  while (recent_errors_.size() > kRecentErrorsMax) recent_errors_.pop_front();
  if (spec_.stop_on_error && failure_.empty()) {
    // The runner stops here; the status says "failed" (with this reason)
    // once the batch before the event is applied and its offsets with it,
    // not before (run()).
    failure_ = fmt::format("malformed event at partition {} offset {}: {}", partition, offset,
                           recent_errors_.back().reason);
    progress_cv_.notify_all();
  }
}

bool View::visible_row(const ViewState& state, const std::string& key, Row* out) const {
  if (spec_.plan.aggregate) {
    auto it = state.groups.find(key);
    return it != state.groups.end() && group_output(spec_.plan, it->second, out);
  }
  auto it = state.rows.find(key);
  if (it == state.rows.end()) return false;
  *out = it->second;
  return true;
}

std::vector<bool> columns_read(const sql::SelectPlan& plan) {
  std::vector<bool> read(plan.input.size(), false);
  std::function<void(const sql::Expr&)> walk = [&](const sql::Expr& e) {
    if (e.kind == sql::ExprKind::kColumn && e.column >= 0 && size_t(e.column) < read.size()) read[size_t(e.column)] = true;
    for (const auto& a : e.args) {
      if (a) walk(*a);
    }
  };
  if (plan.filter) walk(*plan.filter);
  for (const auto& g : plan.group_exprs) walk(*g);
  for (const auto& a : plan.aggs) {
    if (a.arg) walk(*a.arg);
  }
  return read;
}

Prepared prepare_group_delta(const sql::SelectPlan& plan, const Row& row, GroupDelta* d, std::string* reason) {
  try {
    if (plan.filter && !sql::eval_predicate(*plan.filter, row)) return Prepared::kSkip;
    d->key.clear();
    d->key_values.clear();
    for (const auto& g : plan.group_exprs) {
      // A column is encoded where it is; a new group copies its key values.
      if (g->kind == sql::ExprKind::kColumn) {
        sql::encode_key(row[size_t(g->column)], &d->key);
      } else {
        d->key_values.push_back(sql::eval(*g, row));
        sql::encode_key(d->key_values.back(), &d->key);
      }
    }
    d->args.resize(plan.aggs.size());
    for (size_t i = 0; i < plan.aggs.size(); ++i) {
      const auto& arg = plan.aggs[i].arg;
      if (!arg) {
        d->args[i].type = Type::kNull;
      } else if (arg->kind == sql::ExprKind::kColumn && row[size_t(arg->column)].type != Type::kText) {
        const Value& v = row[size_t(arg->column)];
        d->args[i].type = v.type;
        d->args[i].i = v.i;
        d->args[i].d = v.d;
      } else {
        d->args[i] = sql::eval(*arg, row);
      }
    }
  } catch (const sql::SqlException& e) {
    *reason = "evaluating the view: " + e.error.message;
    return Prepared::kError;
  }
  d->hash = GroupIndex::hash(d->key);
  d->entry = nullptr;
  return Prepared::kReady;
}

GroupEntry* View::change_group(ViewState& state, bool track, GroupEntry* entry, std::string_view key, uint64_t hash,
                               const Row& key_values, const Row& row) {
  const auto& plan = spec_.plan;
  bool created = false;
  if (!entry) {
    created = true;
    Group g;
    if (key_values.size() == plan.group_exprs.size()) {
      g.key = key_values;
    } else {
      for (const auto& e : plan.group_exprs) g.key.push_back(sql::eval(*e, row));
    }
    g.aggs.resize(plan.aggs.size());
    entry = &*state.groups.emplace(std::string(key), std::move(g)).first;
    state.index.insert(entry, hash);
    state.add_key(entry->first);
  }
  Group& g = entry->second;
  if (track && g.dirty_at < 0) {
    DirtyGroup dg{entry, std::nullopt};
    auto earlier = dirty_.empty() ? dirty_.end() : dirty_.find(entry->first);
    if (earlier != dirty_.end()) {
      // Erased and made again, or rewritten by a rebuild, since the last
      // commit: its "before" is the row the changelog last published.
      dg.before = std::move(earlier->second.before);
      dirty_.erase(earlier);
    } else if (created) {
      // A new group showed no row before (only a view without GROUP BY
      // shows an empty group, and its one group is made at open).
    } else if (!g.stale) {
      // The cached output is the committed row, and is stale from here on.
      if (g.visible) dg.before = std::move(g.out);
    } else {
      Row before;
      if (group_output(plan, g, &before)) dg.before = std::move(before);
    }
    g.dirty_at = int32_t(dirty_groups_.size());
    dirty_groups_.push_back(std::move(dg));
  }
  g.stale = true;
  return entry;
}

void View::apply_group_delta(ViewState& state, bool track, const Row& row, GroupDelta& d) {
  GroupEntry* entry = d.entry ? d.entry : state.index.find(d.key, d.hash);
  if (!entry && d.weight < 0) return;  // retracting a row that never counted
  entry = change_group(state, track, entry, d.key, d.hash, d.key_values, row);
  Group& g = entry->second;
  apply_to_group(spec_.plan, g, d.args, d.weight);
  // Only a retraction can empty a group (rows starts at 0 and a new group
  // gets a row at once), so only those groups are candidates for erasure.
  if (d.weight < 0 && !g.touched) {
    g.touched = true;
    touched_.push_back(entry);
  }
}

void View::sum_deltas(ViewState& state, bool track, GroupDelta* d, size_t n) {
  constexpr size_t kAhead = 8;  // the slots of the events this far ahead are requested
  for (size_t i = 0; i < std::min(n, kAhead); ++i) partial_->prefetch(d[i].hash);
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) partial_->prefetch(d[i + kAhead].hash);
    sum_delta(state, track, d[i]);
  }
}

void View::sum_delta(ViewState& state, bool track, GroupDelta& d) {
  switch (partial_->add(d.key, d.hash, d.args)) {
    case PartialAggregates::Added::kOk: break;
    case PartialAggregates::Added::kFull:
      fold_partial(state, track);
      EVERT_CHECK(partial_->add(d.key, d.hash, d.args) == PartialAggregates::Added::kOk);
      break;
    case PartialAggregates::Added::kCannot:
      fold_partial(state, track);
      d.entry = nullptr;
      apply_group_delta(state, track, d.row, d);
      break;
  }
}

void View::fold_partial(ViewState& state, bool track) {
  fold(state, track, *partial_);
  partial_->clear();
}

void View::fold(ViewState& state, bool track, PartialAggregates& p) {
  const size_t n = p.keys();
  // Room for every key to be new while the table holds more keys than the
  // view has groups (a backfill's first folds): growing the map and the
  // index through every size on the way rehashed them all at each. Once
  // the groups outnumber the table's keys most are already known, and
  // room for all to be new rehashed every group for nothing.
  // (unordered_map::reserve also shrinks: only ever asked to grow.)
  if (state.groups.size() < n) {
    if (state.groups.size() + n > state.groups.bucket_count() * state.groups.max_load_factor())
      state.groups.reserve(state.groups.size() + n);
    state.index.reserve(state.groups.size() + n);
  }
  // Three misses per group, requested a chunk at a time as in apply_deltas,
  // after the table's own slot, requested a chunk ahead.
  constexpr size_t kChunk = 16;
  std::array<GroupEntry*, kChunk> entries;
  for (size_t i = 0; i < std::min(n, kChunk); ++i) p.prefetch_held(i);
  for (size_t from = 0; from < n; from += kChunk) {
    const size_t to = std::min(n, from + kChunk);
    for (size_t i = to; i < std::min(n, to + kChunk); ++i) p.prefetch_held(i);
    for (size_t i = from; i < to; ++i) state.index.prefetch_slot(p.hash(i));
    for (size_t i = from; i < to; ++i) state.index.prefetch_entry(p.hash(i));
    for (size_t i = from; i < to; ++i) {
      GroupEntry* e = entries[i - from] = state.index.find(p.key(i), p.hash(i));
      if (e) {
        const char* aggs = reinterpret_cast<const char*>(e->second.aggs.data());
        __builtin_prefetch(aggs);
        __builtin_prefetch(aggs + 64);
      }
    }
    for (size_t i = from; i < to; ++i) {
      GroupEntry* e = entries[i - from];
      key_values_.clear();
      if (!e) {
        // A key summed here holds the values it was made from (suits()).
        std::string_view key = p.key(i);
        size_t pos = 0;
        for (size_t k = 0; k < spec_.plan.group_exprs.size(); ++k) {
          auto v = sql::decode_key(key, &pos);
          EVERT_CHECK_MSG(v.is_ok(), "a group key encoded by this process decodes");
          key_values_.push_back(std::move(*v));
        }
      }
      // `row` is not read: a new group's key values are all in key_values_.
      e = change_group(state, track, e, p.key(i), p.hash(i), key_values_, /*row=*/key_values_);
      p.fold(p.sums(i), e->second);
    }
  }
  if (track) summed_ += p.events();
}

void View::flush_chunk(ViewState& state, bool track) {
  if (summing_) {
    // Their slots were requested as they came (append_to_chunk).
    for (size_t i = 0; i < chunk_size_; ++i) sum_delta(state, track, chunk_[i]);
    chunk_size_ = 0;
    return;
  }
  // append_to_chunk prefetched the slots and most nodes; each pass below
  // prefetches what the next one reads, so the cache misses of a chunk's
  // groups overlap instead of following one another.
  size_t first = chunk_size_ > kNodeDistance ? chunk_size_ - kNodeDistance : 0;
  for (size_t i = first; i < chunk_size_; ++i) state.index.prefetch_entry(chunk_[i].hash);
  for (size_t i = 0; i < chunk_size_; ++i) {
    GroupDelta& d = chunk_[i];
    d.entry = state.index.find(d.key, d.hash);
    if (d.entry) {
      const auto& aggs = d.entry->second.aggs;
      __builtin_prefetch(aggs.data());
      __builtin_prefetch(reinterpret_cast<const char*>(aggs.data()) + 64);
    }
  }
  for (size_t i = 0; i < chunk_size_; ++i) {
    GroupDelta& d = chunk_[i];
    // A group created earlier in this chunk: find it now.
    if (!d.entry) d.entry = state.index.find(d.key, d.hash);
    apply_group_delta(state, track, d.row, d);
  }
  chunk_size_ = 0;
}

void View::apply_deltas(ViewState& state, bool track, GroupDelta* d, size_t n) {
  if (summing_) return sum_deltas(state, track, d, n);
  // Once the groups outgrow the caches each costs three misses in turn:
  // its index slot, its node, its aggregates. They are requested for a
  // chunk of deltas at a time, each kind after the one it depends on has
  // arrived, so that a chunk's misses overlap.
  constexpr size_t kChunk = 16;
  for (size_t from = 0; from < n; from += kChunk) {
    const size_t to = std::min(n, from + kChunk);
    for (size_t i = from; i < to; ++i) state.index.prefetch_slot(d[i].hash);
    for (size_t i = from; i < to; ++i) state.index.prefetch_entry(d[i].hash);
    for (size_t i = from; i < to; ++i) {
      GroupDelta& a = d[i];
      a.entry = state.index.find(a.key, a.hash);
      if (a.entry) {
        const char* aggs = reinterpret_cast<const char*>(a.entry->second.aggs.data());
        __builtin_prefetch(aggs);
        __builtin_prefetch(aggs + 64);
      }
    }
    for (size_t i = from; i < to; ++i) {
      GroupDelta& cur = d[i];
      // A group made by a delta before it in the chunk was not there yet.
      if (!cur.entry) cur.entry = state.index.find(cur.key, cur.hash);
      apply_group_delta(state, track, cur.row, cur);
    }
  }
}

int DecodeAhead::resolved_threads() const {
  if (threads >= 0) return threads;
  unsigned cores = std::thread::hardware_concurrency();
  return cores >= 2 ? int(cores) : 0;
}

bool View::decodes_ahead() const {
  return chunked() && deps_.decode_ahead.resolved_threads() > 0;
}

std::unique_ptr<ParallelDecoder> View::make_decoder(const std::vector<int64_t>& from, const std::vector<int64_t>& to) {
  ParallelDecoder::Options o;
  o.log = deps_.log;
  o.topic = spec_.source.topic;
  o.schema = spec_.source.schema;
  o.plan = &spec_.plan;
  o.tuning = deps_.decode_ahead;
  o.tuning.threads = deps_.decode_ahead.resolved_threads();
  // The workers sum too, unless the view stops at a malformed event: it
  // must then hold exactly the events before it, and a block's sums hold
  // those after it as well.
  int64_t behind = 0;
  for (size_t p = 0; p < std::min(from.size(), to.size()); ++p) behind += to[p] - from[p];
  o.sum = !spec_.stop_on_error && can_sum_ahead() && behind >= deps_.partial.min_records;
  o.sum_max_keys = deps_.partial.max_keys;
  o.sum_unit_records = deps_.partial.unit_records;
  return std::make_unique<ParallelDecoder>(std::move(o), from, to);
}

void View::maybe_decode_ahead() {
  if (decoding_ || !decodes_ahead() || !failure_.empty()) return;
  auto info = deps_.log->describe_topic(spec_.source.topic);
  if (!info) return;
  // The runner is the only writer of state_'s offsets (a rebuild waits for
  // rebuild_mu_, which the caller holds), so they are read without the lock.
  std::vector<int64_t> from = state_.next_offset;
  from.resize(size_t(info->partitions), 0);
  std::vector<int64_t> to = from;
  int64_t behind = 0;
  for (int32_t p = 0; p < info->partitions; ++p) {
    auto part = deps_.log->partition(spec_.source.topic, p);
    if (!part) continue;
    to[size_t(p)] = std::max(from[size_t(p)], part->high_watermark());
    behind += to[size_t(p)] - from[size_t(p)];
  }
  if (behind >= std::max<int64_t>(1, deps_.decode_ahead.min_records)) decoding_ = make_decoder(from, to);
}

bool View::apply_block(ViewState& state, bool track, DecodedBlock& b) {
  const size_t p = size_t(b.partition);
  if (state.next_offset.size() <= p) state.next_offset.resize(p + 1, 0);
  if (state.next_offset[p] != b.first_offset) return false;
  size_t at = 0;
  for (const DecodedBlock::Error& e : b.errors) {
    // Errors are reported in event order: what came before is applied first.
    apply_deltas(state, track, b.deltas.data() + at, e.before - at);
    at = e.before;
    record_error(state, b.partition, e.offset, e.reason);
    if (track && !failure_.empty()) {
      // on_error = 'stop': the view stays at the bad event.
      state.events += e.events_before + 1;
      state.next_offset[p] = e.offset;
      return false;
    }
  }
  apply_deltas(state, track, b.deltas.data() + at, b.size - at);
  if (b.sums) fold(state, track, *b.sums);
  state.events += b.events;
  state.next_offset[p] = b.next_offset;
  if (track && b.events > 0) last_record_ts_ = b.last_timestamp;
  return true;
}

int64_t View::apply_decoded(ViewState& state, bool track, ParallelDecoder& decoder, bool* out_of_step) {
  int64_t applied = 0;
  while (applied < kBatchRecordsMax) {
    DecodedBlock* b = decoder.try_next();
    if (!b) break;
    bool ok = apply_block(state, track, *b);
    if (ok) applied += b->events;
    decoder.release(b);
    if (!ok) {
      *out_of_step = true;
      break;
    }
  }
  return applied;
}

void View::apply_delta(ViewState& state, bool track, const std::string& identity, const Row& row, int weight,
                       bool count_errors, int32_t partition, int64_t offset) {
  const auto& plan = spec_.plan;
  if (plan.aggregate) {
    GroupDelta& d = single_;
    switch (prepare_group_delta(spec_.plan, row, &d, &reason_)) {
      case Prepared::kSkip: return;
      case Prepared::kError:
        if (count_errors) record_error(state, partition, offset, reason_);
        return;
      case Prepared::kReady: break;
    }
    d.weight = weight;
    apply_group_delta(state, track, row, d);
    return;
  }
  std::string& key = key_buf_;
  Row& args = args_;
  try {
    if (plan.filter && !sql::eval_predicate(*plan.filter, row)) return;
    if (spec_.kind == ViewKind::kIndex) {
      key.clear();
      sql::encode_key(row[size_t(spec_.index_column)], &key);
      key += identity;
      args = row;
    } else {
      key = identity;
      args.clear();
      for (const auto& o : plan.outputs) args.push_back(sql::eval(*o, row));
    }
  } catch (const sql::SqlException& e) {
    if (count_errors) record_error(state, partition, offset, "evaluating the view: " + e.error.message);
    return;
  }
  auto it = state.rows.find(key);
  if (track) {
    auto [d, first] = dirty_.try_emplace(key);
    if (first && it != state.rows.end()) d->second.before = it->second;
  }
  if (weight > 0) {
    if (it == state.rows.end()) {
      state.rows.emplace(key, args);
    } else {
      it->second = args;
    }
  } else if (it != state.rows.end()) {
    state.rows.erase(it);
  }
}

void View::finish_batch(ViewState& state) {
  for (auto* entry : touched_) {
    Group& g = entry->second;
    g.touched = false;
    if (g.rows <= 0 && !spec_.plan.group_exprs.empty()) {
      std::string key = entry->first;
      if (g.dirty_at >= 0) {
        // Its key stays dirty: the commit deletes its state and publishes
        // the retraction.
        DirtyGroup& dg = dirty_groups_[size_t(g.dirty_at)];
        dirty_[key].before = std::move(dg.before);
        dg.group = nullptr;
      }
      state.erase_key(entry->first);
      state.index.erase(key, GroupIndex::hash(key));
      state.groups.erase(key);
    }
  }
  touched_.clear();
}

void View::apply_record(ViewState& state, bool track, int32_t partition, int64_t offset,
                        std::optional<std::string_view> key, std::optional<std::string_view> value, size_t capacity) {
  ++state.events;
  Row& row = row_;
  std::string& reason = reason_;
  const SourceSpec& src = spec_.source;
  switch (src.kind) {
    case SourceKind::kAppend: {
      if (!value) {
        record_error(state, partition, offset, "null value (a tombstone) in an append-only table");
        return;
      }
      if (!decoder_->decode_row(*value, capacity, &row, &reason)) {
        record_error(state, partition, offset, reason);
        return;
      }
      // Only views that keep rows need the row's identity (its position).
      if (!spec_.plan.aggregate) identity_buf_ = identity_of(partition, offset);
      apply_delta(state, track, identity_buf_, row, +1, true, partition, offset);
      return;
    }
    case SourceKind::kUpsert: {
      std::string id;
      std::optional<Row> next;
      if (value) {
        if (!decoder_->decode_row(*value, capacity, &row, &reason)) {
          record_error(state, partition, offset, reason);
          return;
        }
        const Value& k = row[size_t(src.key_column)];
        if (k.is_null()) {
          record_error(state, partition, offset, fmt::format("null key \"{}\"", src.schema[size_t(src.key_column)].name));
          return;
        }
        id = sql::to_text(k);
        next = row;
      } else {
        if (!key) {
          record_error(state, partition, offset, "tombstone without a record key");
          return;
        }
        id = std::string(*key);
        if (id.size() >= 2 && id.front() == '"' && id.back() == '"') id = id.substr(1, id.size() - 2);
        // A key column of a numeric type: "42" and "42.0" name the same row only when the text matches.
      }
      auto it = state.upsert.find(id);
      if (it != state.upsert.end()) {
        apply_delta(state, track, id, it->second, -1, false, partition, offset);
      }
      if (next) {
        apply_delta(state, track, id, *next, +1, true, partition, offset);
        if (it != state.upsert.end()) {
          it->second = std::move(*next);
        } else {
          state.upsert.emplace(id, std::move(*next));
        }
      } else if (it != state.upsert.end()) {
        state.upsert.erase(it);
      }
      if (track) upsert_dirty_.insert(id);
      return;
    }
    case SourceKind::kChangelog: {
      std::optional<Row> before, after;
      if (!value || !decoder_->decode_change(*value, capacity, &before, &after, &reason)) {
        record_error(state, partition, offset, value ? reason : "null changelog record");
        return;
      }
      std::string id = key ? std::string(*key) : identity_of(partition, offset);
      if (before) apply_delta(state, track, id, *before, -1, false, partition, offset);
      if (after) apply_delta(state, track, id, *after, +1, true, partition, offset);
      return;
    }
  }
}

void View::append_to_chunk(ViewState& state, bool track, int32_t partition, int64_t offset,
                           std::optional<std::string_view> value, size_t capacity) {
  ++state.events;
  // Errors are reported in event order: what came before is applied first.
  if (!value) {
    flush_chunk(state, track);
    record_error(state, partition, offset, "null value (a tombstone) in an append-only table");
    return;
  }
  GroupDelta& d = chunk_[chunk_size_];
  if (!decoder_->decode_row(*value, capacity, &d.row, &reason_)) {
    flush_chunk(state, track);
    record_error(state, partition, offset, reason_);
    return;
  }
  switch (prepare_group_delta(spec_.plan, d.row, &d, &reason_)) {
    case Prepared::kSkip: return;
    case Prepared::kError:
      flush_chunk(state, track);
      record_error(state, partition, offset, reason_);
      return;
    case Prepared::kReady: break;
  }
  d.weight = +1;
  // A software pipeline: this event's slot now, the node of an event a few
  // places back (its slot has arrived by now), the aggregates in flush_chunk.
  if (summing_) {
    partial_->prefetch(d.hash);
  } else {
    state.index.prefetch_slot(d.hash);
    if (chunk_size_ >= kNodeDistance) state.index.prefetch_entry(chunk_[chunk_size_ - kNodeDistance].hash);
  }
  if (++chunk_size_ == chunk_.size()) flush_chunk(state, track);
}

int64_t View::process_some(ViewState& state, bool track, const std::vector<int64_t>* stop_at) {
  auto info = deps_.log->describe_topic(spec_.source.topic);
  if (!info) return 0;
  if (state.next_offset.size() < size_t(info->partitions)) state.next_offset.resize(size_t(info->partitions), 0);
  int64_t applied = 0;
  const bool chunked = this->chunked();
  for (int32_t p = 0; p < info->partitions; ++p) {
    if (applied >= kBatchRecordsMax) break;
    if (!failure_.empty() && track) break;
    int64_t& next = state.next_offset[size_t(p)];
    int64_t limit = INT64_MAX;
    if (stop_at) limit = size_t(p) < stop_at->size() ? (*stop_at)[size_t(p)] : 0;
    if (next >= limit) continue;
    auto part = deps_.log->partition(spec_.source.topic, p);
    if (!part) continue;
    auto got = reader_.read(*part, &next, kReadBytes);
    if (!got) {
      log_warn("view {}: reading {}/{}: {}", spec_.name, spec_.source.topic, p, got.status().to_string());
      continue;
    }
    reader_.for_each(
        *got, &next, limit,
        [&](const log::Record& r, size_t capacity) {
          if (chunked) {
            append_to_chunk(state, track, p, r.offset, r.value, capacity);
          } else {
            apply_record(state, track, p, r.offset, r.key, r.value, capacity);
          }
          // on_error = 'stop': the view stays at the bad event.
          if (track && !failure_.empty()) return false;
          ++applied;
          if (track) last_record_ts_ = r.timestamp;
          return true;
        },
        [&](const log::BatchHeader& h, const Status& s) {
          record_error(state, p, h.base_offset, "unreadable batch: " + s.message());
          return !(track && !failure_.empty());
        },
        [&] {
          if (chunk_size_ > 0) flush_chunk(state, track);
        });
    if (chunk_size_ > 0) flush_chunk(state, track);
  }
  return applied;
}

void View::append_key_json(std::string& out, const std::string& key, const Group* group, JsonWriter& scratch) const {
  auto array = [&](const Row& values) {
    out.push_back('[');
    for (size_t k = 0; k < values.size(); ++k) {
      if (k) out.push_back(',');
      append_value_json(out, values[k], scratch);
    }
    out.push_back(']');
  };
  if (spec_.plan.aggregate) {
    if (group) {
      array(group->key);
    } else if (auto decoded = sql::decode_row(key)) {
      array(*decoded);
    } else {
      out += "[]";
    }
    return;
  }
  switch (spec_.source.kind) {
    case SourceKind::kChangelog:
      out += key;  // the parent's key, already a JSON array
      return;
    case SourceKind::kUpsert: {
      auto typed = sql::coerce(Value::text(key), spec_.source.schema[size_t(spec_.source.key_column)].type);
      out.push_back('[');
      append_value_json(out, typed ? *typed : Value::text(key), scratch);
      out.push_back(']');
      return;
    }
    case SourceKind::kAppend: {
      // identity_of()'s "<partition>-<offset>" as [partition, offset].
      int64_t partition = 0, offset = 0;
      const char* end = key.data() + key.size();
      auto r = std::from_chars(key.data(), end, partition);
      if (r.ptr < end && *r.ptr == '-') std::from_chars(r.ptr + 1, end, offset);
      out.push_back('[');
      append_int_json(out, partition);
      out.push_back(',');
      append_int_json(out, offset);
      out.push_back(']');
      return;
    }
  }
  out += "[]";
}

Status View::republish_from_state(log::Partition& part, int64_t base, int64_t count, std::string_view marker) {
  size_t pos = 0;
  uint64_t ts = 0;
  if (!get_u64(marker, &pos, &ts)) return error(ErrorCode::kCorruption, "bad changelog outbox in view " + spec_.name);
  const int64_t hw = part.high_watermark();
  if (hw >= base + count) return Status::ok();
  if (hw < base) {
    log_warn("view {}: changelog ends at {} but the checkpoint expects {}; changes in between are lost "
             "(rebuild downstream views)",
             spec_.name, hw, base);
    return Status::ok();
  }
  // The commit's records: every group that shows a row, in key order.
  std::vector<GroupEntry*> shown;
  for (auto& e : state_.groups) {
    if (e.second.visible) shown.push_back(&e);
  }
  if (int64_t(shown.size()) != count) {
    log_warn("view {}: {} groups show a row but the last commit published {}; its changelog records "
             "from offset {} are lost (rebuild downstream views)",
             spec_.name, shown.size(), count, hw);
    return Status::ok();
  }
  std::sort(shown.begin(), shown.end(), [](const GroupEntry* a, const GroupEntry* b) { return a->first < b->first; });
  const ChangeRecords records(spec_.plan.output, std::string(marker.substr(pos)));
  JsonWriter scratch;
  std::string key_json, record;
  ChangeBatches changes{int64_t(ts)};
  for (size_t i = size_t(hw - base); i < shown.size(); ++i) {
    key_json.clear();
    append_key_json(key_json, shown[i]->first, &shown[i]->second, scratch);
    records.record(record, key_json, nullptr, &shown[i]->second.out, scratch);
    changes.add(key_json, record);
  }
  changes.close();
  for (std::string& b : changes.done) {
    auto r = part.append(MutableByteSpan(reinterpret_cast<uint8_t*>(b.data()), b.size()));
    if (!r) return r.status().with_context("re-appending view changelog");
  }
  log_info("view {}: re-appended {} of {} changelog records after a crash, from the state", spec_.name,
           base + count - hw, count);
  return Status::ok();
}

Status View::commit() {
  bool aggregate = spec_.plan.aggregate;
  int64_t ts = now_ms();
  std::string offsets_json;
  if (!spec_.changelog_topic.empty()) {
    JsonWriter o;
    o.begin_object();
    for (size_t p = 0; p < state_.next_offset.size(); ++p) {
      o.key(std::to_string(p));
      o.value(state_.next_offset[p]);
    }
    o.end_object();
    offsets_json = o.str();
  }
  // In key order: RocksDB's memtable inserts ascending keys cheaply (each
  // starts where the previous one ended), and random order made a commit
  // of many groups cost several microseconds per key. The sort compares
  // the keys' first eight bytes, kept beside the pointers, before it reads
  // the keys themselves.
  struct Item {
    uint64_t head;
    const std::string* key;
    const std::optional<Row>* before;
    GroupEntry* group;  // aggregates: the group when known
  };
  std::vector<Item> sorted;
  sorted.reserve(dirty_.size() + dirty_groups_.size());
  auto add = [&](const std::string& k, const std::optional<Row>* before, GroupEntry* group) {
    uint64_t head = 0;
    for (size_t i = 0; i < 8; ++i) head = (head << 8) | (i < k.size() ? uint8_t(k[i]) : 0);
    sorted.push_back({head, &k, before, group});
  };
  for (const auto& [k, d] : dirty_) add(k, &d.before, d.group);
  for (const DirtyGroup& dg : dirty_groups_) {
    if (dg.group) add(dg.group->first, &dg.before, dg.group);
  }
  std::sort(sorted.begin(), sorted.end(), [](const Item& a, const Item& b) {
    if (a.head != b.head) return a.head < b.head;
    return *a.key < *b.key;
  });
  // Reused: a commit's batch holds every changed group and the changelog
  // outbox, and building it in fresh memory each time cost a page fault per
  // 4 KiB of it (a fifth of the commit under a steady stream). A commit of
  // many keys (a backfill's) gets a batch of about its size at once rather
  // than growing one by doubling, which copied it all again at each step.
  if (sorted.size() >= kParallelCommitMin) {
    commit_batch_ = std::make_unique<rocksdb::WriteBatch>(sorted.size() * commit_bytes_per_key_);
  }
  rocksdb::WriteBatch& wb = *commit_batch_;
  wb.Clear();
  const std::string group_prefix = prefix('g'), row_prefix = prefix('r');
  auto group_of = [&](const Item& item) {
    return item.group ? item.group : state_.index.find(*item.key, GroupIndex::hash(*item.key));
  };
  // The state of item i into the write batch.
  const bool double_keys = ViewCodec::double_keys(spec_.plan);
  std::string db_key, encoded;
  auto store = [&](size_t i) {
    const std::string& key = *sorted[i].key;
    if (!aggregate) {
      put_row(wb, deps_.state, row_prefix + key, state_.rows, key);
      return;
    }
    db_key.assign(group_prefix).append(key);
    if (GroupEntry* g = group_of(sorted[i])) {
      ViewCodec::encode_group(g->second, double_keys, &encoded);
      wb.Put(deps_.state, db_key, encoded);
    } else {
      wb.Delete(deps_.state, db_key);
    }
  };
  const ChangeRecords records(spec_.plan.output, std::move(offsets_json));
  // A group's output row is computed here (and cached as the committed
  // row); the changelog record of item i follows when its row changed.
  struct Publisher {
    explicit Publisher(int64_t ts) : changes(ts) {}
    JsonWriter json;       // scratch for a value append_value_json() does not write itself
    std::string key_text;  // the record's key
    std::string record;    // and its value
    Row after_row;
    ChangeBatches changes;
  };
  auto publish = [&](size_t i, Publisher& pub) {
    const std::string& key = *sorted[i].key;
    const std::optional<Row>& before = *sorted[i].before;
    const Row* after = nullptr;  // the row now, when the view shows one (no copy)
    GroupEntry* g = nullptr;
    if (aggregate) {
      g = group_of(sorted[i]);
      if (g) {
        recompute(g->second);
        if (g->second.visible) after = &g->second.out;
      }
    } else if (visible_row(state_, key, &pub.after_row)) {
      after = &pub.after_row;
    }
    if (spec_.changelog_topic.empty() || rows_equal(before ? &*before : nullptr, after, false)) return;
    // The rows' JSON is write_row_json()'s, from pieces made once per
    // commit (the quoted field names).
    std::string& key_json = pub.key_text;
    key_json.clear();
    append_key_json(key_json, key, g ? &g->second : nullptr, pub.json);
    std::string& record = pub.record;
    records.record(record, key_json, before ? &*before : nullptr, after, pub.json);
    pub.changes.add(key_json, record);
  };
  // Before item i: the nodes of the group 2 * kAhead on, and what the
  // node of the group kAhead on points to (requested then, its node is in
  // the cache): its aggregates, and its key values when `key` (publishing).
  constexpr size_t kAhead = 8;
  auto prefetch = [&](size_t i, bool key) {
    if (i + 2 * kAhead < sorted.size()) {
      if (const GroupEntry* g = sorted[i + 2 * kAhead].group) {
        __builtin_prefetch(g);
        __builtin_prefetch(reinterpret_cast<const char*>(g) + 64);
      }
    }
    if (i + kAhead < sorted.size()) {
      if (const GroupEntry* g = sorted[i + kAhead].group) {
        __builtin_prefetch(g->second.aggs.data());
        if (key) __builtin_prefetch(g->second.key.data());
      }
    }
  };
  const int64_t base = changelog_end_;
  // The rest of the commit into the write batch, and the write: the
  // upserts' rows, the outbox (the changelog's batches, or with none a
  // marker: a recovery rebuilds them from the committed state), the
  // checkpoint.
  auto write = [&](int64_t count, const std::vector<std::string>* batches) {
    for (const std::string& key : upsert_dirty_) {
      put_row(wb, deps_.state, prefix('u') + key, state_.upsert, key);
    }
    std::string header;
    if (count > 0) {
      // The outbox value is its header and the batches, gathered by RocksDB
      // rather than concatenated here first.
      put_u64(&header, uint64_t(base));
      put_u64(&header, uint64_t(count));
      if (!batches) {
        header.push_back(kOutboxFromState);
        put_u64(&header, uint64_t(ts));
        header += records.offsets_json();
      }
      std::vector<rocksdb::Slice> parts{rocksdb::Slice(header)};
      if (batches) {
        for (const auto& b : *batches) parts.emplace_back(b);
      }
      const std::string outbox_key = prefix('o');
      rocksdb::Slice key(outbox_key);
      wb.Put(rocksdb::SliceParts(&key, 1), rocksdb::SliceParts(parts.data(), int(parts.size())));
    }
    std::string meta;
    put_u64(&meta, state_.next_offset.size());
    for (int64_t o : state_.next_offset) put_u64(&meta, uint64_t(o));
    put_u64(&meta, uint64_t(state_.events));
    put_u64(&meta, uint64_t(state_.errors));
    put_u64(&meta, state_.caught_up ? 1 : 0);
    put_u64(&meta, uint64_t(base + count));
    {
      std::lock_guard lock(progress_mu_);
      put_u64(&meta, failure_.size());
      meta += failure_;
    }
    wb.Put(prefix('m'), meta);
    // (A marker's batch holds no records: not a guess for the next.)
    if (!sorted.empty() && batches) {
      commit_bytes_per_key_ = std::clamp<size_t>(wb.GetDataSize() / sorted.size() * 9 / 8, 64, 4096);
    }
    auto s = deps_.db->Write(rocksdb::WriteOptions(), &wb);
    // A backfill's commits are tens of MB: keep no more than this between commits.
    if (wb.GetDataSize() > kCommitBatchKeepBytes) commit_batch_ = std::make_unique<rocksdb::WriteBatch>();
    return s;
  };
  // Every group in the view changed since the last commit, and none
  // showed a row before it (a backfill's first commit): with no HAVING,
  // the changelog then gets a record for each group that has rows, and a
  // recovery can rebuild those from the committed state alone. The
  // outbox is a marker, and the state is written while the records are
  // still being built, instead of after them with all their bytes.
  bool from_state = aggregate && !spec_.changelog_topic.empty() && !spec_.plan.having &&
                    sorted.size() >= kParallelCommitMin && dirty_.empty() && sorted.size() == state_.groups.size();
  for (size_t i = 0; from_state && i < sorted.size(); ++i) from_state = sorted[i].group && !*sorted[i].before;
  Publisher pub(ts);
  rocksdb::Status written;
  int64_t shown = 0;  // from_state: the groups that show a row
  if (aggregate && sorted.size() >= kParallelCommitMin) {
    // A backfill's first commit holds every group: the changelog records
    // (most of the work) are built on a second thread while this one
    // writes the groups' state, then the last of them, which takes it
    // about as long; neither writes what the other reads.
    const size_t split = sorted.size() - sorted.size() / kCommitTailShare;
    // Joined however this scope is left (an exception included).
    std::jthread publisher([&] {
      for (size_t i = 0; i < split; ++i) {
        prefetch(i, true);
        publish(i, pub);
      }
    });
    const bool all_show = spec_.plan.group_exprs.empty();
    for (size_t i = 0; i < sorted.size(); ++i) {
      prefetch(i, false);
      store(i);
      if (from_state) shown += all_show || sorted[i].group->second.rows > 0 ? 1 : 0;
    }
    if (from_state) written = write(shown, nullptr);
    Publisher tail(ts);
    for (size_t i = split; i < sorted.size(); ++i) {
      prefetch(i, true);
      publish(i, tail);
    }
    publisher.join();
    pub.changes.append(tail.changes);  // the tail's records follow the rest, in key order
  } else {
    for (size_t i = 0; i < sorted.size(); ++i) {
      prefetch(i, true);
      store(i);
      publish(i, pub);
    }
  }
  pub.changes.close();
  std::vector<std::string>& batches = pub.changes.done;
  const int64_t count = pub.changes.records;
  if (from_state) {
    EVERT_CHECK_MSG(count == shown, "a commit's records are its groups that show a row");
  } else {
    written = write(count, &batches);
  }
  if (!written.ok()) return error(ErrorCode::kIoError, "committing view " + spec_.name + ": " + written.ToString());
  if (count > 0) {
    auto part = deps_.log->partition(spec_.changelog_topic, 0);
    if (!part) return error(ErrorCode::kNotFound, "changelog topic " + spec_.changelog_topic + " is gone");
    for (auto& b : batches) {
      auto r = part->append(MutableByteSpan(reinterpret_cast<uint8_t*>(b.data()), b.size()));
      if (!r) return r.status().with_context("appending to " + spec_.changelog_topic);
      changelog_end_ = r->last_offset + 1;
    }
  }
  if (aggregate) {
    for (const DirtyGroup& dg : dirty_groups_) {
      if (dg.group) dg.group->second.dirty_at = -1;
    }
  }
  dirty_.clear();
  dirty_groups_.clear();
  upsert_dirty_.clear();
  last_commit_ = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(progress_mu_);
    committed_ = state_.next_offset;
  }
  progress_cv_.notify_all();
  return Status::ok();
}

Status View::write_full_state(ViewState& state) {
  rocksdb::WriteBatch wb;
  // An outbox marker stands for records rebuilt from the state it was
  // committed with: this state is another.
  std::string outbox;
  if (deps_.db->Get(rocksdb::ReadOptions(), prefix('o'), &outbox).ok() && outbox.size() > 16 &&
      outbox[16] == kOutboxFromState) {
    wb.Delete(prefix('o'));
  }
  for (char k : std::string("gru")) {
    std::string p = prefix(k);
    std::string end = p;
    end.back() = char(end.back() + 1);
    wb.DeleteRange(deps_.state, p, end);
  }
  const bool double_keys = ViewCodec::double_keys(spec_.plan);
  for (const auto& [key, g] : state.groups) {
    wb.Put(deps_.state, prefix('g') + key, ViewCodec::encode_group(g, double_keys));
  }
  for (const auto& [key, row] : state.rows) {
    std::string enc;
    sql::encode_row_exact(row, &enc);
    wb.Put(deps_.state, prefix('r') + key, enc);
  }
  for (const auto& [key, row] : state.upsert) {
    std::string enc;
    sql::encode_row_exact(row, &enc);
    wb.Put(deps_.state, prefix('u') + key, enc);
  }
  auto s = deps_.db->Write(rocksdb::WriteOptions(), &wb);
  if (!s.ok()) return error(ErrorCode::kIoError, s.ToString());
  return Status::ok();
}

void View::run() {
  auto rate_start = std::chrono::steady_clock::now();
  int64_t rate_events = 0;
  while (!stop_) {
    int64_t n = 0;
    int64_t decoded = 0;
    bool commit_due = false;
    {
      std::lock_guard rl(rebuild_mu_);
      maybe_decode_ahead();
      if (decoding_) decoding_->wait(std::chrono::steady_clock::now() + kDecodedWait);
      {
        std::unique_lock lock(state_mu_);
        if (failure_.empty()) {
          // Far behind, a view that can sum ahead takes a long batch: readers
          // see the state only between batches, so its sums are folded into
          // the groups before the lock is let go.
          summing_ = can_sum_ahead() && sums_ahead(lag_records());
          const auto until = std::chrono::steady_clock::now() + deps_.partial.window;
          while (true) {
            int64_t step;
            if (decoding_) {
              bool out_of_step = false;
              step = apply_decoded(state_, true, *decoding_, &out_of_step);
              decoded += step;
              // Whatever was not decoded ahead is read here from the state's offsets on.
              if (out_of_step || decoding_->done()) decoding_.reset();
            } else {
              step = process_some(state_, true, nullptr);
            }
            n += step;
            if (!summing_ || !failure_.empty() || stop_ || readers_waiting_.load(std::memory_order_relaxed) > 0) break;
            auto now = std::chrono::steady_clock::now();
            if (now >= until) break;
            if (step == 0) {
              if (!decoding_) break;  // caught up
              decoding_->wait(std::min(until, now + kDecodedWait));
            }
          }
          if (summing_) fold_partial(state_, true);
          summing_ = false;
        }
        finish_batch(state_);
        int64_t lag = lag_records();
        if (lag == 0 && !state_.caught_up) state_.caught_up = true;
        // Caught up, the view gives back its table of sums (tens of MB
        // after a large backfill); it makes another if it falls far behind.
        if (lag == 0) partial_.reset();
        auto since = std::chrono::steady_clock::now() - last_commit_;
        bool offsets_moved = committed_ != state_.next_offset;
        auto live_interval = std::clamp<std::chrono::steady_clock::duration>(
            kCommitDurationFactor * last_commit_took_, kCommitIntervalLive, kCommitIntervalLiveMax);
        commit_due = (has_dirty() || offsets_moved || !upsert_dirty_.empty()) &&
                     (since >= (lag == 0 ? live_interval : kCommitIntervalBackfill) ||
                      dirty_.size() + dirty_groups_.size() >= kDirtyMax);
        if (commit_due) {
          auto started = std::chrono::steady_clock::now();
          Status s = commit();
          last_commit_took_ = std::chrono::steady_clock::now() - started;
          if (!s) {
            log_error("view {}: {}", spec_.name, s.to_string());
            std::lock_guard lock2(progress_mu_);
            failure_ = s.to_string();
            phase_ = "failed";
          }
        }
        std::lock_guard lock2(progress_mu_);
        applied_ = state_.next_offset;
        events_since_start_ += n;
        decoded_ahead_ += decoded;
        summed_ahead_ += summed_;
        summed_ = 0;
        phase_ = !failure_.empty() ? "failed" : state_.caught_up ? "live" : "backfilling";
      }
      progress_cv_.notify_all();
    }
    rate_events += n;
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - rate_start).count();
    if (dt >= 1.0) {
      std::lock_guard lock(progress_mu_);
      rate_ = double(rate_events) / dt;
      rate_events = 0;
      rate_start = now;
    }
    if (n == 0 && !decoding_) {
      std::unique_lock lock(wake_mu_);
      bool pending;
      {
        std::shared_lock sl(state_mu_);
        pending = has_dirty() || committed_ != state_.next_offset;
      }
      wake_cv_.wait_for(lock, pending ? std::chrono::milliseconds(2) : std::chrono::milliseconds(100),
                        [&] { return wake_ || stop_.load(); });
      wake_ = false;
    }
  }
  decoding_.reset();
  std::unique_lock lock(state_mu_);
  if (has_dirty() || committed_ != state_.next_offset || !upsert_dirty_.empty()) {
    Status s = commit();
    if (!s) log_error("view {}: final commit: {}", spec_.name, s.to_string());
  }
}

std::shared_lock<std::shared_mutex> View::lock_for_reading() const {
  readers_waiting_.fetch_add(1, std::memory_order_relaxed);
  std::shared_lock lock(state_mu_);
  readers_waiting_.fetch_sub(1, std::memory_order_relaxed);
  return lock;
}

int64_t View::lag_records() const {
  int64_t lag = 0;
  auto info = deps_.log->describe_topic(spec_.source.topic);
  if (!info) return 0;
  for (int32_t p = 0; p < info->partitions; ++p) {
    auto part = deps_.log->partition(spec_.source.topic, p);
    int64_t next = size_t(p) < state_.next_offset.size() ? state_.next_offset[size_t(p)] : 0;
    if (part) lag += std::max<int64_t>(0, part->high_watermark() - next);
  }
  return lag;
}

bool View::can_sum_ahead() const {
  return chunked() && deps_.partial.min_records >= 0 && PartialAggregates::suits(spec_.plan);
}

bool View::sums_ahead(int64_t behind) {
  if (!can_sum_ahead() || behind < deps_.partial.min_records) return false;
  if (!partial_) partial_ = std::make_unique<PartialAggregates>(spec_.plan, deps_.partial.max_keys);
  return true;
}

void View::read(const std::function<void(const ViewState&)>& fn) const {
  auto lock = lock_for_reading();
  fn(state_);
}

void View::for_each_row(const ViewState& state, const sql::SelectPlan& plan,
                        const std::function<void(const std::string& key, const Row& row)>& fn) {
  if (plan.aggregate) {
    Row row;
    for (std::string_view k : state.sorted_keys()) {
      auto it = state.groups.find(std::string(k));
      if (it != state.groups.end() && group_output(plan, it->second, &row)) fn(it->first, row);
    }
    return;
  }
  for (const auto& [k, row] : state.rows) fn(k, row);
}

Status View::wait_applied(const std::map<int32_t, int64_t>& offsets, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(progress_mu_);
  auto reached = [&] {
    for (auto [p, o] : offsets) {
      if (size_t(p) >= applied_.size() || applied_[size_t(p)] <= o) return false;
    }
    return true;
  };
  // A failed view never advances: say so at once instead of at the deadline.
  if (!progress_cv_.wait_until(lock, deadline, [&] { return reached() || !failure_.empty(); }) || !reached()) {
    if (!failure_.empty()) return error(ErrorCode::kClosed, "view " + spec_.name + " failed: " + failure_);
    return error(ErrorCode::kTimeout, "view " + spec_.name + " has not caught up");
  }
  return Status::ok();
}

Result<int64_t> View::wait_committed(const std::map<int32_t, int64_t>& offsets,
                                     std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(progress_mu_);
  auto reached = [&] {
    for (auto [p, o] : offsets) {
      if (size_t(p) >= committed_.size() || committed_[size_t(p)] <= o) return false;
    }
    return true;
  };
  if (!progress_cv_.wait_until(lock, deadline, reached)) {
    return error(ErrorCode::kTimeout, "view " + spec_.name + " has not caught up");
  }
  lock.unlock();
  auto sl = lock_for_reading();
  return changelog_end_;
}

ViewStatus View::status() const {
  ViewStatus st;
  st.name = spec_.name;
  std::vector<int64_t> applied;
  {
    std::lock_guard lock(progress_mu_);
    st.state = phase_;
    st.events_since_start = events_since_start_;
    st.decoded_ahead = decoded_ahead_;
    st.summed_ahead = summed_ahead_;
    st.events_per_second = rate_;
    st.recent_errors.assign(recent_errors_.begin(), recent_errors_.end());
    if (phase_ == "failed") st.failure = failure_;  // with the offsets it failed at (run())
    applied = applied_;
  }
  {
    auto lock = lock_for_reading();
    st.events = state_.events;
    st.errors = state_.errors;
    st.rows = spec_.plan.aggregate ? int64_t(state_.groups.size()) : int64_t(state_.rows.size());
    if (spec_.plan.aggregate && spec_.plan.group_exprs.empty()) st.rows = 1;
  }
  st.offsets = applied;
  int64_t total = 0, done = 0;
  auto info = deps_.log->describe_topic(spec_.source.topic);
  if (info) {
    for (int32_t p = 0; p < info->partitions; ++p) {
      auto part = deps_.log->partition(spec_.source.topic, p);
      if (!part) continue;
      int64_t hw = part->high_watermark();
      int64_t start = part->log_start_offset();
      int64_t at = size_t(p) < applied.size() ? applied[size_t(p)] : 0;
      total += hw - start;
      done += std::max<int64_t>(0, std::min(at, hw) - start);
      st.lag_records += std::max<int64_t>(0, hw - at);
    }
  }
  st.progress = total == 0 ? 100.0 : 100.0 * double(done) / double(total);
  if (st.lag_records > 0 && last_record_ts_ > 0) st.lag_ms = std::max<int64_t>(0, now_ms() - last_record_ts_);
  return st;
}

Result<RebuildReport> View::rebuild() {
  std::lock_guard rl(rebuild_mu_);  // pauses the runner between batches
  std::vector<int64_t> target;
  {
    std::shared_lock lock(state_mu_);
    target = state_.next_offset;
  }
  {
    std::lock_guard lock(progress_mu_);
    phase_ = "rebuilding";
  }
  ViewState fresh;
  fresh.next_offset.assign(target.size(), 0);
  if (spec_.plan.aggregate && spec_.plan.group_exprs.empty()) {
    add_global_group(fresh);
  }
  // The runner is paused, so the reading buffers and touched_ are ours.
  int64_t total = 0;
  for (int64_t t : target) total += t;
  summing_ = sums_ahead(total);  // no reader sees `fresh` before the end
  if (decodes_ahead() && total >= deps_.decode_ahead.min_records) {
    auto decoder = make_decoder(fresh.next_offset, target);
    bool out_of_step = false;
    while (!decoder->done() && !out_of_step) {
      decoder->wait(std::chrono::steady_clock::now() + kDecodedWait);
      apply_decoded(fresh, false, *decoder, &out_of_step);
    }
    finish_batch(fresh);
  }
  // The rest (all of it when not decoded ahead) on this thread.
  while (true) {
    int64_t n = process_some(fresh, false, &target);
    finish_batch(fresh);
    if (n == 0) break;
  }
  if (summing_) fold_partial(fresh, false);
  summing_ = false;
  RebuildReport report;
  report.events = fresh.events;
  std::unique_lock lock(state_mu_);
  // The groups are about to be replaced: what changed since the last
  // commit is kept by key from here on.
  for (DirtyGroup& dg : dirty_groups_) {
    if (!dg.group) continue;
    dg.group->second.dirty_at = -1;
    dirty_[dg.group->first].before = std::move(dg.before);
  }
  dirty_groups_.clear();
  // Compare every key of either state.
  std::map<std::string, std::pair<std::optional<Row>, std::optional<Row>>> keys;
  bool aggregate = spec_.plan.aggregate;
  for_each_row(state_, spec_.plan, [&](const std::string& k, const Row& r) { keys[k].first = r; });
  for_each_row(fresh, spec_.plan, [&](const std::string& k, const Row& r) { keys[k].second = r; });
  for (auto& [k, pair] : keys) {
    // Sums of doubles depend on the order partitions were interleaved in,
    // so they may differ in the last bits: that is not a difference worth
    // reporting, but the changelog still gets the exact new value.
    if (!rows_equal(pair.first, pair.second, false)) {
      auto [d, first] = dirty_.try_emplace(k);
      if (first) d->second.before = pair.first;
    }
    if (!rows_equal(pair.first, pair.second, true)) ++report.differences;
  }
  report.rows = aggregate ? int64_t(fresh.groups.size()) : int64_t(fresh.rows.size());
  fresh.caught_up = state_.caught_up;
  fresh.errors = state_.errors;  // errors already reported stay counted once
  // Keys dirty before the rebuild keep their pre-commit "before" rows; their
  // groups are the fresh state's now.
  state_ = std::move(fresh);
  for (auto& [k, d] : dirty_) d.group = nullptr;
  Status s = write_full_state(state_);
  if (s) s = commit();
  {
    std::lock_guard plock(progress_mu_);
    phase_ = state_.caught_up ? "live" : "backfilling";
  }
  if (!s) return s;
  return report;
}

}  // namespace evert::views

namespace evert::views {

ViewState View::scan(const std::vector<int64_t>& stop_at) {
  ViewState fresh;
  fresh.next_offset.assign(stop_at.size(), 0);
  while (process_some(fresh, false, &stop_at) > 0) finish_batch(fresh);
  finish_batch(fresh);
  return fresh;
}

}  // namespace evert::views
