#include "log/partition.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/assert.h"
#include "base/logging.h"
#include "log/file_names.h"

namespace evert::log {
namespace L = batch_layout;

bool PartitionRecovery::damaged() const {
  for (const auto& r : segments)
    if (r.damage || r.truncated_bytes > 0) return true;
  return false;
}

Partition::Partition(io::Env& env, std::string dir, const PartitionOptions& options)
    : env_(env),
      dir_(std::move(dir)),
      flush_(options.flush),
      clock_(options.clock),
      open_options_(options),
      config_(options.config) {}

Partition::~Partition() = default;

Result<std::unique_ptr<Partition>> Partition::open(io::Env& env, const std::string& dir,
                                                   const PartitionOptions& options, PartitionRecovery* recovery) {
  EVERT_RETURN_IF_ERROR(io::create_dirs(env, dir));
  std::unique_ptr<Partition> p(new Partition(env, dir, options));
  EVERT_RETURN_IF_ERROR(p->load_segments(recovery));
  return p;
}

Status Partition::load_segments(PartitionRecovery* recovery) {
  EVERT_ASSIGN_OR_RETURN(auto names, env_.list_dir(dir_));
  std::vector<int64_t> bases;
  std::vector<std::string> index_files;
  for (const auto& name : names) {
    if (is_temp_file_name(name)) {
      EVERT_RETURN_IF_ERROR(env_.remove_file(io::join_path(dir_, name)));
      ++recovery->removed_temp_files;
      continue;
    }
    auto parsed = parse_segment_file_name(name);
    if (!parsed) continue;
    if (parsed->kind == SegmentFileKind::kLog) {
      bases.push_back(parsed->base_offset);
    } else {
      index_files.push_back(name);
    }
  }
  std::sort(bases.begin(), bases.end());
  // Indexes whose segment is gone (e.g. a crash during retention) go too.
  for (const auto& name : index_files) {
    int64_t base = parse_segment_file_name(name)->base_offset;
    if (!std::binary_search(bases.begin(), bases.end(), base))
      EVERT_RETURN_IF_ERROR(env_.remove_file(io::join_path(dir_, name)));
  }
  uint32_t interval = uint32_t(config_.index_interval_bytes);
  for (size_t i = 0; i < bases.size(); ++i) {
    bool last = i + 1 == bases.size();
    bool verify = open_options_.verify_all_segments || (last && open_options_.recover_active_segment);
    RecoveryReport report;
    auto seg = verify ? Segment::open_and_recover(env_, dir_, bases[i], interval, &report)
                      : Segment::open(env_, dir_, bases[i], interval, &report);
    if (!seg.is_ok()) return seg.status().with_context("opening segment in " + dir_);
    if (report.split_base_offset) {
      // Valid batches after a damaged range now form a segment of their own;
      // open it next (validated, since it came out of a damaged file).
      int64_t split = *report.split_base_offset;
      if (!std::binary_search(bases.begin(), bases.end(), split)) {
        bases.insert(std::upper_bound(bases.begin(), bases.end(), split), split);
      }
      open_options_.verify_all_segments = true;  // everything after damage is suspect
    }
    if (!segments_.empty() && seg.value()->base_offset() < segments_.back()->next_offset()) {
      log_error("{}: segment {} overlaps the previous one (ends at {})", dir_, seg.value()->base_offset(),
                segments_.back()->next_offset());
    }
    recovery->segments.push_back(std::move(report));
    segments_.push_back(std::move(seg).value());
  }
  open_options_.verify_all_segments = false;
  if (segments_.empty()) {
    EVERT_ASSIGN_OR_RETURN(auto seg, Segment::create(env_, dir_, 0, interval));
    segments_.push_back(std::move(seg));
  }
  next_offset_ = segments_.back()->next_offset();
  log_start_offset_ = segments_.front()->base_offset();
  EVERT_RETURN_IF_ERROR(load_producer_state());
  // Whatever survived the restart is made durable before anyone relies on it.
  EVERT_RETURN_IF_ERROR(segments_.back()->sync());
  flushed_offset_ = next_offset_.load();
  return Status::ok();
}

Result<std::vector<BatchInfo>> Partition::validate_locked(MutableByteSpan data, int64_t* append_time) {
  std::vector<BatchInfo> infos;
  size_t pos = 0;
  int64_t next = next_offset_.load(std::memory_order_relaxed);
  if (data.empty()) return error(ErrorCode::kCorruption, "no record batch");
  while (pos < data.size()) {
    size_t left = data.size() - pos;
    if (left < L::kHeaderSize)
      return error(ErrorCode::kCorruption, fmt::format("{} trailing bytes are not a record batch", left));
    BatchHeader h = decode_batch_header(data.subspan(pos, L::kHeaderSize));
    if (h.magic != L::kMagicV2)
      return error(ErrorCode::kUnsupported, fmt::format("record batch magic {} (only 2 is stored)", h.magic));
    h.base_offset = 0;  // assigned below; the producer's value means nothing
    EVERT_RETURN_IF_ERROR(check_batch_header(h));
    if (h.total_size() > left)
      return error(ErrorCode::kCorruption,
                   fmt::format("record batch declares {} bytes but {} remain", h.total_size(), left));
    if (int64_t(h.total_size()) > config_.max_message_bytes)
      return error(ErrorCode::kTooLarge, fmt::format("record batch of {} bytes exceeds max.message.bytes {}",
                                                     h.total_size(), config_.max_message_bytes));
    if (h.records_count == 0) return error(ErrorCode::kCorruption, "record batch without records");
    MutableByteSpan batch = data.subspan(pos, h.total_size());
    EVERT_RETURN_IF_ERROR(validate_batch(batch));
    if (config_.timestamp_type == TimestampType::kLogAppendTime) {
      if (*append_time < 0) *append_time = clock_->now_ms();
      set_max_timestamp_and_crc(batch, *append_time, true);
      h.max_timestamp = *append_time;
    }
    set_base_offset(batch, next);
    infos.push_back(BatchInfo{uint32_t(pos), h.total_size(), next, next + h.last_offset_delta, h.max_timestamp});
    next += int64_t(h.last_offset_delta) + 1;
    pos += h.total_size();
  }
  return infos;
}

bool Partition::should_roll_locked(uint64_t incoming_bytes, int64_t incoming_max_timestamp) const {
  const Segment& active = *segments_.back();
  if (active.size_bytes() == 0) return false;
  if (active.size_bytes() + incoming_bytes > uint64_t(config_.segment_bytes)) return true;
  int64_t first = active.first_batch_timestamp();
  // Record time, not the wall clock, as Kafka does since KAFKA-4099: batches
  // with old timestamps (backfills, mirroring) must not roll on every append.
  return first >= 0 && incoming_max_timestamp - first > config_.segment_ms;
}

Result<AppendResult> Partition::append(MutableByteSpan batches) {
  AppendResult result;
  {
    std::lock_guard lock(append_mu_);
    if (!failed_.is_ok()) return failed_;
    if (batches.size() > size_t(INT32_MAX)) return error(ErrorCode::kTooLarge, "append larger than 2 GiB");
    EVERT_ASSIGN_OR_RETURN(auto infos, validate_locked(batches, &result.log_append_time_ms));
    EVERT_ASSIGN_OR_RETURN(auto duplicate, check_idempotence_locked(batches, infos));
    if (duplicate) return *duplicate;
    int64_t incoming_max_timestamp = -1;
    for (const BatchInfo& b : infos) incoming_max_timestamp = std::max(incoming_max_timestamp, b.max_timestamp);
    if (should_roll_locked(batches.size(), incoming_max_timestamp)) EVERT_RETURN_IF_ERROR(roll_locked());
    std::shared_ptr<Segment> active = segments_.back();
    Status s = active->append(batches, infos);
    if (!s.is_ok()) {
      if (active->broken()) failed_ = s;  // bytes of unknown state on disk: stop appending
      return s;
    }
    for (const BatchInfo& b : infos) {
      BatchHeader h = decode_batch_header(batches.subspan(b.position_in_buffer, L::kHeaderSize));
      if (h.producer_id >= 0) producers_.record(h, b.base_offset);
    }
    result.base_offset = infos.front().base_offset;
    result.last_offset = infos.back().last_offset;
    result.batch_count = int32_t(infos.size());
    result.record_count = result.last_offset - result.base_offset + 1;
    next_offset_.store(result.last_offset + 1, std::memory_order_release);
  }
  if (flush_.kind == FlushPolicy::Kind::kEveryAppend) EVERT_RETURN_IF_ERROR(sync(result.last_offset + 1));
  if (open_options_.on_append) open_options_.on_append(result.last_offset + 1);
  return result;
}

void Partition::sync_async(int64_t end_offset, std::function<void(Status)> done) {
  EVERT_CHECK(open_options_.sync_executor != nullptr);
  bool already_durable = false;
  bool schedule = false;
  {
    std::lock_guard lock(sync_mu_);
    if (flushed_offset_.load(std::memory_order_acquire) >= end_offset) {
      already_durable = true;
    } else {
      async_waiters_.push_back(AsyncWaiter{end_offset, std::move(done)});
      schedule = !async_running_;
      async_running_ = true;
    }
  }
  if (already_durable) return done(Status::ok());
  if (schedule) open_options_.sync_executor([self = shared_from_this()] { self->run_async_syncs(); });
}

void Partition::run_async_syncs() {
  for (;;) {
    Status s = sync(high_watermark());
    std::vector<AsyncWaiter> finished;
    {
      std::lock_guard lock(sync_mu_);
      int64_t flushed = flushed_offset_.load(std::memory_order_acquire);
      auto keep = async_waiters_.begin();
      for (auto& w : async_waiters_) {
        if (!s.is_ok() || w.end_offset <= flushed) {
          finished.push_back(std::move(w));
        } else {
          *keep++ = std::move(w);
        }
      }
      async_waiters_.erase(keep, async_waiters_.end());
      if (async_waiters_.empty()) async_running_ = false;
    }
    for (auto& w : finished) w.done(s);
    std::lock_guard lock(sync_mu_);
    if (!async_running_) return;
  }
}

Result<std::optional<AppendResult>> Partition::check_idempotence_locked(MutableByteSpan batches,
                                                                      const std::vector<BatchInfo>& infos) {
  for (const BatchInfo& b : infos) {
    BatchHeader h = decode_batch_header(batches.subspan(b.position_in_buffer, L::kHeaderSize));
    if (h.producer_id < 0) continue;
    if (infos.size() > 1)
      return error(ErrorCode::kInvalidArgument, "an idempotent produce must carry one batch per partition");
    ProducerBatch stored;
    EVERT_ASSIGN_OR_RETURN(SequenceCheck verdict, producers_.check(h, &stored));
    if (verdict == SequenceCheck::kDuplicate) {
      AppendResult dup;
      dup.base_offset = stored.base_offset;
      dup.last_offset = stored.last_offset;
      dup.batch_count = 1;
      dup.record_count = stored.last_offset - stored.base_offset + 1;
      dup.duplicate = true;
      return std::optional<AppendResult>(dup);
    }
  }
  return std::optional<AppendResult>();
}

Status Partition::write_producer_snapshot_locked(int64_t offset) {
  std::string bytes = producers_.encode_snapshot(offset);
  EVERT_RETURN_IF_ERROR(io::write_file_atomically(env_, io::join_path(dir_, producer_snapshot_file_name(offset)),
                                                  as_bytes(bytes)));
  // Keep the newest two; older ones describe states no open will start from.
  EVERT_ASSIGN_OR_RETURN(auto names, env_.list_dir(dir_));
  std::vector<int64_t> offsets;
  for (const auto& n : names)
    if (auto o = parse_producer_snapshot_file_name(n)) offsets.push_back(*o);
  std::sort(offsets.begin(), offsets.end());
  for (size_t i = 0; i + 2 < offsets.size(); ++i)
    EVERT_RETURN_IF_ERROR(env_.remove_file(io::join_path(dir_, producer_snapshot_file_name(offsets[i]))));
  return Status::ok();
}

Status Partition::write_producer_snapshot() {
  std::lock_guard lock(append_mu_);
  if (!failed_.is_ok() || segments_.empty()) return Status::ok();
  // A clean close skips validation of the active segment at the next open,
  // so its index must be durable too.
  EVERT_RETURN_IF_ERROR(segments_.back()->sync_index());
  return write_producer_snapshot_locked(next_offset_.load());
}

size_t Partition::producer_count() const {
  std::lock_guard lock(append_mu_);
  return producers_.producer_count();
}

Status Partition::load_producer_state() {
  EVERT_ASSIGN_OR_RETURN(auto names, env_.list_dir(dir_));
  std::vector<int64_t> offsets;
  for (const auto& n : names)
    if (auto o = parse_producer_snapshot_file_name(n)) offsets.push_back(*o);
  std::sort(offsets.rbegin(), offsets.rend());
  int64_t from = log_start_offset_.load();
  int64_t hw = next_offset_.load();
  for (int64_t o : offsets) {
    if (o > hw) continue;  // describes data lost in a crash
    auto text = io::read_whole_file(env_, io::join_path(dir_, producer_snapshot_file_name(o)));
    if (!text.is_ok()) continue;
    ProducerStateTable table;
    auto loaded = table.decode_snapshot(*text);
    if (!loaded.is_ok()) {
      log_warn("{}: ignoring producer snapshot at {}: {}", dir_, o, loaded.status().message());
      continue;
    }
    producers_ = std::move(table);
    from = std::max(from, *loaded);
    break;
  }
  // Batches after the snapshot are replayed from their headers.
  for (const auto& seg : segments_) {
    if (seg->next_offset() <= from) continue;
    EVERT_ASSIGN_OR_RETURN(auto damage, scan_batches(*seg->log_file(), 0, seg->size_bytes(), false, seg->base_offset(),
                                                     [&](uint64_t, const BatchHeader& h, ByteSpan) {
                                                       if (h.producer_id >= 0 && h.base_offset >= from)
                                                         producers_.record(h, h.base_offset);
                                                       return Status::ok();
                                                     }));
    (void)damage;  // recovery already cut damaged ranges
  }
  return Status::ok();
}

Status Partition::sync(int64_t end_offset) {
  std::unique_lock lock(sync_mu_);
  while (flushed_offset_.load(std::memory_order_acquire) < end_offset) {
    if (sync_in_progress_) {
      sync_cv_.wait(lock);
      continue;
    }
    sync_in_progress_ = true;
    // Everything below `target` is in segments up to the active one; older
    // segments were synced when they were rolled.
    int64_t target = next_offset_.load(std::memory_order_acquire);
    std::shared_ptr<Segment> active;
    {
      std::shared_lock seg_lock(segments_mu_);
      if (!segments_.empty()) active = segments_.back();
    }
    lock.unlock();
    Status s = active ? active->sync() : error(ErrorCode::kClosed, "partition deleted");
    lock.lock();
    sync_in_progress_ = false;
    if (s.is_ok() && target > flushed_offset_.load()) flushed_offset_.store(target, std::memory_order_release);
    sync_cv_.notify_all();
    if (!s.is_ok()) return s;
  }
  return Status::ok();
}

Status Partition::roll() {
  std::lock_guard lock(append_mu_);
  if (segments_.back()->size_bytes() == 0) return Status::ok();
  return roll_locked();
}

Status Partition::roll_locked() {
  std::shared_ptr<Segment> old = segments_.back();
  // A closed segment is never validated again on open, so it (and the index
  // that open trusts) must be whole on disk.
  EVERT_RETURN_IF_ERROR(old->sync());
  EVERT_RETURN_IF_ERROR(old->sync_index());
  {
    std::lock_guard lock(sync_mu_);
    if (old->next_offset() > flushed_offset_.load()) flushed_offset_.store(old->next_offset());
  }
  EVERT_ASSIGN_OR_RETURN(auto seg, Segment::create(env_, dir_, old->next_offset(), uint32_t(config_.index_interval_bytes)));
  {
    std::unique_lock seg_lock(segments_mu_);
    segments_.push_back(std::move(seg));
  }
  // Bounds the scan a restart needs to rebuild producer state to one segment.
  return write_producer_snapshot_locked(old->next_offset());
}

std::shared_ptr<Segment> Partition::segment_for(int64_t offset) const {
  std::shared_lock lock(segments_mu_);
  if (segments_.empty()) return nullptr;  // deleted
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](int64_t o, const std::shared_ptr<Segment>& s) { return o < s->base_offset(); });
  if (it == segments_.begin()) return segments_.front();
  return *std::prev(it);
}

std::shared_ptr<Segment> Partition::segment_after(int64_t base_offset) const {
  std::shared_lock lock(segments_mu_);
  auto it = std::upper_bound(segments_.begin(), segments_.end(), base_offset,
                             [](int64_t o, const std::shared_ptr<Segment>& s) { return o < s->base_offset(); });
  return it == segments_.end() ? nullptr : *it;
}

Result<ReadResult> Partition::read(int64_t offset, uint64_t max_bytes) const {
  ReadResult result;
  result.high_watermark = high_watermark();
  result.log_start_offset = log_start_offset();
  if (offset > result.high_watermark) {
    // The active segment publishes an append's bytes before append() stores
    // the new high watermark, so an earlier read may already have returned
    // records up to `offset` - 1 (a consumer then asks for `offset`). That
    // append still holds append_mu_: wait for it before calling the offset
    // out of range. Only this rare path takes the lock.
    std::lock_guard lock(append_mu_);
    result.high_watermark = high_watermark();
  }
  if (offset < result.log_start_offset || offset > result.high_watermark)
    return error(ErrorCode::kOutOfRange, fmt::format("offset {} is outside [{}, {}]", offset, result.log_start_offset,
                                                     result.high_watermark));
  if (offset == result.high_watermark) return result;
  for (auto seg = segment_for(offset); seg != nullptr; seg = segment_after(seg->base_offset())) {
    EVERT_ASSIGN_OR_RETURN(result.slice, seg->read(offset, max_bytes));
    if (result.slice) break;
  }
  return result;
}

Result<std::optional<int64_t>> Partition::offset_for_timestamp(int64_t target) const {
  for (const auto& seg : segments()) {
    if (seg->max_timestamp() < target) continue;
    EVERT_ASSIGN_OR_RETURN(auto offset, seg->offset_for_timestamp(target));
    if (offset) return std::optional<int64_t>(std::max(*offset, log_start_offset()));
  }
  return std::optional<int64_t>();
}

Result<int> Partition::enforce_retention() {
  std::lock_guard lock(append_mu_);
  int64_t now = clock_->now_ms();
  auto expired = [&](const Segment& s) {
    return config_.retention_ms >= 0 && s.max_timestamp() >= 0 && now - s.max_timestamp() > config_.retention_ms;
  };
  // An expired active segment is rolled so that it can go too.
  if (expired(*segments_.back())) EVERT_RETURN_IF_ERROR(roll_locked());
  uint64_t total = size_bytes();
  int deleted = 0;
  while (segments_.size() > 1) {
    std::shared_ptr<Segment> oldest = segments_.front();
    bool over_size = config_.retention_bytes >= 0 && total - oldest->size_bytes() >= uint64_t(config_.retention_bytes);
    bool empty_old = oldest->size_bytes() == 0;
    if (!expired(*oldest) && !over_size && !empty_old) break;
    {
      std::unique_lock seg_lock(segments_mu_);
      segments_.erase(segments_.begin());
      log_start_offset_.store(segments_.front()->base_offset(), std::memory_order_release);
    }
    total -= oldest->size_bytes();
    EVERT_RETURN_IF_ERROR(oldest->remove_files());
    ++deleted;
  }
  if (deleted > 0) {
    EVERT_RETURN_IF_ERROR(env_.sync_dir(dir_));
    log_info("{}: retention deleted {} segment(s); log start offset now {}", dir_, deleted, log_start_offset());
  }
  return deleted;
}

Result<int> Partition::delete_segments_before(int64_t offset) {
  std::lock_guard lock(append_mu_);
  int deleted = 0;
  while (segments_.size() > 1 && segments_.front()->next_offset() <= offset) {
    std::shared_ptr<Segment> oldest = segments_.front();
    {
      std::unique_lock seg_lock(segments_mu_);
      segments_.erase(segments_.begin());
      log_start_offset_.store(segments_.front()->base_offset(), std::memory_order_release);
    }
    EVERT_RETURN_IF_ERROR(oldest->remove_files());
    ++deleted;
  }
  if (deleted > 0) EVERT_RETURN_IF_ERROR(env_.sync_dir(dir_));
  return deleted;
}

void Partition::set_config(const TopicConfig& config) {
  std::lock_guard lock(append_mu_);
  config_ = config;
}

TopicConfig Partition::config() const {
  std::lock_guard lock(append_mu_);
  return config_;
}

Status Partition::remove_all() {
  std::lock_guard lock(append_mu_);
  failed_ = error(ErrorCode::kClosed, "partition deleted");
  std::unique_lock seg_lock(segments_mu_);
  segments_.clear();
  return io::remove_tree(env_, dir_);
}

uint64_t Partition::size_bytes() const {
  std::shared_lock lock(segments_mu_);
  uint64_t total = 0;
  for (const auto& s : segments_) total += s->size_bytes();
  return total;
}

size_t Partition::segment_count() const {
  std::shared_lock lock(segments_mu_);
  return segments_.size();
}

std::vector<std::shared_ptr<Segment>> Partition::segments() const {
  std::shared_lock lock(segments_mu_);
  return segments_;
}

}  // namespace evert::log
