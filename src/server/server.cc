#include "server/server.h"

#include <signal.h>

#include "base/logging.h"

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
           r.clean_shutdown ? "clean shutdown" : "recovered after an unclean shutdown", r.elapsed_ms);
  for (const auto& p : r.problems) log_warn("recovery: {}", p);
  log_info("flush policy {}", log::flush_policy_name(config.flush));
  return s;
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

Status Server::stop() {
  if (!log_) return Status::ok();
  Status s = log_->close();
  log_.reset();
  if (s.is_ok()) log_info("stopped cleanly");
  return s;
}

}  // namespace evert::server
