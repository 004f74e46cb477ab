// Partial aggregation for a view's long stretches of an append-only source
// (a backfill, a rebuild, a view far behind): the COUNT, SUM and AVG inputs
// of many events are summed per group key in one flat table, and each key's
// sums are folded into its group once (View::fold_partial) instead of each
// event looking its group up. A group costs three cache misses in turn (its
// index slot, its node, its aggregates) once the groups outgrow the caches;
// a key here costs one, and a key met a hundred times in a window is folded
// once.
//
// Exact by construction: integer addition is associative, so the order the
// events are summed in does not show. What depends on the order (the
// compensated sums of doubles, the multisets of MIN, MAX and COUNT DISTINCT)
// is not summed here (suits()). Owned by one thread (the view's runner, or a
// rebuild while the runner is paused).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sql/plan.h"

namespace evert::views {

struct Group;

class PartialAggregates {
 public:
  // COUNT(*), COUNT(x), and SUM and AVG of anything but doubles; group keys
  // that decode back to the values they were made from (no doubles: -0
  // encodes as 0); no DISTINCT aggregates, MIN or MAX.
  static bool suits(const sql::SelectPlan& plan);

  // Holds up to `max_keys` keys between folds.
  PartialAggregates(const sql::SelectPlan& plan, size_t max_keys);
  ~PartialAggregates();
  PartialAggregates(const PartialAggregates&) = delete;
  PartialAggregates& operator=(const PartialAggregates&) = delete;

  void prefetch(uint64_t hash) const { __builtin_prefetch(slot((hash | 1) & mask_)); }

  enum class Added {
    kOk,
    // A new key with max_keys held, or an integer sum that would leave
    // int64: fold what is held, then add again (an empty table takes it).
    kFull,
    // An argument that cannot be summed here (a double where the plan
    // promised none): fold what is held and apply the event to its group.
    kCannot,
  };
  // One event of group `key` (its encoded key and GroupIndex::hash) with
  // its evaluated aggregate arguments.
  Added add(std::string_view key, uint64_t hash, const sql::Row& args);

  size_t keys() const { return used_.size(); }
  int64_t events() const { return events_; }
  bool empty() const { return used_.empty(); }
  // The i-th key held, i < keys(), with its hash and sums (fold()'s input).
  std::string_view key(size_t i) const;
  void prefetch_held(size_t i) const { __builtin_prefetch(slot(used_[i])); }
  uint64_t hash(size_t i) const;
  const int64_t* sums(size_t i) const;
  // Adds one key's sums to its group, as the events would have one by one.
  void fold(const int64_t* sums, Group& g) const;
  void clear();  // keeps the table's memory for the next window
  // The table's size in slots; reserve() makes an empty table that size at
  // once (a power of two), so that it need not grow through the sizes
  // before it, rehashing at each.
  size_t slots() const { return slots_; }
  void reserve(size_t slots);

 private:
  // A slot: the hash (0: empty), the key's length (kSpilled: the key is in
  // spill_ at the offset and length stored in its place), up to kInlineBytes
  // of key, then the sums: [rows, per aggregate its count, and for SUM and
  // AVG its integer sum].
  static constexpr size_t kHeaderBytes = 32;
  static constexpr size_t kInlineBytes = kHeaderBytes - 9;
  static constexpr uint8_t kSpilled = 0xff;
  char* slot(size_t i) const { return table_ + i * stride_; }
  std::string_view slot_key(const char* s) const;
  int64_t* slot_sums(const char* s) const { return reinterpret_cast<int64_t*>(const_cast<char*>(s) + kHeaderBytes); }
  void grow();
  void allocate(size_t slots);

  struct Agg {
    size_t arg = 0;     // its argument in add()'s `args`
    int at = -1;        // its count in the sums; -1: COUNT(*), which is rows
    bool sum = false;  // SUM or AVG: its integer sum follows at `at + 1`
  };
  std::vector<Agg> aggs_;
  std::vector<Agg> counts_;  // those with a count (all but COUNT(*))
  std::vector<Agg> sums_;    // those with a sum (SUM, AVG)
  size_t counters_ = 1;
  size_t stride_ = 64;
  size_t max_keys_;
  char* table_ = nullptr;
  size_t slots_ = 0;
  size_t mask_ = 0;
  std::vector<uint32_t> used_;  // occupied slots, in the order their keys came
  std::string spill_;           // keys longer than kInlineBytes
  int64_t events_ = 0;
};

}  // namespace evert::views
