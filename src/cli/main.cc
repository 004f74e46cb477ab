// evert: one binary, many subcommands (the CLI contract of SYSTEM.md).
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"evert: a Kafka-compatible log with derived views, turned inside out"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "evert 0.1.0");
  evert::cli::add_serve_command(app);
  evert::cli::add_log_commands(app);
  evert::cli::add_topic_commands(app);
  evert::cli::add_produce_command(app);
  evert::cli::add_consume_command(app);
  evert::cli::add_bench_commands(app);
  evert::cli::add_group_commands(app);
  evert::cli::add_sql_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
