#include <fmt/format.h>

#include <cstdlib>

#include "base/logging.h"
#include "cli/commands.h"
#include "server/server.h"

namespace evert::cli {
namespace {

struct ServeOptions {
  server::ServerConfig config;
  std::string flush = "interval:1000";
  std::string log_level = "info";
};

int run_serve(ServeOptions& opts) {
  if (opts.log_level == "debug") set_log_level(LogLevel::kDebug);
  if (opts.log_level == "warn") set_log_level(LogLevel::kWarn);
  auto flush = log::parse_flush_policy(opts.flush);
  if (!flush.is_ok()) {
    fmt::print(stderr, "evert serve: {}\n", flush.status().message());
    return 2;
  }
  opts.config.flush = *flush;
  server::Server::block_shutdown_signals();
  auto server = server::Server::start(opts.config);
  if (!server.is_ok()) {
    log_error("{}", server.status().to_string());
    return 1;
  }
  log_info("evert ready: Kafka clients connect with bootstrap.servers={}:{} (e.g. kcat -b {}:{} -L)",
           opts.config.host, server.value()->kafka_port(), opts.config.host, server.value()->kafka_port());
  log_info("evert ready: SQL over HTTP at http://{}:{}/v1/sql (e.g. evert sql --server {}:{} -c 'SHOW TABLES')",
           opts.config.host, server.value()->http_port(), opts.config.host, server.value()->http_port());
  int sig = server::Server::wait_for_shutdown_signal();
  log_info("signal {} received, shutting down", sig);
  Status s = server.value()->stop();
  if (!s.is_ok()) {
    log_error("shutdown: {}", s.to_string());
    return 1;
  }
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto opts = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the evert server");
  auto& c = opts->config;
  cmd->set_config("--config", "", "Read options from this TOML file (flags win over it, it wins over EVERT_* variables)");
  cmd->add_option("--data-dir", c.data_dir, "Data directory")->envname("EVERT_DATA_DIR")->capture_default_str();
  cmd->add_option("--host", c.host, "Address to listen on")->envname("EVERT_HOST")->capture_default_str();
  cmd->add_option("--kafka-port", c.kafka_port, "Kafka protocol port (0 = any free port)")
      ->envname("EVERT_KAFKA_PORT")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--pg-port", c.pg_port, "PostgreSQL protocol port (0 = any free port)")
      ->envname("EVERT_PG_PORT")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--http-port", c.http_port, "HTTP port (0 = any free port)")
      ->envname("EVERT_HTTP_PORT")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--flush", opts->flush, "When appended data is fsynced: always, none, or interval:<ms>")
      ->envname("EVERT_FLUSH")->capture_default_str();
  cmd->add_flag("--verify-on-open", c.verify_on_open, "Check every batch's CRC of every segment at start-up")
      ->envname("EVERT_VERIFY_ON_OPEN");
  cmd->add_option("--retention-check-interval-ms", c.retention_check_interval_ms,
                  "How often retention deletes expired segments")
      ->envname("EVERT_RETENTION_CHECK_INTERVAL_MS")->capture_default_str();
  cmd->add_option("--advertised-host", c.advertised_host, "Host given to Kafka clients in metadata (default: --host)")
      ->envname("EVERT_ADVERTISED_HOST");
  cmd->add_option("--advertised-port", c.advertised_port, "Port given to Kafka clients (default: the Kafka port)")
      ->envname("EVERT_ADVERTISED_PORT")->check(CLI::Range(0, 65535));
  cmd->add_option("--auto-create-topics", c.auto_create_topics, "Create unknown topics on metadata requests")
      ->envname("EVERT_AUTO_CREATE_TOPICS")->capture_default_str();
  cmd->add_option("--default-partitions", c.default_partitions, "Partitions of auto-created topics")
      ->envname("EVERT_DEFAULT_PARTITIONS")->check(CLI::Range(1, 10000))->capture_default_str();
  cmd->add_option("--view-decode-threads", c.view_decode_threads,
                  "Threads decoding a long view backfill ahead of the view (-1: one per core, 0: none)")
      ->envname("EVERT_VIEW_DECODE_THREADS")->check(CLI::Range(-1, 16))->capture_default_str();
  cmd->add_option("--view-decode-ahead-records", c.view_decode_ahead_records,
                  "How far behind its source a view must be for those threads to start")
      ->envname("EVERT_VIEW_DECODE_AHEAD_RECORDS")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--view-partial-aggregation-records", c.view_partial_aggregation_records,
                  "How far behind its source a COUNT/SUM/AVG view must be to sum its events per group before "
                  "applying them (-1: never)")
      ->envname("EVERT_VIEW_PARTIAL_AGGREGATION_RECORDS")->check(CLI::Range(int64_t(-1), INT64_MAX))
      ->capture_default_str();
  cmd->add_option("--io-threads", c.io_threads, "Network threads")
      ->envname("EVERT_IO_THREADS")->check(CLI::Range(1, 64))->capture_default_str();
  cmd->add_option("--max-request-bytes", c.max_request_bytes, "Largest request frame accepted")
      ->envname("EVERT_MAX_REQUEST_BYTES")->check(CLI::Range(1024u, 1u << 30))->capture_default_str();
  cmd->add_option("--log-level", opts->log_level, "debug, info or warn")
      ->envname("EVERT_LOG_LEVEL")->check(CLI::IsMember({"debug", "info", "warn"}))->capture_default_str();
  cmd->callback([opts] { std::exit(run_serve(*opts)); });
}

}  // namespace evert::cli
