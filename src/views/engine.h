// The SQL engine: the catalog of tables, views and indexes (kept in
// RocksDB beside the views' state), statement execution, and reads over
// views and tables with read-your-writes waiting. One per server.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sql/ast.h"
#include "views/view.h"

namespace evert::views {

struct TopicOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

struct QueryOptions {
  std::vector<TopicOffset> wait_for;  // reads wait until views reflect these
  std::chrono::milliseconds timeout{5000};
};

struct StatementResult {
  std::string command;  // "SELECT", "INSERT", "CREATE TABLE", ...
  bool has_rows = false;
  std::vector<std::string> columns;
  std::vector<std::string> types;
  std::vector<sql::Row> rows;
  int64_t rows_affected = -1;
  std::vector<TopicOffset> offsets;  // writes: one per record, in order
};

struct ExecuteResult {
  std::vector<StatementResult> results;
  std::optional<sql::SqlError> error;  // the statement at index results.size() failed
};

struct EngineOptions {
  std::string state_dir;  // RocksDB directory
  log::LogManager* log = nullptr;
  DecodeAhead decode_ahead;  // for every view
  PartialAggregation partial;  // for every view
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> open(const EngineOptions& options);
  ~Engine();

  // Runs the statements in order, stopping at the first error.
  ExecuteResult execute(std::string_view sql, const QueryOptions& options);
  // The row of view `name` whose key is `key` (text of a one-column key, or
  // a JSON array for several columns); an empty result when there is none.
  sql::SqlResult<StatementResult> lookup(const std::string& name, const std::string& key);
  sql::SqlResult<RebuildReport> rebuild(const std::string& name);
  std::vector<ViewStatus> view_statuses() const;
  std::optional<ViewStatus> view_status(const std::string& name) const;
  // Called for every append to the log (the server wires the listener).
  void on_append(const std::string& topic);
  void close();

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The SQLSTATE's HTTP status: 404 for missing relations, 409 for existing
// ones, 500 for internal errors, else 400.
int http_status_for(const std::string& sqlstate);

}  // namespace evert::views
