// Fetch long polling: a fetch that cannot yet return min_bytes waits until
// data arrives on one of its partitions or max_wait_ms passes (KIP-74
// semantics for byte limits).
//
// Threading: start() runs on an I/O thread; notify() on the appending
// thread; completions run on I/O threads via NetServer::post/run_after.
// Exactly one completion answers each fetch (FetchState::done).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "kafka/protocol/messages.h"
#include "kafka/server/broker.h"

namespace evert::kafka {

struct FetchState {
  std::shared_ptr<Broker::Request> req;
  FetchRequest request;
  std::atomic<bool> done{false};
  std::atomic<bool> evaluation_posted{false};
};

// Reads what `request` asks for. Returns the response and, in *bytes, the
// record bytes it carries; *has_error is set when a partition failed (such a
// fetch is answered at once).
FetchResponse build_fetch_response(log::LogManager& log, const FetchRequest& request, int16_t version,
                                   int64_t* bytes, bool* has_error);

class FetchWaiters : public std::enable_shared_from_this<FetchWaiters> {
 public:
  explicit FetchWaiters(Broker* broker) : broker_(broker) {}

  void start(std::shared_ptr<FetchState> fetch);
  void notify(const std::string& topic, int32_t partition);
  // Answers every parked fetch now (server stopping).
  void shutdown();
  // Forgets the parked fetches of a closed connection: nobody will read
  // their answers, and a reconnecting client must not pile them up.
  void cancel_connection(uint64_t connection_id);

 private:
  using Key = std::pair<std::string, int32_t>;
  bool try_complete(const std::shared_ptr<FetchState>& fetch, bool final);
  void park(const std::shared_ptr<FetchState>& fetch);
  void unpark(const std::shared_ptr<FetchState>& fetch);

  Broker* broker_;
  std::mutex mu_;  // guards parked_, shut_
  std::multimap<Key, std::shared_ptr<FetchState>> parked_;
  bool shut_ = false;
};

}  // namespace evert::kafka
