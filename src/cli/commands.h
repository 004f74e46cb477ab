// The evert subcommands. Each returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace evert::cli {

void add_serve_command(CLI::App& app);
void add_log_commands(CLI::App& app);
// Clients of a running server (librdkafka).
void add_topic_commands(CLI::App& app);
void add_produce_command(CLI::App& app);
void add_consume_command(CLI::App& app);
void add_bench_commands(CLI::App& app);
void add_group_commands(CLI::App& app);
// A client of the server's HTTP SQL API.
void add_sql_command(CLI::App& app);

}  // namespace evert::cli
