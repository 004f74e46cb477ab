// One continuously maintained derived relation: a materialized view, a
// secondary index, or the current rows of an upsert table. A View reads its
// source topic (a table's topic, or another view's changelog) from its last
// checkpoint, turns records into row changes (+row / -row), runs them
// through its SelectPlan (filter, group, aggregate, project) and keeps the
// result in memory (the hot tier). Every commit writes the changed state,
// the source offsets it reflects and the changelog records it produced to
// RocksDB in one atomic WriteBatch, then appends those records to the
// changelog topic (a single-slot outbox makes that append exactly-once
// across crashes).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "log/record_batch.h"
#include "sql/plan.h"
#include "views/source_reader.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class WriteBatch;
}

namespace evert {
class JsonWriter;
}

namespace evert::log {
class LogManager;
class Partition;
}

namespace evert::views {

class ParallelDecoder;
class PartialAggregates;
struct DecodedBlock;

// Memory for a view's groups on transparent huge pages. Every event probes
// the group index and then its group's node at random; with 4 KiB pages a
// large view's probes also miss the TLB (a 10 M-event backfill ran about
// 20% faster once the index alone was on huge pages). Blocks of up to
// kPooledMax bytes (hash-map nodes, aggregate arrays) are carved from shared
// 2 MiB chunks and recycled by size (never returned to the system); arrays of
// 2 MiB and more get their own huge pages; the rest comes from operator new.
// Under AddressSanitizer everything below 2 MiB comes from operator new, so
// that use-after-free stays visible.
namespace huge_pages {
constexpr size_t kHuge = size_t(2) << 20;
constexpr size_t kPooledMax = 1024;
// aligned_alloc + madvise(MADV_HUGEPAGE) of `bytes` rounded up to 2 MiB.
void* allocate_huge(size_t bytes);
// Zeroed memory of its own mapping, 2 MiB aligned with huge pages asked
// for: a large table that must start empty needs no memset of its own.
void* map_zeroed(size_t bytes);
void unmap_zeroed(void* p, size_t bytes);
void* allocate(size_t bytes);
void deallocate(void* p, size_t bytes);
}  // namespace huge_pages

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(huge_pages::allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { huge_pages::deallocate(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

// When a view of an aggregate over an append-only table decodes its
// source on other threads, ahead of its own (ParallelDecoder): a backfill,
// a rebuild, or a live view that fell far behind.
struct DecodeAhead {
  // 0: never, the view's thread decodes everything; -1: one per core when
  // there are two or more (resolved_threads()).
  int threads = -1;
  int resolved_threads() const;
  int64_t min_records = 1 << 18;  // only when the source is at least this far ahead
  // A stretch of a partition, decoded by one thread. Threads take the
  // stretches in order as they become free, and the view takes them back
  // in that order, so a thread can decode ahead only as far as its free
  // blocks reach: a stretch fits in half of them.
  int64_t unit_records = 8192;
  size_t block_events = 1024;  // records handed over at a time
};

// When a view sums its events per group key ahead of its groups
// (PartialAggregates): an aggregate of COUNT, SUM and AVG over an
// append-only table, at least `min_records` behind its source. It then takes
// its events in long batches of up to `window` (shorter when a reader waits
// for the state) and folds the sums into its groups at the end of each.
// Decoded ahead, the decoding threads sum their events themselves, a
// table per stretch of `unit_records` (or of `max_keys` keys), which the
// view folds in order.
struct PartialAggregation {
  int64_t min_records = 1 << 18;  // negative: never
  std::chrono::milliseconds window{1000};
  size_t max_keys = 1 << 18;  // keys in one table between folds
  int64_t unit_records = 1 << 22;
};

enum class SourceKind { kAppend, kUpsert, kChangelog };
enum class ViewKind { kView, kIndex, kTableState };

struct SourceSpec {
  std::string topic;
  SourceKind kind = SourceKind::kAppend;
  sql::Schema schema;   // the rows the source yields
  int key_column = -1;  // upsert: the key column
};

struct ViewSpec {
  std::string name;
  uint64_t id = 0;  // RocksDB key prefix; unique for the life of the data directory
  ViewKind kind = ViewKind::kView;
  SourceSpec source;
  sql::SelectPlan plan;
  std::string changelog_topic;  // empty: no changelog
  bool stop_on_error = false;
  int index_column = -1;  // kIndex: the indexed column of the source row
};

struct MalformedEvent {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string reason;
};

struct ViewStatus {
  std::string name;
  std::string state;  // "backfilling", "live", "rebuilding", "failed", "stopped"
  double progress = 0;  // percent of the source read
  int64_t events = 0;   // events processed in all (persisted)
  int64_t events_since_start = 0;
  int64_t decoded_ahead = 0;  // of those, records decoded on other threads (DecodeAhead)
  int64_t summed_ahead = 0;   // and events summed per group before their groups (PartialAggregation)
  double events_per_second = 0;
  int64_t lag_records = 0;
  int64_t lag_ms = 0;
  int64_t errors = 0;
  std::vector<MalformedEvent> recent_errors;
  std::string failure;
  int64_t rows = 0;
  std::vector<int64_t> offsets;  // next source offset per partition
};

struct RebuildReport {
  int64_t events = 0;
  int64_t rows = 0;
  int64_t differences = 0;  // rows whose rebuilt value differed from the maintained one
};

using ValueCounts = std::map<sql::Value, int64_t, sql::ValueLess>;

// One cache line: COUNT, SUM and AVG, most aggregates, touch nothing else.
struct AggState {
  int64_t count = 0;  // non-null inputs
  __int128 isum = 0;
  double dsum = 0;
  double dcomp = 0;  // Neumaier compensation: the sum is dsum + dcomp
  std::unique_ptr<ValueCounts> values;  // MIN/MAX/COUNT DISTINCT: each value's multiplicity (null: none yet)
};
static_assert(sizeof(AggState) <= 64);

struct Group {
  sql::Row key;
  int64_t rows = 0;
  std::vector<AggState, HugePageAllocator<AggState>> aggs;
  sql::Row out;
  bool visible = false;
  bool touched = false;   // in View::touched_: lost a row in the current batch
  int32_t dirty_at = -1;  // its entry in View::dirty_groups_ since the last commit; -1: none
  bool stale = true;   // `out` and `visible` predate the latest change (see group_output)
};

// Folds one input row (its aggregate arguments, already evaluated) into a
// group with weight +1 or -1; recompute_group() derives the output row.
void apply_to_group(const sql::SelectPlan& plan, Group& g, const sql::Row& args, int weight);
void recompute_group(const sql::SelectPlan& plan, Group& g);
// The group's output row, from the cache or computed when it is stale
// (the runner refreshes caches at commit, not per event); false when the
// group shows no row (empty, or HAVING rejects it).
bool group_output(const sql::SelectPlan& plan, const Group& g, sql::Row* out);
// [group key values..., aggregate results...]
sql::Row group_combined(const sql::SelectPlan& plan, const Group& g);

using GroupEntry = std::pair<const std::string, Group>;
using GroupMap = std::unordered_map<std::string, Group, std::hash<std::string>, std::equal_to<std::string>,
                                    HugePageAllocator<GroupEntry>>;

// An open-addressing index over the nodes of ViewState::groups for the
// per-event lookup: one probe into a flat array instead of
// std::unordered_map's bucket -> previous node -> node chain, which costs a
// cache miss per step once there are many groups.
class GroupIndex {
 public:
  // Never 0 (an empty slot). In memory only: nothing stored depends on it.
  static uint64_t hash(std::string_view key);
  GroupEntry* find(std::string_view key, uint64_t h) const;
  // Cache hints for a lookup soon: the slot, then the node it points at.
  void prefetch_slot(uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[h & (slots_.size() - 1)]);
  }
  void prefetch_entry(uint64_t h) const;
  void insert(GroupEntry* entry, uint64_t h);
  void erase(std::string_view key, uint64_t h);
  void reserve(size_t n);  // room for n entries without growing
  void clear() {
    slots_.clear();
    size_ = 0;
  }

 private:
  struct Slot {
    uint64_t hash = 0;  // 0: empty
    GroupEntry* entry = nullptr;
  };
  void grow();
  void rehash(size_t slots);
  std::vector<Slot, HugePageAllocator<Slot>> slots_;
  size_t size_ = 0;
};

// An input row's change to one group of an aggregate view.
struct GroupDelta {
  sql::Row row;     // the input row (chunked paths; the per-event path passes its own)
  std::string key;  // encoded group key
  sql::Row key_values;  // the key's values, unless every group expression is a column of `row`
  sql::Row args;
  uint64_t hash = 0;
  GroupEntry* entry = nullptr;  // when already looked up
  int weight = 1;
};
// The input columns prepare_group_delta() and a new group's key read.
std::vector<bool> columns_read(const sql::SelectPlan& plan);
enum class Prepared { kReady, kSkip, kError };
// Evaluates the plan's filter, group key and aggregate arguments over `row`
// into *d (kSkip: the filter rejects it; kError: *reason says why). Pure:
// decoding threads call it ahead of the view's thread.
Prepared prepare_group_delta(const sql::SelectPlan& plan, const sql::Row& row, GroupDelta* d, std::string* reason);

// The state of one view at some source offsets; a rebuild builds a second one.
struct ViewState {
  GroupMap groups;                                // aggregate views
  GroupIndex index;                               // over `groups`
  // Keys of `groups` in order, for ordered reads. A new key waits in
  // `order_pending` until a reader needs the order (sorted_keys()) or its
  // group is erased: a tree insert per new group was a cost every backfill
  // paid whether or not anyone ever read the view in order.
  const std::set<std::string_view>& sorted_keys() const;
  void add_key(std::string_view key) { order_pending.push_back(key); }
  void erase_key(std::string_view key) {
    (void)sorted_keys();
    order.erase(key);
  }
  mutable std::set<std::string_view> order;
  mutable std::vector<std::string_view> order_pending;
  std::map<std::string, sql::Row> rows;           // non-aggregate views and indexes
  std::unordered_map<std::string, sql::Row> upsert;  // upsert source: key -> current row
  std::vector<int64_t> next_offset;               // per source partition
  int64_t events = 0;
  int64_t errors = 0;
  bool caught_up = false;
};

class View {
 public:
  struct Deps {
    log::LogManager* log = nullptr;
    rocksdb::DB* db = nullptr;
    // Where the view's rows and groups go (many small keys, written in
    // bulk and read only when the view opens); the checkpoint and the
    // changelog outbox stay in the default column family.
    rocksdb::ColumnFamilyHandle* state = nullptr;
    DecodeAhead decode_ahead;
    PartialAggregation partial;
  };
  View(ViewSpec spec, Deps deps);
  ~View();

  // Loads the checkpoint (or starts empty), finishes a pending changelog append.
  Status open();
  void start();
  void stop();
  // Removes every key of this view from RocksDB (after stop()).
  Status destroy();

  const ViewSpec& spec() const { return spec_; }
  ViewStatus status() const;
  void notify();  // new data may be in the source

  // Readers run under a shared lock and see the state between batches.
  void read(const std::function<void(const ViewState&)>& fn) const;
  // The output row of an aggregate group / a keyed row, by encoded key.
  // Waits until every source partition has been applied up to `offsets`
  // (partition -> offset that must be included), or the deadline passes.
  Status wait_applied(const std::map<int32_t, int64_t>& offsets, std::chrono::steady_clock::time_point deadline);
  // Waits until the changelog holds every change up to `offsets` of the
  // source, then returns the changelog's end offset.
  Result<int64_t> wait_committed(const std::map<int32_t, int64_t>& offsets,
                                 std::chrono::steady_clock::time_point deadline);
  // Recomputes the state from the start of the source up to the current
  // offsets, compares it with the maintained state, and replaces it.
  Result<RebuildReport> rebuild();
  // Reads the source from its start up to `stop_at` (per partition,
  // exclusive) into a fresh state, without committing (ad-hoc scans).
  ViewState scan(const std::vector<int64_t>& stop_at);

  // Rows of the view in key order (a snapshot), for SELECT.
  static void for_each_row(const ViewState& state, const sql::SelectPlan& plan,
                           const std::function<void(const std::string& key, const sql::Row& row)>& fn);

 private:
  void run();
  // Reads and applies up to a budget of records; returns records applied.
  int64_t process_some(ViewState& state, bool track, const std::vector<int64_t>* stop_at);
  void apply_record(ViewState& state, bool track, int32_t partition, int64_t offset,
                    std::optional<std::string_view> key, std::optional<std::string_view> value, size_t capacity);
  void apply_delta(ViewState& state, bool track, const std::string& identity, const sql::Row& row, int weight,
                   bool count_errors, int32_t partition, int64_t offset);
  // `row` is the input row `d` was prepared from (a new group evaluates its key there).
  void apply_group_delta(ViewState& state, bool track, const sql::Row& row, GroupDelta& d);
  // The group of `key` (`entry` when already looked up), made when missing
  // with `key_values` (all of the key's values) or else the key evaluated
  // over `row`; marked changed since the last commit.
  GroupEntry* change_group(ViewState& state, bool track, GroupEntry* entry, std::string_view key, uint64_t hash,
                           const sql::Row& key_values, const sql::Row& row);
  // While summing_: the deltas go into partial_ instead of their groups.
  void sum_deltas(ViewState& state, bool track, GroupDelta* deltas, size_t count);
  void sum_delta(ViewState& state, bool track, GroupDelta& delta);  // its slot requested already
  // Folds partial_'s sums into their groups and empties it.
  void fold_partial(ViewState& state, bool track);
  // Folds `sums` into their groups (a block's table is emptied by the
  // decoding thread that fills it next, off the view's thread).
  void fold(ViewState& state, bool track, PartialAggregates& sums);
  // Whether the view can sum ahead (PartialAggregates::suits and the
  // options), and whether a stretch of `behind` records is (partial_ is
  // made then).
  bool can_sum_ahead() const;
  bool sums_ahead(int64_t behind);
  // Records of the source not yet applied to state_ (the runner's; a rebuild pauses it).
  int64_t lag_records() const;
  // A shared lock of state_mu_, counted in readers_waiting_ while it waits.
  std::shared_lock<std::shared_mutex> lock_for_reading() const;
  // Aggregates over an append-only table, the bulk of a backfill, whose
  // events go through chunks with overlapped group lookups (or are decoded
  // ahead) and read only the columns of columns_read().
  bool chunked() const { return spec_.plan.aggregate && spec_.source.kind == SourceKind::kAppend; }
  // Append-source aggregates: decode and prepare into chunk_, apply a chunk at a time.
  void append_to_chunk(ViewState& state, bool track, int32_t partition, int64_t offset,
                       std::optional<std::string_view> value, size_t capacity);
  void flush_chunk(ViewState& state, bool track);
  // Prepared deltas of an append source, in order, their lookups overlapped.
  void apply_deltas(ViewState& state, bool track, GroupDelta* deltas, size_t count);
  // The runner's backfill through decoding_: starts it when the source is
  // far ahead, applies blocks as they come (up to a lock hold's worth;
  // returns the records applied), and drops it when done or out of step.
  void maybe_decode_ahead();
  // *out_of_step: a block did not follow the state's offsets, or the view
  // stopped at a malformed event in it; the decoder is of no more use.
  int64_t apply_decoded(ViewState& state, bool track, ParallelDecoder& decoder, bool* out_of_step);
  bool apply_block(ViewState& state, bool track, DecodedBlock& block);
  bool decodes_ahead() const;
  std::unique_ptr<ParallelDecoder> make_decoder(const std::vector<int64_t>& from, const std::vector<int64_t>& to);
  void finish_batch(ViewState& state);
  void record_error(ViewState& state, int32_t partition, int64_t offset, std::string reason);
  Status commit();
  Status write_full_state(ViewState& state);
  std::string prefix(char kind) const;
  // The changelog's JSON key of a state key (always a JSON array) appended
  // to `out`; `scratch` writes the values append_value_json() leaves to it.
  void append_key_json(std::string& out, const std::string& key, const Group* group, JsonWriter& scratch) const;
  // Recovery of a commit whose outbox is a marker (View::commit): its
  // records, one per group that shows a row, rebuilt from the loaded state
  // and appended from where the changelog `part` ends. `marker` is the
  // outbox after its base and count.
  Status republish_from_state(log::Partition& part, int64_t base, int64_t count, std::string_view marker);
  bool visible_row(const ViewState& state, const std::string& key, sql::Row* out) const;
  void recompute(Group& g) const { recompute_group(spec_.plan, g); }
  // The one row of a view with aggregates and no GROUP BY, present from the start.
  GroupEntry* add_global_group(ViewState& state) const;

  ViewSpec spec_;
  Deps deps_;
  std::unique_ptr<class EventDecoder> decoder_;
  std::unique_ptr<ParallelDecoder> decoding_;  // the runner's, while a long backfill is decoded ahead
  std::unique_ptr<PartialAggregates> partial_;  // when the plan suits it (PartialAggregates::suits)
  bool summing_ = false;  // deltas go to partial_ (in the runner's long batch, or a rebuild)
  int64_t summed_ = 0;  // events folded since the runner's last batch ended
  // Readers waiting for state_mu_: the runner ends a long batch early for them.
  mutable std::atomic<int> readers_waiting_{0};
  std::unique_ptr<rocksdb::WriteBatch> commit_batch_;  // commit()'s, reused
  size_t commit_bytes_per_key_ = 320;  // of the last commit, with a margin: a large commit's first guess

  mutable std::shared_mutex state_mu_;
  ViewState state_;
  std::vector<std::pair<const std::string, Group>*> touched_;  // groups that lost a row in the current batch
  // Reused per event (the runner thread owns them; a rebuild pauses it).
  std::string key_buf_;
  sql::Row args_, row_, key_values_;
  GroupDelta single_;
  std::array<GroupDelta, 32> chunk_;
  size_t chunk_size_ = 0;
  std::string reason_;
  std::string identity_buf_;
  // Since the last commit: key -> visible row before the first change.
  struct DirtyKey {
    std::optional<sql::Row> before;  // the visible row at the last commit
    GroupEntry* group = nullptr;     // aggregates: the group now, when it exists and is known
  };
  std::unordered_map<std::string, DirtyKey> dirty_;
  // Aggregates: the groups changed since the last commit, each with its
  // visible row then. Kept beside the groups instead of in dirty_, whose
  // per-group hash insert and node were a large part of steady maintenance.
  // dirty_ still holds the keys of groups erased since (their `before`
  // moved there) and, after a rebuild, the keys whose rows it changed; a
  // group made again under such a key takes its `before` back from there.
  struct DirtyGroup {
    GroupEntry* group = nullptr;  // null once the group is erased (its key is in dirty_ then)
    std::optional<sql::Row> before;
  };
  std::vector<DirtyGroup> dirty_groups_;
  bool has_dirty() const { return !dirty_.empty() || !dirty_groups_.empty(); }
  std::set<std::string> upsert_dirty_;
  int64_t changelog_end_ = 0;

  mutable std::mutex progress_mu_;
  std::condition_variable progress_cv_;
  std::vector<int64_t> applied_;    // published after each batch
  std::vector<int64_t> committed_;  // published after each commit
  std::deque<MalformedEvent> recent_errors_;
  std::string failure_;
  std::string phase_ = "backfilling";
  int64_t events_since_start_ = 0;
  int64_t decoded_ahead_ = 0;
  int64_t summed_ahead_ = 0;
  double rate_ = 0;
  std::atomic<int64_t> last_record_ts_{0};  // written by the runner, read by status()

  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool wake_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  std::mutex rebuild_mu_;
  SourceReader reader_;  // the runner's (a rebuild pauses it and reads with it)
  std::chrono::steady_clock::time_point last_commit_;
  std::chrono::steady_clock::duration last_commit_took_{};
};

}  // namespace evert::views
