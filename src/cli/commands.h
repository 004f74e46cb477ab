// The evert subcommands. Each returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace evert::cli {

void add_serve_command(CLI::App& app);
void add_log_commands(CLI::App& app);

}  // namespace evert::cli
