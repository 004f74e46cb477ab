// The HTTP endpoints that describe a running server: /v1/status,
// /v1/groups, /v1/groups/<id> and /metrics (Prometheus text format).
#pragma once

#include <cstdint>

#include "kafka/server/broker.h"
#include "kafka/server/group_coordinator.h"
#include "log/log_manager.h"
#include "net/server.h"
#include "serve/http/http_server.h"
#include "views/engine.h"

namespace evert::server {

struct ApiSources {
  log::LogManager* log = nullptr;
  kafka::GroupCoordinator* groups = nullptr;
  kafka::Broker* broker = nullptr;
  net::NetServer* net = nullptr;
  std::string data_dir;
  int kafka_port = 0;
  int http_port = 0;
  int64_t started_ms = 0;
  views::Engine* engine = nullptr;
};

// Registers the routes; `sources` must outlive the server.
void register_status_routes(serve::HttpServer& http, const ApiSources* sources);

}  // namespace evert::server
