// The composition root: owns every subsystem of a running evert and starts
// and stops them in order. At this stage it owns the log; the Kafka broker,
// pgwire and HTTP join it in their issues.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "kafka/server/broker.h"
#include "kafka/server/group_coordinator.h"
#include "log/log_manager.h"
#include "net/server.h"
#include "serve/http/http_server.h"
#include "server/http_api.h"
#include "views/engine.h"

namespace evert::server {

struct ServerConfig {
  std::string data_dir = "./evert-data";
  std::string host = "127.0.0.1";
  int kafka_port = 9092;
  int pg_port = 6875;
  int http_port = 8080;
  log::FlushPolicy flush;
  bool verify_on_open = false;
  int64_t retention_check_interval_ms = 5 * 60 * 1000;
  log::TopicConfig topic_defaults;
  // Kafka listener.
  std::string advertised_host;  // empty: --host
  int advertised_port = 0;      // 0: the bound Kafka port
  bool auto_create_topics = true;
  int32_t default_partitions = 1;
  int io_threads = 2;
  // Views: threads decoding a long backfill ahead of each view (-1: one per
  // core when there are two or more; 0: none), and how far behind a view
  // must be for them to start.
  int view_decode_threads = -1;
  int64_t view_decode_ahead_records = views::DecodeAhead{}.min_records;
  // How far behind a view of COUNT/SUM/AVG must be to sum its events per
  // group ahead of its groups (-1: never).
  int64_t view_partial_aggregation_records = views::PartialAggregation{}.min_records;
  uint32_t max_request_bytes = 100u << 20;
};

class Server {
 public:
  // Opens (and recovers) the data directory and starts serving.
  static Result<std::unique_ptr<Server>> start(const ServerConfig& config);
  ~Server();

  // Blocks until SIGINT or SIGTERM. Call block_shutdown_signals() first,
  // before any thread starts, so the signal reaches this thread.
  static void block_shutdown_signals();
  static int wait_for_shutdown_signal();

  Status stop();
  log::LogManager& log() { return *log_; }
  const log::OpenReport& open_report() const { return open_report_; }
  int kafka_port() const { return kafka_port_; }
  int http_port() const { return http_port_; }

 private:
  explicit Server(const ServerConfig& config) : config_(config) {}
  Status start_kafka();
  Status start_http();
  Status start_views();
  Result<std::string> load_cluster_id();

  ServerConfig config_;
  log::OpenReport open_report_;
  std::unique_ptr<log::LogManager> log_;
  std::unique_ptr<net::NetServer> net_;
  std::unique_ptr<kafka::GroupCoordinator> groups_;
  std::unique_ptr<kafka::Broker> broker_;
  int kafka_port_ = 0;
  std::unique_ptr<views::Engine> engine_;
  std::unique_ptr<serve::HttpServer> http_;
  ApiSources api_sources_;
  int http_port_ = 0;
};

}  // namespace evert::server
