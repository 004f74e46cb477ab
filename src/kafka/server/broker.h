// The Kafka broker: one node (id 0) that is its own controller and group
// coordinator, serving the log over the Kafka protocol.
//
// Threading: on_frame runs on the network I/O threads; handlers answer
// inline, or later from a sync thread (acks=all) or a timer (fetch long poll).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "kafka/protocol/header.h"
#include "kafka/protocol/wire.h"
#include "kafka/server/producer_ids.h"
#include "log/log_manager.h"
#include "net/server.h"

namespace evert::kafka {

struct BrokerConfig {
  int32_t node_id = 0;
  std::string advertised_host = "127.0.0.1";
  int advertised_port = 9092;
  std::string cluster_id = "evert";
  bool auto_create_topics = true;
  int32_t default_partitions = 1;
  // Fetch: upper bound on max_wait_ms honoured, whatever the client asks.
  int32_t fetch_max_wait_ms = 30000;
};

struct BrokerStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bad_requests{0};
  std::atomic<uint64_t> produced_batches{0};
  std::atomic<uint64_t> fetches_parked{0};
};

class FetchWaiters;
class GroupCoordinator;

class Broker final : public net::FrameHandler {
 public:
  // `groups` may be null: the group apis are then not advertised.
  Broker(const BrokerConfig& config, log::LogManager* log, net::NetServer* net, GroupCoordinator* groups);
  ~Broker() override;

  void on_frame(const net::ConnectionInfo& conn, net::FrameBuffer frame, net::Reply reply) override;
  void on_close(const net::ConnectionInfo& conn) override;
  void set_advertised_port(int port) { config_.advertised_port = port; }
  const BrokerConfig& config() const { return config_; }
  const BrokerStats& stats() const { return stats_; }

  // Per-request state handed to the API handlers.
  struct Request {
    RequestHeader header;
    net::FrameBuffer frame;  // owns the bytes the decoder and records point into
    size_t body_offset = 0;
    net::Reply reply;
    net::ConnectionInfo conn;
  };

 private:
  using Handler = void (Broker::*)(std::shared_ptr<Request>);
  static const std::map<int16_t, Handler>& handlers();
  bool serves(int16_t api_key) const;
  void dispatch(std::shared_ptr<Request> req);
  template <typename Resp>
  void respond(Request& req, const Resp& resp) {
    Encoder body;
    resp.encode(body, req.header.api_version);
    req.reply.send(frame_response(req.header.api_key, req.header.api_version, req.header.correlation_id,
                                  std::move(body)));
  }
  void fail_request(Request& req, const std::string& why);
  template <typename T>
  friend bool decode_body(Broker::Request& req, T& out, std::string* why);

  void handle_api_versions(std::shared_ptr<Request> req);
  void handle_metadata(std::shared_ptr<Request> req);
  void handle_produce(std::shared_ptr<Request> req);
  void handle_fetch(std::shared_ptr<Request> req);
  void handle_list_offsets(std::shared_ptr<Request> req);
  void handle_create_topics(std::shared_ptr<Request> req);
  void handle_delete_topics(std::shared_ptr<Request> req);
  void handle_create_partitions(std::shared_ptr<Request> req);
  void handle_describe_configs(std::shared_ptr<Request> req);
  void handle_alter_configs(std::shared_ptr<Request> req);
  void handle_incremental_alter_configs(std::shared_ptr<Request> req);
  void handle_find_coordinator(std::shared_ptr<Request> req);
  void handle_join_group(std::shared_ptr<Request> req);
  void handle_sync_group(std::shared_ptr<Request> req);
  void handle_heartbeat(std::shared_ptr<Request> req);
  void handle_leave_group(std::shared_ptr<Request> req);
  void handle_offset_commit(std::shared_ptr<Request> req);
  void handle_offset_fetch(std::shared_ptr<Request> req);
  void handle_describe_groups(std::shared_ptr<Request> req);
  void handle_list_groups(std::shared_ptr<Request> req);
  void handle_delete_groups(std::shared_ptr<Request> req);
  void handle_init_producer_id(std::shared_ptr<Request> req);
  void schedule_group_tick();

  // Creates `topic` with the default partition count if auto-creation is on.
  bool maybe_auto_create(const std::string& topic);

  BrokerConfig config_;
  log::LogManager* log_;
  net::NetServer* net_;
  GroupCoordinator* coordinator_;
  std::unique_ptr<ProducerIdAllocator> producer_ids_;
  BrokerStats stats_;
  std::shared_ptr<FetchWaiters> waiters_;

  friend class FetchWaiters;
};

// Maps log error codes onto Kafka error codes.
int16_t kafka_error_for(const Status& status);

}  // namespace evert::kafka
