// A partition: an ordered list of segments, the newest of which is active.
//
// Threading: append() calls are serialized by an internal mutex; read(),
// offset_for_timestamp() and the offset getters may run concurrently with
// them from any thread and take only brief shared locks. sync() implements
// group commit: concurrent callers share one fdatasync.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "io/env.h"
#include "log/producer_state.h"
#include "log/segment.h"
#include "log/topic_config.h"

namespace evert::log {

// Runs a blocking task (an fdatasync) on some other thread.
using BlockingExecutor = std::function<void(std::function<void()>)>;

struct PartitionOptions {
  TopicConfig config;
  FlushPolicy flush;
  Clock* clock = &Clock::system();
  // Called after every successful append with the new high watermark, on
  // the appending thread (after the partition's locks are released).
  std::function<void(int64_t high_watermark)> on_append;
  // Where sync_async runs its fdatasyncs; required for sync_async.
  BlockingExecutor sync_executor;
  // Validate every batch of the active segment (after an unclean shutdown).
  bool recover_active_segment = true;
  // Validate every batch of every segment (slow; for checks and tests).
  bool verify_all_segments = false;
};

struct AppendResult {
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  int32_t batch_count = 0;
  int64_t record_count = 0;
  // The timestamp stamped on the batches under LogAppendTime, else -1.
  int64_t log_append_time_ms = -1;
  // An idempotent producer's retry of a batch already stored: nothing was
  // appended and the offsets are those of the stored batch.
  bool duplicate = false;
};

struct ReadResult {
  std::optional<FileSlice> slice;  // empty when the reader is at the end
  int64_t high_watermark = 0;
  int64_t log_start_offset = 0;
};

struct PartitionRecovery {
  std::vector<RecoveryReport> segments;
  int removed_temp_files = 0;
  bool damaged() const;
};

class Partition : public std::enable_shared_from_this<Partition> {
 public:
  static Result<std::unique_ptr<Partition>> open(io::Env& env, const std::string& dir, const PartitionOptions& options,
                                                 PartitionRecovery* recovery);
  ~Partition();

  // Validates and appends one or more batches laid end to end in `batches`,
  // assigning base offsets in place. Errors: kCorruption (bad header or
  // CRC), kTooLarge (a batch above max.message.bytes), kIoError/kNoSpace.
  // Under the every-append flush policy, returns only once durable.
  Result<AppendResult> append(MutableByteSpan batches);

  // Returns once every offset below `end_offset` is on disk. Concurrent
  // callers share fdatasyncs (group commit).
  Status sync(int64_t end_offset);
  Status sync_all() { return sync(high_watermark()); }
  // Like sync, without blocking the caller: `done` runs (on a sync thread)
  // once every offset below `end_offset` is durable, or with the error. All
  // waiters pending while an fdatasync runs share the next one. Requires the
  // partition to be owned by a shared_ptr and options.sync_executor.
  void sync_async(int64_t end_offset, std::function<void(Status)> done);

  // Kafka fetch semantics: kOutOfRange below the log start or above the high
  // watermark; an empty slice at the high watermark.
  Result<ReadResult> read(int64_t offset, uint64_t max_bytes) const;

  // First offset whose record timestamp >= target; nullopt if none.
  Result<std::optional<int64_t>> offset_for_timestamp(int64_t target_timestamp) const;

  // Deletes whole segments past retention.ms / retention.bytes, oldest
  // first, never the active one (rolling it first when it is expired by
  // time). Returns the number of segments deleted.
  Result<int> enforce_retention();

  // Deletes every non-active segment that lies wholly below `offset` and
  // moves the log start to the first remaining segment. Returns the number
  // of segments deleted.
  Result<int> delete_segments_before(int64_t offset);

  // Starts a new active segment if the current one holds data.
  Status roll();
  void set_config(const TopicConfig& config);
  TopicConfig config() const;
  // For a clean shutdown: syncs the active segment's index and writes the
  // idempotent-producer state as of the high watermark, so the next open
  // needs no scan.
  Status write_producer_snapshot();
  size_t producer_count() const;

  // Deletes every file of the partition (topic deletion). The object must
  // not be used afterwards.
  Status remove_all();

  int64_t log_start_offset() const { return log_start_offset_.load(std::memory_order_acquire); }
  int64_t high_watermark() const { return next_offset_.load(std::memory_order_acquire); }
  int64_t durable_offset() const { return flushed_offset_.load(std::memory_order_acquire); }
  uint64_t size_bytes() const;
  size_t segment_count() const;
  std::vector<std::shared_ptr<Segment>> segments() const;
  const std::string& dir() const { return dir_; }

 private:
  Partition(io::Env& env, std::string dir, const PartitionOptions& options);
  Status load_segments(PartitionRecovery* recovery);
  Status load_producer_state();
  Status write_producer_snapshot_locked(int64_t offset);
  // Applies the idempotence rules to an append; nullopt = go ahead.
  Result<std::optional<AppendResult>> check_idempotence_locked(MutableByteSpan batches,
                                                               const std::vector<BatchInfo>& infos);
  Status roll_locked();
  // Size, or segment.ms between the active segment's first batch and the
  // incoming batches' largest timestamp.
  bool should_roll_locked(uint64_t incoming_bytes, int64_t incoming_max_timestamp) const;
  Result<std::vector<BatchInfo>> validate_locked(MutableByteSpan batches, int64_t* append_time);
  std::shared_ptr<Segment> segment_for(int64_t offset) const;
  std::shared_ptr<Segment> segment_after(int64_t base_offset) const;

  io::Env& env_;
  const std::string dir_;
  FlushPolicy flush_;
  Clock* clock_;
  PartitionOptions open_options_;

  mutable std::mutex append_mu_;  // serializes append/roll/retention; guards config_, failed_
  TopicConfig config_;
  Status failed_;
  ProducerStateTable producers_;

  mutable std::shared_mutex segments_mu_;  // guards segments_
  std::vector<std::shared_ptr<Segment>> segments_;

  std::atomic<int64_t> next_offset_{0};
  std::atomic<int64_t> log_start_offset_{0};

  void run_async_syncs();

  std::mutex sync_mu_;  // guards sync_in_progress_, async_waiters_, async_running_
  std::condition_variable sync_cv_;
  bool sync_in_progress_ = false;
  struct AsyncWaiter {
    int64_t end_offset;
    std::function<void(Status)> done;
  };
  std::vector<AsyncWaiter> async_waiters_;
  bool async_running_ = false;
  std::atomic<int64_t> flushed_offset_{0};
};

}  // namespace evert::log
