#include "views/partial_aggregates.h"

#include <cstdlib>
#include <cstring>

#include "base/assert.h"
#include "views/view.h"

namespace evert::views {

using sql::AggKind;
using sql::Type;

namespace {

constexpr size_t kSlotsMin = huge_pages::kHuge / 64;  // one huge page of 64-byte slots (the smallest)

bool sums_exactly(const sql::AggSpec& a) {
  switch (a.kind) {
    case AggKind::kCountStar:
    case AggKind::kCount: return true;
    case AggKind::kSum:
    case AggKind::kAvg: return a.arg && a.arg->type != Type::kDouble;
    case AggKind::kMin:
    case AggKind::kMax:
    case AggKind::kCountDistinct: return false;
  }
  return false;
}

}  // namespace

bool PartialAggregates::suits(const sql::SelectPlan& plan) {
  if (!plan.aggregate) return false;
  for (const auto& a : plan.aggs) {
    if (!sums_exactly(a)) return false;
  }
  for (const auto& g : plan.group_exprs) {
    if (g->type == Type::kDouble) return false;
  }
  return true;
}

PartialAggregates::PartialAggregates(const sql::SelectPlan& plan, size_t max_keys) : max_keys_(max_keys) {
  EVERT_CHECK(suits(plan));
  for (const auto& a : plan.aggs) {
    Agg agg;
    agg.arg = aggs_.size();
    if (a.kind != AggKind::kCountStar) {
      agg.at = int(counters_);
      agg.sum = a.kind == AggKind::kSum || a.kind == AggKind::kAvg;
      counters_ += agg.sum ? 2 : 1;
      counts_.push_back(agg);
      if (agg.sum) sums_.push_back(agg);
    }
    aggs_.push_back(agg);
  }
  stride_ = (kHeaderBytes + 8 * counters_ + 63) / 64 * 64;
  allocate(kSlotsMin);
}

PartialAggregates::~PartialAggregates() { huge_pages::unmap_zeroed(table_, slots_ * stride_); }

void PartialAggregates::allocate(size_t slots) {
  table_ = static_cast<char*>(huge_pages::map_zeroed(slots * stride_));
  slots_ = slots;
  mask_ = slots - 1;
}

std::string_view PartialAggregates::slot_key(const char* s) const {
  auto len = uint8_t(s[8]);
  if (len != kSpilled) return {s + 9, len};
  uint32_t at, size;
  std::memcpy(&at, s + 9, 4);
  std::memcpy(&size, s + 13, 4);
  return {spill_.data() + at, size};
}

PartialAggregates::Added PartialAggregates::add(std::string_view key, uint64_t hash, const sql::Row& args) {
  for (const Agg& a : sums_) {
    if (args[a.arg].type == Type::kDouble) return Added::kCannot;
  }
  hash |= 1;
  char* s;
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    s = slot(i);
    uint64_t h;
    std::memcpy(&h, s, 8);
    if (h == hash) {
      // Most keys are inline: their length byte, then their bytes.
      if (key.size() <= kInlineBytes ? uint8_t(s[8]) == key.size() && std::memcmp(s + 9, key.data(), key.size()) == 0
                                     : slot_key(s) == key)
        break;
    }
    if (h != 0) continue;
    // A new key.
    if (used_.size() >= max_keys_) return Added::kFull;
    if ((used_.size() + 1) * 2 > slots_) {
      grow();
      return add(key, hash, args);
    }
    std::memcpy(s, &hash, 8);
    if (key.size() <= kInlineBytes) {
      s[8] = char(key.size());
      std::memcpy(s + 9, key.data(), key.size());
    } else {
      s[8] = char(kSpilled);
      auto at = uint32_t(spill_.size()), size = uint32_t(key.size());
      spill_.append(key);
      std::memcpy(s + 9, &at, 4);
      std::memcpy(s + 13, &size, 4);
    }
    used_.push_back(uint32_t(i));
    break;
  }
  int64_t* sums = slot_sums(s);
  // The sums change only once every one of them is known to fit, so a
  // refused event leaves the table as it was. A new key's sums are zero,
  // and zero plus any int64 fits: an emptied table always takes the event.
  for (const Agg& a : sums_) {
    int64_t unused;
    if (!args[a.arg].is_null() && __builtin_add_overflow(sums[a.at + 1], args[a.arg].i, &unused)) return Added::kFull;
  }
  ++sums[0];
  for (const Agg& a : counts_) {
    if (!args[a.arg].is_null()) ++sums[a.at];
  }
  for (const Agg& a : sums_) {
    if (!args[a.arg].is_null()) sums[a.at + 1] += args[a.arg].i;
  }
  ++events_;
  return Added::kOk;
}

void PartialAggregates::reserve(size_t slots) {
  if (!empty() || slots <= slots_ || (slots & (slots - 1)) != 0) return;
  char* old = table_;
  const size_t old_bytes = slots_ * stride_;
  allocate(slots);  // first: when it throws, the table is still the old one
  huge_pages::unmap_zeroed(old, old_bytes);
}

void PartialAggregates::grow() {
  char* old = table_;
  size_t old_bytes = slots_ * stride_;
  allocate(slots_ * 2);
  for (uint32_t& u : used_) {
    const char* from = old + size_t(u) * stride_;
    uint64_t h;
    std::memcpy(&h, from, 8);
    size_t i = h & mask_;
    while (true) {
      uint64_t there;
      std::memcpy(&there, slot(i), 8);
      if (there == 0) break;
      i = (i + 1) & mask_;
    }
    std::memcpy(slot(i), from, stride_);
    u = uint32_t(i);
  }
  huge_pages::unmap_zeroed(old, old_bytes);
}

std::string_view PartialAggregates::key(size_t i) const { return slot_key(slot(used_[i])); }

uint64_t PartialAggregates::hash(size_t i) const {
  uint64_t h;
  std::memcpy(&h, slot(used_[i]), 8);
  return h;
}

const int64_t* PartialAggregates::sums(size_t i) const { return slot_sums(slot(used_[i])); }

void PartialAggregates::fold(const int64_t* sums, Group& g) const {
  g.rows += sums[0];
  for (size_t i = 0; i < aggs_.size(); ++i) {
    const Agg& a = aggs_[i];
    if (a.at < 0) continue;
    AggState& st = g.aggs[i];
    st.count += sums[a.at];
    if (a.sum) st.isum += sums[a.at + 1];
  }
}

void PartialAggregates::clear() {
  // Past an eighth of the slots, one pass over the whole table (the
  // hardware reads ahead of it) beats a cache miss per slot used.
  if (used_.size() * 8 > slots_) {
    std::memset(table_, 0, slots_ * stride_);
  } else {
    for (uint32_t u : used_) std::memset(slot(u), 0, stride_);
  }
  used_.clear();
  spill_.clear();
  events_ = 0;
}

}  // namespace evert::views
