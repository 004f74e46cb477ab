#include "server/server.h"

#include <signal.h>

#include "base/logging.h"
#include "io/env.h"
#include "server/sql_api.h"

#include <fmt/format.h>

#include <random>

namespace evert::server {

Result<std::unique_ptr<Server>> Server::start(const ServerConfig& config) {
  std::unique_ptr<Server> s(new Server(config));
  log::LogOptions options;
  options.data_dir = config.data_dir;
  options.flush = config.flush;
  options.defaults = config.topic_defaults;
  options.verify_all_on_open = config.verify_on_open;
  options.retention_check_interval_ms = config.retention_check_interval_ms;
  auto log = log::LogManager::open(options, &s->open_report_);
  if (!log.is_ok()) return log.status().with_context("opening data directory " + config.data_dir);
  s->log_ = std::move(log).value();
  const auto& r = s->open_report_;
  log_info("data directory {}: {} topic(s), {} partition(s), {} segment(s), {} bytes, {} records; {} in {} ms",
           config.data_dir, r.topics, r.partitions, r.segments, r.bytes, r.records,
           r.new_directory    ? "new data directory"
           : r.clean_shutdown ? "clean shutdown"
                              : "recovered after an unclean shutdown",
           r.elapsed_ms);
  for (const auto& p : r.problems) log_warn("recovery: {}", p);
  log_info("flush policy {}", log::flush_policy_name(config.flush));
  EVERT_RETURN_IF_ERROR(s->start_kafka());
  EVERT_RETURN_IF_ERROR(s->start_views());
  EVERT_RETURN_IF_ERROR(s->start_http());
  // One line with every chosen port, for scripts and tests (ports may be 0 = any).
  log_info("listening kafka={}:{} http={}:{}", config.host, s->kafka_port_, config.host, s->http_port_);
  return s;
}

Result<std::string> Server::load_cluster_id() {
  io::Env& env = io::Env::posix();
  std::string path = io::join_path(config_.data_dir, "cluster.id");
  if (env.file_exists(path)) {
    EVERT_ASSIGN_OR_RETURN(std::string id, io::read_whole_file(env, path));
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    if (!id.empty()) return id;
  }
  std::random_device rd;
  std::string id = fmt::format("evert-{:08x}{:08x}", rd(), rd());
  EVERT_RETURN_IF_ERROR(io::write_file_atomically(env, path, as_bytes(id + "\n")));
  return id;
}

Status Server::start_kafka() {
  EVERT_ASSIGN_OR_RETURN(std::string cluster_id, load_cluster_id());
  net_ = std::make_unique<net::NetServer>(config_.io_threads);
  kafka::BrokerConfig bc;
  bc.advertised_host = config_.advertised_host.empty() ? config_.host : config_.advertised_host;
  bc.cluster_id = cluster_id;
  bc.auto_create_topics = config_.auto_create_topics;
  bc.default_partitions = config_.default_partitions;
  EVERT_ASSIGN_OR_RETURN(groups_, kafka::GroupCoordinator::open(log_.get(), kafka::GroupConfig{}, &Clock::system()));
  broker_ = std::make_unique<kafka::Broker>(bc, log_.get(), net_.get(), groups_.get());
  net::ListenerOptions lo;
  lo.host = config_.host;
  lo.port = config_.kafka_port;
  lo.max_frame_bytes = config_.max_request_bytes;
  EVERT_ASSIGN_OR_RETURN(kafka_port_, net_->listen(lo, broker_.get()));
  broker_->set_advertised_port(config_.advertised_port != 0 ? config_.advertised_port : kafka_port_);
  net_->start();
  return Status::ok();
}

Server::~Server() {
  Status s = stop();
  if (!s.is_ok()) log_error("stopping: {}", s.to_string());
}

void Server::block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int Server::wait_for_shutdown_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

Status Server::start_views() {
  std::string dir = io::join_path(config_.data_dir, "views");
  views::EngineOptions eo;
  eo.state_dir = dir;
  eo.log = log_.get();
  eo.decode_ahead.threads = config_.view_decode_threads;
  eo.decode_ahead.min_records = config_.view_decode_ahead_records;
  eo.partial.min_records = config_.view_partial_aggregation_records;
  EVERT_ASSIGN_OR_RETURN(engine_, views::Engine::open(eo));
  log_->set_append_listener(1, [e = engine_.get()](const std::string& topic, int32_t, int64_t) { e->on_append(topic); });
  return Status::ok();
}

Status Server::start_http() {
  http_ = std::make_unique<serve::HttpServer>();
  api_sources_ = ApiSources{log_.get(), groups_.get(), broker_.get(), net_.get(), config_.data_dir, kafka_port_, 0,
                            Clock::system().now_ms()};
  api_sources_.engine = engine_.get();
  register_status_routes(*http_, &api_sources_);
  register_sql_routes(*http_, engine_.get());
  serve::HttpServerOptions ho;
  ho.host = config_.host;
  ho.port = config_.http_port;
  ho.threads = 4;  // SQL requests may wait for views (read-your-writes)
  EVERT_ASSIGN_OR_RETURN(http_port_, http_->start(ho));
  api_sources_.http_port = http_port_;
  return Status::ok();
}

Status Server::stop() {
  if (!log_) return Status::ok();
  if (http_) http_->stop();
  if (net_) net_->stop();  // no new requests; connections closed
  if (log_) log_->set_append_listener(1, nullptr);
  if (engine_) engine_->close();  // views commit their last checkpoint
  engine_.reset();
  // Closing the log drains pending acks=all syncs, whose callbacks still
  // reach the broker, so the broker goes after it.
  Status s = log_->close();
  broker_.reset();
  groups_.reset();
  net_.reset();
  log_.reset();
  if (s.is_ok()) log_info("stopped cleanly");
  return s;
}

}  // namespace evert::server
