#include "views/parallel_decoder.h"

#include <algorithm>
#include <array>

#include "base/assert.h"
#include "base/logging.h"
#include "log/log_manager.h"
#include "log/partition.h"
#include "views/event_decoder.h"

namespace evert::views {

namespace {
using Ring = std::array<GroupDelta, 32>;
// Per read of the log: about what the rest of the stretch needs, from the
// bytes per record seen so far, within these bounds.
constexpr uint64_t kReadBytesMax = 1 << 20;
constexpr uint64_t kReadBytesMin = 64 << 10;
}  // namespace

struct ParallelDecoder::Worker {
  explicit Worker(const sql::Schema& schema) : decoder(schema) {}
  EventDecoder decoder;
  SourceReader reader;
  std::string reason;
  // Summing: events prepared and their slots requested, summed a ring at a
  // time so that the slots have arrived by then (sum_ring()).
  Ring ring;
  size_t ring_size = 0;
  double bytes_per_record = 0;  // of the reads so far; 0: none yet
  size_t sum_slots = 0;         // the largest table of sums this worker has filled
  std::vector<std::unique_ptr<DecodedBlock>> blocks;  // all of this worker's, wherever they are

  // Guards the two lists; `cv` wakes the worker (a block is free again) and
  // the consumer (a block is ready).
  std::mutex mu;
  std::condition_variable cv;
  std::deque<DecodedBlock*> ready;  // in the order of the worker's stretches
  std::vector<DecodedBlock*> free;
  std::thread thread;
};

namespace {

// Stretches taken from the partitions in turn, so that every partition
// moves on and the workers share each partition's records; each of at most
// size(left) records, `left` being those not in a stretch yet.
template <typename Size>
std::vector<ParallelDecoder::Unit> in_turn(const std::vector<int64_t>& from, const std::vector<int64_t>& to,
                                           Size size) {
  const size_t partitions = std::min(from.size(), to.size());
  int64_t left = 0;
  for (size_t p = 0; p < partitions; ++p) left += std::max<int64_t>(0, to[p] - from[p]);
  std::vector<ParallelDecoder::Unit> units;
  std::vector<int64_t> next(from.begin(), from.begin() + long(partitions));
  for (size_t p = 0; left > 0; p = (p + 1) % partitions) {
    if (next[p] >= to[p]) continue;  // each partition while it has records
    const int64_t take = std::min(size(left), to[p] - next[p]);
    units.push_back(ParallelDecoder::Unit{int32_t(p), next[p], next[p] + take});
    next[p] += take;
    left -= take;
  }
  return units;
}

}  // namespace

std::vector<ParallelDecoder::Unit> ParallelDecoder::summing_stretches(const std::vector<int64_t>& from,
                                                                      const std::vector<int64_t>& to, int threads,
                                                                      int64_t longest) {
  // Each stretch ends in a fold of a table of keys on the view's thread, so
  // they are long at first; then shorter and shorter, each a share of what
  // is left, taken by whichever thread is free (work()), so that the
  // threads finish nearly together even when one lost time to the view's
  // folds (the first one makes every group). With equal halves at the end,
  // one thread decoded the last alone for a quarter second. The shortest
  // is a sixteenth of each thread's share of the whole, and at most an
  // eighth of the longest.
  const int64_t t = std::clamp(threads, 1, kThreadsMax);
  longest = std::max<int64_t>(1, longest);
  int64_t total = 0;
  for (size_t p = 0; p < std::min(from.size(), to.size()); ++p) total += std::max<int64_t>(0, to[p] - from[p]);
  const int64_t shortest = std::max<int64_t>(1, std::min(total / (t * 16), longest / 8));
  return in_turn(from, to, [&](int64_t left) { return std::clamp(left / (2 * t), shortest, longest); });
}

ParallelDecoder::ParallelDecoder(Options options, const std::vector<int64_t>& from, const std::vector<int64_t>& to)
    : options_(std::move(options)) {
  const int64_t threads = std::clamp(options_.tuning.threads, 1, kThreadsMax);
  if (options_.sum) {
    units_ = summing_stretches(from, to, int(threads), options_.sum_unit_records);
  } else {
    const int64_t unit = std::max<int64_t>(1, options_.tuning.unit_records);
    units_ = in_turn(from, to, [&](int64_t) { return unit; });
  }
  owner_.assign(units_.size(), -1);
  const size_t workers = std::min<size_t>(size_t(threads), std::max<size_t>(units_.size(), 1));
  for (size_t i = 0; i < workers; ++i) {
    auto w = std::make_unique<Worker>(options_.schema);
    w->decoder.keep_only(columns_read(*options_.plan));
    for (size_t b = 0; b < (options_.sum ? kSumBlocksPerWorker : kBlocksPerWorker); ++b) {
      w->blocks.push_back(std::make_unique<DecodedBlock>());
      if (options_.sum) w->blocks.back()->sums = std::make_unique<PartialAggregates>(*options_.plan, options_.sum_max_keys);
      w->free.push_back(w->blocks.back().get());
    }
    workers_.push_back(std::move(w));
  }
  for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->thread = std::thread([this, i] { work(i); });
}

// Stretches are taken in order by whichever thread is free; each thread
// decodes its own in the order it took them.
void ParallelDecoder::work(size_t worker) {
  while (!stop_) {
    size_t u;
    {
      std::lock_guard lock(claim_mu_);
      if (next_claim_ >= units_.size()) return;
      u = next_claim_++;
      owner_[u] = int(worker);
    }
    claim_cv_.notify_all();
    decode_unit(*workers_[worker], u);
  }
}

ParallelDecoder::Worker* ParallelDecoder::owner(size_t unit) {
  std::lock_guard lock(claim_mu_);
  return owner_[unit] < 0 ? nullptr : workers_[size_t(owner_[unit])].get();
}

ParallelDecoder::~ParallelDecoder() {
  stop_ = true;
  {
    std::lock_guard lock(claim_mu_);
    claim_cv_.notify_all();
  }
  for (auto& w : workers_) {
    std::lock_guard lock(w->mu);
    w->cv.notify_all();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

DecodedBlock* ParallelDecoder::acquire(Worker& w, size_t unit_index, int32_t partition, int64_t first_offset) {
  std::unique_lock lock(w.mu);
  w.cv.wait(lock, [&] { return !w.free.empty() || stop_.load(); });
  if (stop_) return nullptr;
  DecodedBlock* b = w.free.back();
  w.free.pop_back();
  b->unit = unit_index;
  b->unit_done = false;
  b->partition = partition;
  b->first_offset = first_offset;
  b->next_offset = first_offset;
  b->events = 0;
  b->last_timestamp = 0;
  b->size = 0;
  b->errors.clear();
  // The view folds a block's table and leaves emptying it to this thread.
  if (b->sums && !b->sums->empty()) b->sums->clear();
  // The stretches are alike: a table starts at the size the last one needed.
  if (b->sums) b->sums->reserve(w.sum_slots);
  return b;
}

void ParallelDecoder::publish(Worker& w, DecodedBlock* block) {
  if (block->sums) w.sum_slots = std::max(w.sum_slots, block->sums->slots());
  std::lock_guard lock(w.mu);
  w.ready.push_back(block);
  w.cv.notify_all();
}

namespace {

// One record of an append source, decoded and prepared into `d` (false:
// it counted already in the block, as an error or filtered out).
bool prepare_event(const sql::SelectPlan& plan, EventDecoder& decoder, std::string& reason, DecodedBlock& b,
                   const log::Record& r, size_t capacity, GroupDelta& d) {
  int64_t before = b.events++;
  b.last_timestamp = r.timestamp;
  auto fail = [&](std::string why) {
    b.errors.push_back({b.size, before, r.offset, std::move(why)});
    return false;
  };
  if (!r.value) return fail("null value (a tombstone) in an append-only table");
  if (!decoder.decode_row(*r.value, capacity, &d.row, &reason)) return fail(reason);
  switch (prepare_group_delta(plan, d.row, &d, &reason)) {
    case Prepared::kSkip: return false;
    case Prepared::kError: return fail(reason);
    case Prepared::kReady: break;
  }
  d.weight = +1;
  d.entry = nullptr;
  return true;
}

// The ring's events into the block's sums, or as deltas when the sums
// cannot take them (a sum past int64: the view adds those to the groups
// itself, exactly; the block's keys never reach the table's limit, see
// decode_unit).
void sum_ring(DecodedBlock& b, Ring& ring, size_t& ring_size) {
  for (size_t i = 0; i < ring_size; ++i) {
    GroupDelta& d = ring[i];
    if (b.sums->add(d.key, d.hash, d.args) == PartialAggregates::Added::kOk) continue;
    if (b.size == b.deltas.size()) b.deltas.emplace_back();
    std::swap(b.deltas[b.size], d);
    ++b.size;
  }
  ring_size = 0;
}

}  // namespace

// Reads the stretch's records as View::process_some does (SourceReader), in
// blocks of tuning.block_events. A stretch always ends with a block marked
// unit_done (empty when nothing could be read: the view's thread then reads
// on from there).
void ParallelDecoder::decode_unit(Worker& w, size_t unit_index) {
  const Unit& u = units_[unit_index];
  int64_t next = u.from;
  w.ring_size = 0;
  DecodedBlock* b = acquire(w, unit_index, u.partition, next);
  if (!b) return;
  auto part = options_.log->partition(options_.topic, u.partition);
  const size_t block_events = std::max<size_t>(1, options_.tuning.block_events);
  while (part && next < u.to && !stop_) {
    uint64_t want = kReadBytesMax;
    if (w.bytes_per_record > 0) {
      double rest = double(u.to - next) * w.bytes_per_record * 1.1;
      want = std::clamp<uint64_t>(uint64_t(rest) + kReadBytesMin / 4, kReadBytesMin, kReadBytesMax);
    }
    auto got = w.reader.read(*part, &next, want);
    if (!got) {
      log_warn("decoding {}/{} ahead of a view: {}", options_.topic, u.partition, got.status().to_string());
      break;
    }
    const int64_t started_at = next;
    bool going = w.reader.for_each(
        *got, &next, u.to,
        [&](const log::Record& r, size_t capacity) {
          // Summing, a block holds its stretch's events unless its deltas
          // (events its sums could not take) or its errors grow to a
          // block's worth, or its table's keys could pass the limit with
          // the ring's.
          bool full = options_.sum ? b->size >= block_events || b->errors.size() >= block_events ||
                                         b->sums->keys() + w.ring_size + 1 > options_.sum_max_keys
                                   : size_t(b->events) >= block_events;
          if (full) {
            if (options_.sum) sum_ring(*b, w.ring, w.ring_size);
            b->next_offset = next;
            publish(w, b);
            b = acquire(w, unit_index, u.partition, next);
            if (!b) return false;  // stopping
          }
          if (!options_.sum) {
            // Straight into the block's deltas.
            if (b->size == b->deltas.size()) b->deltas.emplace_back();
            if (prepare_event(*options_.plan, w.decoder, w.reason, *b, r, capacity, b->deltas[b->size])) ++b->size;
            return true;
          }
          GroupDelta& d = w.ring[w.ring_size];
          if (!prepare_event(*options_.plan, w.decoder, w.reason, *b, r, capacity, d)) return true;
          b->sums->prefetch(d.hash);
          if (++w.ring_size == w.ring.size()) sum_ring(*b, w.ring, w.ring_size);
          return true;
        },
        [&](const log::BatchHeader& h, const Status& s) {
          b->errors.push_back({b->size, b->events, h.base_offset, "unreadable batch: " + s.message()});
          return true;
        },
        [] {});
    if (!going) return;
    if (next == started_at) break;  // nothing more can be read here
    w.bytes_per_record = double(w.reader.bytes_used()) / double(next - started_at);
  }
  if (options_.sum) sum_ring(*b, w.ring, w.ring_size);
  b->next_offset = next;
  b->unit_done = true;
  publish(w, b);
}

void ParallelDecoder::wait(std::chrono::steady_clock::time_point deadline) {
  if (done()) return;
  Worker* owned = owner(next_unit_);
  if (!owned) {
    std::unique_lock lock(claim_mu_);
    if (!claim_cv_.wait_until(lock, deadline, [&] { return owner_[next_unit_] >= 0; })) return;
    owned = workers_[size_t(owner_[next_unit_])].get();
  }
  Worker& w = *owned;
  std::unique_lock lock(w.mu);
  w.cv.wait_until(lock, deadline, [&] { return !w.ready.empty(); });
}

DecodedBlock* ParallelDecoder::try_next() {
  if (done()) return nullptr;
  Worker* owned = owner(next_unit_);
  if (!owned) return nullptr;
  Worker& w = *owned;
  std::lock_guard lock(w.mu);
  if (w.ready.empty()) return nullptr;
  DecodedBlock* b = w.ready.front();
  w.ready.pop_front();
  EVERT_CHECK_MSG(b->unit == next_unit_, "a worker's blocks come in the order of its stretches");
  if (b->unit_done) ++next_unit_;
  return b;
}

void ParallelDecoder::release(DecodedBlock* block) {
  Worker& w = *owner(block->unit);
  std::lock_guard lock(w.mu);
  w.free.push_back(block);
  w.cv.notify_all();
}

}  // namespace evert::views
