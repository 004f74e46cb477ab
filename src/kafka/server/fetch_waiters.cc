#include "kafka/server/fetch_waiters.h"

#include <algorithm>
#include <vector>

#include "kafka/server/errors.h"

namespace evert::kafka {

FetchResponse build_fetch_response(log::LogManager& log, const FetchRequest& request, int16_t version,
                                   int64_t* bytes, bool* has_error) {
  FetchResponse resp;
  *bytes = 0;
  *has_error = false;
  // Before v3 there is no response-wide limit.
  int64_t remaining = version >= 3 ? std::max<int32_t>(request.max_bytes, 0) : INT32_MAX;
  for (const auto& t : request.topics) {
    auto& topic = resp.responses.emplace_back();
    topic.topic = t.topic;
    for (const auto& p : t.partitions) {
      auto& part = topic.partitions.emplace_back();
      part.partition_index = p.partition;
      part.high_watermark = -1;
      part.last_stable_offset = -1;
      part.log_start_offset = -1;
      part.aborted_transactions.emplace();  // an empty list, never null
      part.preferred_read_replica = -1;
      auto partition = log.partition(t.topic, p.partition);
      if (!partition) {
        part.error_code = err::kUnknownTopicOrPartition;
        *has_error = true;
        continue;
      }
      part.high_watermark = partition->high_watermark();
      part.last_stable_offset = part.high_watermark;
      part.log_start_offset = partition->log_start_offset();
      int64_t limit = std::min<int64_t>(std::max<int32_t>(p.partition_max_bytes, 0), remaining);
      // The first data in a response is returned even above the limits, so
      // a consumer can always make progress (KIP-74).
      if (limit <= 0 && *bytes > 0) continue;
      auto read = partition->read(p.fetch_offset, uint64_t(std::max<int64_t>(limit, 1)));
      if (!read.is_ok()) {
        part.error_code = read.status().code() == ErrorCode::kOutOfRange ? err::kOffsetOutOfRange
                                                                           : err::kKafkaStorageError;
        *has_error = true;
        continue;
      }
      part.high_watermark = read->high_watermark;
      part.last_stable_offset = read->high_watermark;
      part.log_start_offset = read->log_start_offset;
      if (read->slice) {
        int64_t n = int64_t(read->slice->size_bytes);
        part.records.files.push_back(*read->slice);
        *bytes += n;
        remaining = std::max<int64_t>(0, remaining - n);
      }
    }
  }
  return resp;
}

void FetchWaiters::start(std::shared_ptr<FetchState> fetch) {
  const FetchRequest& r = fetch->request;
  int32_t max_wait = std::clamp(r.max_wait_ms, 0, broker_->config().fetch_max_wait_ms);
  if (max_wait <= 0 || r.min_bytes <= 0) {
    try_complete(fetch, true);
    return;
  }
  // Parked before the first look, so that no append can slip between them.
  park(fetch);
  if (try_complete(fetch, false)) return;
  ++broker_->stats_.fetches_parked;
  broker_->net_->run_after(std::chrono::milliseconds(max_wait),
                           [self = shared_from_this(), fetch] { self->try_complete(fetch, true); });
}

void FetchWaiters::park(const std::shared_ptr<FetchState>& fetch) {
  std::lock_guard lock(mu_);
  if (shut_) return;
  for (const auto& t : fetch->request.topics)
    for (const auto& p : t.partitions) parked_.emplace(Key{t.topic, p.partition}, fetch);
}

void FetchWaiters::unpark(const std::shared_ptr<FetchState>& fetch) {
  std::lock_guard lock(mu_);
  for (const auto& t : fetch->request.topics) {
    for (const auto& p : t.partitions) {
      auto [lo, hi] = parked_.equal_range(Key{t.topic, p.partition});
      for (auto it = lo; it != hi;) it = it->second == fetch ? parked_.erase(it) : std::next(it);
    }
  }
}

void FetchWaiters::notify(const std::string& topic, int32_t partition) {
  std::vector<std::shared_ptr<FetchState>> woken;
  {
    std::lock_guard lock(mu_);
    auto [lo, hi] = parked_.equal_range(Key{topic, partition});
    for (auto it = lo; it != hi; ++it)
      if (!it->second->evaluation_posted.exchange(true)) woken.push_back(it->second);
  }
  for (auto& fetch : woken) {
    broker_->net_->post([self = shared_from_this(), fetch] {
      fetch->evaluation_posted = false;
      self->try_complete(fetch, false);
    });
  }
}

bool FetchWaiters::try_complete(const std::shared_ptr<FetchState>& fetch, bool final) {
  if (fetch->done.load()) return true;
  int64_t bytes = 0;
  bool has_error = false;
  int16_t v = fetch->req->header.api_version;
  FetchResponse resp = build_fetch_response(*broker_->log_, fetch->request, v, &bytes, &has_error);
  if (!final && !has_error && bytes < fetch->request.min_bytes) return false;
  if (fetch->done.exchange(true)) return true;
  unpark(fetch);
  broker_->respond(*fetch->req, resp);
  return true;
}

void FetchWaiters::cancel_connection(uint64_t connection_id) {
  std::vector<std::shared_ptr<FetchState>> gone;
  {
    std::lock_guard lock(mu_);
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (it->second->req->conn.id == connection_id) {
        gone.push_back(it->second);
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // The replies go to a closed connection; marking them done stops the
  // timers' evaluations, and skip() satisfies each Reply's contract.
  for (auto& f : gone)
    if (!f->done.exchange(true)) f->req->reply.skip();
}

void FetchWaiters::shutdown() {
  std::vector<std::shared_ptr<FetchState>> all;
  {
    std::lock_guard lock(mu_);
    shut_ = true;
    for (auto& [k, f] : parked_) all.push_back(f);
    parked_.clear();
  }
  for (auto& f : all) try_complete(f, true);
}

}  // namespace evert::kafka
