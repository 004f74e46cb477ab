// A Partition driven by random operations and compared, after every one of
// them, with a trivially correct model: a deque of records with offsets
// (STYLE.md habit 13).
//
// The partition runs on MemEnv with a ManualClock and small segments and
// index intervals, so rolls, index entries, retention, reopens, power cuts
// (with torn tails) and full disks all happen many times per run.
//
// Every run is a seed. A failing run prints its seed and the last operations;
//   EVERT_SEED=<seed> ./evert_log_test --gtest_filter='PartitionModel*'
// replays just that seed. EVERT_MODEL_SEEDS and EVERT_MODEL_OPS change how
// many seeds (default 200) and operations per seed (default 300) run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/logging.h"
#include "log/log_test_util.h"
#include "log/partition.h"
#include "testing/mem_env.h"

namespace evert::log {
namespace {

using evert::testing::MemEnv;
using test::TestRecord;

constexpr int kDefaultSeeds = 200;
constexpr int kDefaultOps = 300;
constexpr size_t kHistoryMax = 40;
const std::string kDir = "/data/topic/0";

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

class ModelRun {
 public:
  ModelRun(uint64_t seed, int ops) : seed_(seed), ops_(ops), rng_(seed) {}

  void run() {
    choose_config();
    open(true);
    for (int i = 0; i < ops_ && !failed(); ++i) {
      step(i);
      if (!failed()) check_invariants();
    }
    if (failed()) print_history();
  }

 private:
  static bool failed() { return ::testing::Test::HasFailure(); }

  uint64_t uniform(uint64_t lo, uint64_t hi) { return lo + rng_() % (hi - lo + 1); }  // [lo, hi]
  bool chance(int percent) { return int(rng_() % 100) < percent; }
  template <typename T>
  T pick(const std::vector<T>& choices) {
    return choices[rng_() % choices.size()];
  }

  void note(std::string what) {
    history_.push_back(std::move(what));
    if (history_.size() > kHistoryMax) history_.pop_front();
  }
  void print_history() const {
    std::string text = "config: " + config_text_ + "\nlast operations (oldest first):\n";
    for (const auto& h : history_) text += "  " + h + "\n";
    ADD_FAILURE() << text << "replay with EVERT_SEED=" << seed_;
  }

  void choose_config() {
    options_.clock = &clock_;
    options_.config.segment_bytes = 4096;
    options_.config.index_interval_bytes = 256;
    options_.config.retention_ms = pick<int64_t>({-1, 60'000, 200'000});
    options_.config.retention_bytes = pick<int64_t>({-1, 16'384, 40'000});
    options_.config.segment_ms = pick<int64_t>({7LL * 24 * 3600 * 1000, 30'000});
    log_append_time_ = chance(20);
    options_.config.timestamp_type = log_append_time_ ? TimestampType::kLogAppendTime : TimestampType::kCreateTime;
    options_.flush.kind = pick<FlushPolicy::Kind>(
        {FlushPolicy::Kind::kEveryAppend, FlushPolicy::Kind::kNone, FlushPolicy::Kind::kInterval});
    every_append_ = options_.flush.kind == FlushPolicy::Kind::kEveryAppend;
    config_text_ = "retention.ms " + std::to_string(options_.config.retention_ms) + ", retention.bytes " +
                   std::to_string(options_.config.retention_bytes) + ", segment.ms " +
                   std::to_string(options_.config.segment_ms) + ", flush " + flush_policy_name(options_.flush) +
                   (log_append_time_ ? ", LogAppendTime" : ", CreateTime");
  }

  void open(bool recover_active) {
    p_.reset();
    options_.recover_active_segment = recover_active;
    PartitionRecovery recovery;
    auto p = Partition::open(env_, kDir, options_, &recovery);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    p_ = std::move(p).value();
  }

  void step(int i) {
    int r = int(rng_() % 100);
    std::string prefix = "#" + std::to_string(i) + " ";
    if (r < 32) return do_append(prefix, false);
    if (r < 35) return do_append(prefix, true);
    if (r < 55) return do_read(prefix);
    if (r < 58) return do_read_all(prefix);
    if (r < 66) return do_offset_for_timestamp(prefix);
    if (r < 69) return do_roll(prefix);
    if (r < 77) return do_advance_clock(prefix);
    if (r < 82) return do_retention(prefix);
    if (r < 87) return do_sync(prefix);
    if (r < 91) return do_reopen(prefix);
    if (r < 97) return do_crash(prefix);
    return do_clean_close_then_power_cut(prefix);
  }

  // --- Operations --------------------------------------------------------

  std::string random_bytes(size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = char(rng_());
    return s;
  }

  TestRecord random_record() {
    TestRecord r;
    if (!chance(20)) r.key = "k" + std::to_string(uniform(0, 50));
    if (!chance(10)) r.value = random_bytes(size_t(uniform(0, 100)));
    int64_t now = clock_.now_ms();
    int kind = int(uniform(0, 99));
    if (kind < 5) {
      r.timestamp = now - int64_t(uniform(0, 100'000));  // a late record
    } else if (kind < 8) {
      r.timestamp = now + int64_t(uniform(10'000, 60'000));  // a producer with a fast clock
    } else {
      r.timestamp = now + int64_t(uniform(0, 4000)) - 2000;
    }
    if (chance(10)) {
      r.headers.emplace_back("h" + std::to_string(uniform(0, 9)), random_bytes(size_t(uniform(0, 10))));
      if (chance(50)) r.headers.emplace_back("null", std::nullopt);
    }
    return r;
  }

  void do_append(const std::string& prefix, bool disk_fills) {
    int batch_count = int(uniform(1, 5));
    std::vector<std::vector<TestRecord>> batches;
    std::string data;
    int64_t records = 0;
    for (int b = 0; b < batch_count; ++b) {
      std::vector<TestRecord> batch;
      int n = int(uniform(1, 20));
      for (int k = 0; k < n; ++k) batch.push_back(random_record());
      data += test::build_batch(batch);
      records += n;
      batches.push_back(std::move(batch));
    }
    int64_t budget = disk_fills ? int64_t(uniform(0, data.size() + 100)) : -1;
    note(prefix + "append " + std::to_string(batch_count) + " batches, " + std::to_string(records) + " records, " +
         std::to_string(data.size()) + " bytes" + (disk_fills ? ", disk full after " + std::to_string(budget) : ""));
    env_.set_write_budget(budget);
    auto result = p_->append(test::mutable_bytes(data));
    env_.set_write_budget(-1);
    if (!result.is_ok()) {
      ASSERT_TRUE(disk_fills) << result.status().to_string();
      ASSERT_EQ(result.status().code(), ErrorCode::kNoSpace) << result.status().to_string();
      ASSERT_EQ(p_->high_watermark(), next_) << "a failed append moved the high watermark";
      note("  -> no space");
      return;
    }
    ASSERT_EQ(result->base_offset, next_);
    ASSERT_EQ(result->last_offset, next_ + records - 1);
    ASSERT_EQ(result->batch_count, batch_count);
    ASSERT_EQ(result->record_count, records);
    if (log_append_time_) {
      ASSERT_EQ(result->log_append_time_ms, clock_.now_ms());
    }
    for (auto& batch : batches) {
      for (auto& r : batch) {
        r.offset = next_++;
        if (log_append_time_) r.timestamp = result->log_append_time_ms;
        model_.push_back(std::move(r));
      }
    }
    ASSERT_EQ(p_->high_watermark(), next_);
    if (every_append_) {
      ASSERT_EQ(p_->durable_offset(), next_) << "every-append policy returned before the data was durable";
      durable_ = next_;
    }
  }

  const TestRecord& at(int64_t offset) const { return model_[size_t(offset - log_start_)]; }

  void do_read(const std::string& prefix) {
    int64_t offset;
    int kind = int(rng_() % 10);
    if (kind < 7 && next_ > log_start_) {
      offset = int64_t(uniform(uint64_t(log_start_), uint64_t(next_ - 1)));
    } else if (kind < 8) {
      offset = next_;
    } else if (kind < 9) {
      offset = log_start_ - 1 - int64_t(uniform(0, 3));
    } else {
      offset = next_ + 1 + int64_t(uniform(0, 3));
    }
    uint64_t max_bytes = pick<uint64_t>({0, 1, uniform(1, 200), uniform(200, 5000), 1 << 20});
    note(prefix + "read " + std::to_string(offset) + " max_bytes " + std::to_string(max_bytes));
    auto r = p_->read(offset, max_bytes);
    if (offset < log_start_ || offset > next_) {
      ASSERT_EQ(r.status().code(), ErrorCode::kOutOfRange) << "read at " << offset;
      return;
    }
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_EQ(r->high_watermark, next_);
    ASSERT_EQ(r->log_start_offset, log_start_);
    if (offset == next_) {
      ASSERT_FALSE(r->slice) << "a read at the high watermark returned data";
      return;
    }
    ASSERT_TRUE(r->slice) << "no data at " << offset;
    bool partial = false;
    auto batches = test::decode_batches(test::slice_bytes(*r->slice), &partial);
    ASSERT_FALSE(batches.empty()) << "the slice does not hold a whole batch";
    ASSERT_LE(batches.front().header.base_offset, offset);
    ASSERT_GE(batches.front().header.last_offset(), offset) << "the first batch does not hold the offset";
    uint64_t first_size = batches.front().header.total_size();
    ASSERT_LE(r->slice->size_bytes, std::max(max_bytes, first_size));
    if (partial) {
      ASSERT_EQ(r->slice->size_bytes, max_bytes) << "a partial batch only where max_bytes cut";
    }
    int64_t expect_next = batches.front().header.base_offset;
    for (const auto& b : batches) {
      ASSERT_EQ(b.header.base_offset, expect_next) << "batches in a slice are not contiguous";
      ASSERT_EQ(int64_t(b.records.size()), b.header.last_offset() - b.header.base_offset + 1);
      for (const auto& rec : b.records) {
        ASSERT_GE(rec.offset, log_start_);
        ASSERT_LT(rec.offset, next_);
        ASSERT_EQ(rec, at(rec.offset));
      }
      expect_next = b.header.last_offset() + 1;
    }
    if (!partial && r->slice->size_bytes < max_bytes) {
      // Stopped early: only at the end of a segment.
      bool at_segment_end = expect_next == next_;
      for (const auto& s : p_->segments()) at_segment_end |= s->base_offset() == expect_next;
      ASSERT_TRUE(at_segment_end) << "the slice stopped at " << expect_next << " inside a segment";
    }
  }

  void do_read_all(const std::string& prefix) {
    uint64_t max_bytes = pick<uint64_t>({1, 300, 4096, 1 << 20});
    note(prefix + "read all, max_bytes " + std::to_string(max_bytes));
    expect_model_matches(max_bytes);
  }

  static bool same(const Record& got, const TestRecord& want) {
    if (got.offset != want.offset || got.timestamp != want.timestamp || got.key != want.key ||
        got.value != want.value || got.headers.size() != want.headers.size())
      return false;
    for (size_t i = 0; i < got.headers.size(); ++i)
      if (got.headers[i].key != want.headers[i].first || got.headers[i].value != want.headers[i].second) return false;
    return true;
  }

  // Reads the whole log with fetches of `max_bytes` and compares it with the
  // model in place (no copies: this runs after every reopen and power cut).
  void expect_model_matches(uint64_t max_bytes = 1 << 20) {
    ASSERT_EQ(p_->high_watermark(), next_);
    ASSERT_EQ(p_->log_start_offset(), log_start_);
    int64_t offset = log_start_;
    while (offset < next_) {
      auto r = p_->read(offset, max_bytes);
      ASSERT_TRUE(r.is_ok()) << "read at " << offset << ": " << r.status().to_string();
      ASSERT_TRUE(r->slice) << "no data at " << offset;
      std::string bytes = test::slice_bytes(*r->slice);
      int64_t fetched_to = offset;
      for (size_t pos = 0; bytes.size() - pos >= batch_layout::kHeaderSize;) {
        ByteSpan rest = as_bytes(std::string_view(bytes).substr(pos));
        BatchHeader h = decode_batch_header(rest);
        if (h.total_size() > rest.size()) break;  // the partial batch a fetch may end with
        auto records = decode_records(rest.subspan(0, h.total_size()));
        ASSERT_TRUE(records.is_ok()) << records.status().to_string();
        for (const Record& rec : *records) {
          if (rec.offset < fetched_to) continue;
          ASSERT_EQ(rec.offset, fetched_to) << "a gap in the log";
          ASSERT_LT(rec.offset, next_);
          ASSERT_TRUE(same(rec, at(rec.offset))) << test::owned(rec) << " != " << at(rec.offset);
          ++fetched_to;
        }
        pos += h.total_size();
      }
      ASSERT_GT(fetched_to, offset) << "a fetch at " << offset << " made no progress";
      offset = fetched_to;
    }
  }

  void do_offset_for_timestamp(const std::string& prefix) {
    int64_t target;
    if (!model_.empty() && chance(70)) {
      target = model_[rng_() % model_.size()].timestamp + int64_t(uniform(0, 2)) - 1;
    } else {
      target = clock_.now_ms() + int64_t(uniform(0, 200'000)) - 150'000;
    }
    note(prefix + "offset_for_timestamp " + std::to_string(target));
    std::optional<int64_t> want;
    for (const auto& r : model_) {
      if (r.timestamp >= target) {
        want = r.offset;
        break;
      }
    }
    auto got = p_->offset_for_timestamp(target);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    ASSERT_EQ(*got, want) << "target " << target;
  }

  void do_roll(const std::string& prefix) {
    note(prefix + "roll");
    size_t before = p_->segment_count();
    bool active_empty = p_->segments().back()->size_bytes() == 0;
    ASSERT_TRUE(p_->roll().is_ok());
    ASSERT_EQ(p_->segment_count(), active_empty ? before : before + 1);
    // Rolling makes everything before the new active segment durable.
    ASSERT_GE(p_->durable_offset(), next_);
    durable_ = next_;
  }

  void do_advance_clock(const std::string& prefix) {
    int64_t ms = chance(30) ? int64_t(uniform(0, 100)) : int64_t(uniform(0, 30'000));
    note(prefix + "advance clock " + std::to_string(ms) + " ms");
    clock_.advance_ms(ms);
  }

  int64_t model_max_timestamp(int64_t from, int64_t to) const {
    int64_t max_ts = -1;
    for (int64_t o = std::max(from, log_start_); o < std::min(to, next_); ++o) max_ts = std::max(max_ts, at(o).timestamp);
    return max_ts;
  }

  void do_retention(const std::string& prefix) {
    auto before = p_->segments();
    uint64_t total = 0;
    for (const auto& s : before) total += s->size_bytes();
    int64_t now = clock_.now_ms();
    const TopicConfig& c = options_.config;
    // The rules, judged from the model's timestamps rather than the segment's own bookkeeping.
    auto expired = [&](const Segment& s) {
      int64_t max_ts = model_max_timestamp(s.base_offset(), s.next_offset());
      return c.retention_ms >= 0 && max_ts >= 0 && now - max_ts > c.retention_ms;
    };
    auto deletable = [&](const Segment& s, uint64_t total_bytes) {
      bool over_size = c.retention_bytes >= 0 && total_bytes - s.size_bytes() >= uint64_t(c.retention_bytes);
      return expired(s) || over_size || s.size_bytes() == 0;
    };
    bool active_expired = expired(*before.back());
    auto result = p_->enforce_retention();
    ASSERT_TRUE(result.is_ok()) << result.status().to_string();
    int64_t new_start = p_->log_start_offset();
    note(prefix + "retention: deleted " + std::to_string(*result) + ", log start " + std::to_string(log_start_) +
         " -> " + std::to_string(new_start));
    ASSERT_GE(new_start, log_start_);
    ASSERT_LE(new_start, next_);
    ASSERT_EQ(p_->high_watermark(), next_);
    // Whole segments go, oldest first, each for a reason.
    auto after = p_->segments();
    size_t deleted = 0;
    while (deleted < before.size() && std::find(after.begin(), after.end(), before[deleted]) == after.end()) ++deleted;
    for (size_t i = deleted; i < before.size(); ++i)
      ASSERT_NE(std::find(after.begin(), after.end(), before[i]), after.end()) << "a newer segment was deleted";
    ASSERT_EQ(size_t(*result), deleted);
    ASSERT_EQ(new_start, after.front()->base_offset());
    for (size_t i = 0; i < deleted; ++i) {
      // The active segment is deleted only after being rolled for having expired.
      if (i + 1 == before.size()) {
        ASSERT_TRUE(active_expired);
      }
      ASSERT_TRUE(deletable(*before[i], total)) << "segment " << before[i]->base_offset() << " deleted without reason";
      total -= before[i]->size_bytes();
    }
    // The oldest segment left must not be deletable, unless it is the active one.
    if (after.size() > 1) {
      ASSERT_FALSE(deletable(*after.front(), total)) << "segment " << after.front()->base_offset() << " was kept";
    }
    if (active_expired) {
      ASSERT_GE(p_->durable_offset(), next_);
    }
    while (log_start_ < new_start) {
      model_.pop_front();
      ++log_start_;
    }
    durable_ = std::max(durable_, log_start_);
  }

  void do_sync(const std::string& prefix) {
    note(prefix + "sync");
    ASSERT_TRUE(p_->sync_all().is_ok());
    ASSERT_GE(p_->durable_offset(), next_);
    durable_ = next_;
  }

  void do_reopen(const std::string& prefix) {
    bool recover = chance(50);
    note(prefix + "close and reopen" + (recover ? " (validating the active segment)" : ""));
    open(recover);
    if (failed()) return;
    expect_model_matches();
    durable_ = next_;  // open syncs what it found
  }

  void after_power_cut() {
    int64_t hw = p_->high_watermark();
    note("  -> high watermark " + std::to_string(hw) + " (was " + std::to_string(next_) + ", durable " +
         std::to_string(durable_) + ")");
    ASSERT_GE(hw, durable_) << "records made durable were lost";
    ASSERT_LE(hw, next_) << "records appeared from nowhere";
    ASSERT_EQ(p_->log_start_offset(), log_start_);
    // What is lost is a suffix: the model keeps its prefix, and new appends
    // take the offsets after what survived.
    while (next_ > hw) {
      model_.pop_back();
      --next_;
    }
    expect_model_matches();
    durable_ = next_;
  }

  void do_crash(const std::string& prefix) {
    uint64_t crash_seed = chance(50) ? 0 : rng_() | 1;
    note(prefix + "power cut" + (crash_seed ? " with torn tails (seed " + std::to_string(crash_seed) + ")" : ""));
    p_.reset();
    env_.crash(crash_seed);
    open(true);
    if (failed()) return;
    after_power_cut();
  }

  // A clean shutdown syncs the log but not the indexes; a power cut then may
  // tear the indexes, and the next (clean) open trusts whatever is left of them.
  void do_clean_close_then_power_cut(const std::string& prefix) {
    uint64_t crash_seed = rng_() | 1;
    note(prefix + "clean close, then power cut (seed " + std::to_string(crash_seed) + "), clean open");
    ASSERT_TRUE(p_->sync_all().is_ok());
    durable_ = next_;
    p_.reset();
    env_.crash(crash_seed);
    open(false);
    if (failed()) return;
    ASSERT_EQ(p_->high_watermark(), next_);
    after_power_cut();
  }

  // --- Invariants after every operation ---------------------------------

  void check_invariants() {
    ASSERT_EQ(p_->high_watermark(), next_);
    ASSERT_EQ(p_->log_start_offset(), log_start_);
    ASSERT_GE(p_->durable_offset(), durable_);
    ASSERT_EQ(int64_t(model_.size()), next_ - log_start_);
    auto segments = p_->segments();
    ASSERT_FALSE(segments.empty());
    ASSERT_EQ(segments.front()->base_offset(), log_start_);
    ASSERT_EQ(segments.back()->next_offset(), next_);
    uint64_t total = 0;
    for (size_t i = 0; i < segments.size(); ++i) {
      total += segments[i]->size_bytes();
      if (i + 1 < segments.size()) {
        ASSERT_EQ(segments[i]->next_offset(), segments[i + 1]->base_offset()) << "segments are not contiguous";
      }
    }
    ASSERT_EQ(p_->size_bytes(), total);
  }

  const uint64_t seed_;
  const int ops_;
  std::mt19937_64 rng_;
  MemEnv env_;
  ManualClock clock_{1'700'000'000'000};
  PartitionOptions options_;
  bool log_append_time_ = false;
  bool every_append_ = false;
  std::string config_text_;
  std::unique_ptr<Partition> p_;

  std::deque<TestRecord> model_;  // offsets [log_start_, next_)
  int64_t log_start_ = 0;
  int64_t next_ = 0;
  int64_t durable_ = 0;  // every offset below this was acknowledged as durable
  std::deque<std::string> history_;
};

TEST(PartitionModel, RandomOperationsMatchAVectorModel) {
  LogLevel saved = log_level();
  set_log_level(LogLevel::kError);  // recovery warnings are expected here
  int64_t one_seed = env_int("EVERT_SEED", 0);
  int seeds = int(env_int("EVERT_MODEL_SEEDS", kDefaultSeeds));
  int ops = int(env_int("EVERT_MODEL_OPS", kDefaultOps));
  std::vector<uint64_t> list;
  if (one_seed != 0) {
    list.push_back(uint64_t(one_seed));
  } else {
    for (int i = 1; i <= seeds; ++i) list.push_back(uint64_t(i));
  }
  for (uint64_t seed : list) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed << " (replay: EVERT_SEED=" << seed << ")");
    ModelRun(seed, ops).run();
    if (::testing::Test::HasFailure()) break;
  }
  set_log_level(saved);
}

}  // namespace
}  // namespace evert::log
