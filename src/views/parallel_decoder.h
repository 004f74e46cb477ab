// Decodes a long stretch of an append-only source on worker threads ahead
// of a view's own thread. Reading the log, parsing record batches, decoding
// JSON and evaluating the group key and aggregate arguments are most of a
// backfill's work and need nothing of the view's state, so they run here;
// the view's thread keeps the group lookups, the aggregates and the commits
// (View::apply_decoded). The blocks come out in the order the view applies
// them: each partition's records in offset order.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "views/partial_aggregates.h"
#include "views/view.h"

namespace evert::views {

// Consecutive records of one partition, decoded and prepared.
struct DecodedBlock {
  struct Error {
    size_t before = 0;          // comes before deltas[before]
    int64_t events_before = 0;  // records of the block before it
    int64_t offset = 0;
    std::string reason;
  };
  int32_t partition = 0;
  int64_t first_offset = 0;  // the partition's next offset before the block
  int64_t next_offset = 0;   // and after it
  int64_t events = 0;        // records read, with those filtered out or malformed
  int64_t last_timestamp = 0;
  std::vector<GroupDelta> deltas;  // [0, size) are this block's; the rest keep their capacity
  size_t size = 0;
  // Options::sum: the block's events summed per group key, but for the
  // deltas, which it could not take (View::apply_block folds them after).
  std::unique_ptr<PartialAggregates> sums;
  std::vector<Error> errors;
  size_t unit = 0;           // which stretch of the source (ParallelDecoder's order)
  bool unit_done = false;    // the stretch's last block
};

class ParallelDecoder {
 public:
  struct Options {
    log::LogManager* log = nullptr;
    std::string topic;
    sql::Schema schema;
    const sql::SelectPlan* plan = nullptr;  // outlives the decoder
    DecodeAhead tuning;                     // threads, stretch and block sizes
    // The workers sum the events per group key (the plan suits
    // PartialAggregates), a block per stretch of sum_unit_records or per
    // table of sum_max_keys keys, whichever ends first.
    bool sum = false;
    int64_t sum_unit_records = PartialAggregation{}.unit_records;
    size_t sum_max_keys = PartialAggregation{}.max_keys;
  };
  // Decodes partition p's records [from[p], to[p]) (an append source: every
  // record is one event).
  ParallelDecoder(Options options, const std::vector<int64_t>& from, const std::vector<int64_t>& to);
  ~ParallelDecoder();  // stops and joins the workers
  ParallelDecoder(const ParallelDecoder&) = delete;
  ParallelDecoder& operator=(const ParallelDecoder&) = delete;

  // Waits until the next block is ready, everything is handed out, or the
  // deadline passes.
  void wait(std::chrono::steady_clock::time_point deadline);
  // The next block in order, or nullptr when it is not decoded yet (or
  // done()). Each block taken must be handed back with release() before the
  // next one is taken.
  DecodedBlock* try_next();
  void release(DecodedBlock* block);
  // Every block has been handed out.
  bool done() const { return next_unit_ >= units_.size(); }

  // A stretch of one partition's records, [from, to).
  struct Unit {
    int32_t partition = 0;
    int64_t from = 0;
    int64_t to = 0;
  };
  // The stretches of a summing decoder, in the order they are taken: the
  // partitions in turn, each stretch a share of what is left (at most
  // `longest` records), so that they shorten toward the end.
  static std::vector<Unit> summing_stretches(const std::vector<int64_t>& from, const std::vector<int64_t>& to,
                                             int threads, int64_t longest);

  static constexpr size_t kBlocksPerWorker = 32;  // decoded ahead, per worker
  static constexpr size_t kSumBlocksPerWorker = 2;  // summing: one filled while the view folds the other
  static constexpr int kThreadsMax = 16;

 private:
  struct Worker;
  void work(size_t worker);
  Worker* owner(size_t unit);  // the thread that took the stretch, or nullptr
  void decode_unit(Worker& w, size_t unit_index);
  DecodedBlock* acquire(Worker& w, size_t unit_index, int32_t partition, int64_t first_offset);
  void publish(Worker& w, DecodedBlock* block);

  Options options_;
  std::vector<Unit> units_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stop_{false};
  // The stretches taken so far, and by which worker (-1: not yet).
  std::mutex claim_mu_;
  std::condition_variable claim_cv_;
  size_t next_claim_ = 0;
  std::vector<int> owner_;
  size_t next_unit_ = 0;  // the consumer's
};

}  // namespace evert::views
