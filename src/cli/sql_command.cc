// `evert sql`: sends SQL to a running server's HTTP API (`POST /v1/sql`,
// docs/SQL.md) and prints the answers as psql does (sql_format.h).
//
// Each -c is one request and each -f one request (the whole file), in the
// order given; with neither, stdin is the script. The first request that
// fails ends the run, since later statements usually depend on it.
//
// Exit codes: 0 success; 1 the server reported an error (or answered
// something unreadable); 2 no answer was had: bad arguments, an unreadable
// script, the server unreachable or silent past --timeout-ms. As psql's 2,
// that means "the connection went bad", not "the SQL is wrong".
#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "cli/commands.h"
#include "cli/sql_format.h"

namespace evert::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr const char* kDefaultHttpServer = "127.0.0.1:8080";
constexpr const char* kSqlTarget = "/v1/sql";
constexpr int kRequestTimeoutDefaultMs = 30'000;
// A script is sent in one request body; the answer is held in memory whole.
constexpr size_t kScriptBytesMax = size_t(64) << 20;
constexpr uint64_t kAnswerBytesMax = uint64_t(256) << 20;
// Bytes of an unreadable answer quoted in the error message.
constexpr size_t kQuotedAnswerBytesMax = 200;

struct SqlOptions {
  std::string server = kDefaultHttpServer;
  std::vector<std::string> commands;  // -c, in order
  std::vector<std::string> files;     // -f, in order; "-" is stdin
  bool json = false;
  int timeout_ms = kRequestTimeoutDefaultMs;
};

// One request to make: its SQL and where it came from, for messages.
struct Script {
  std::string origin;
  std::string sql;
};

struct ServerAddress {
  std::string host;  // without IPv6 brackets
  std::string port;
  std::string text;  // HOST:PORT as the Host header and messages show it
};

struct HttpAnswer {
  unsigned status = 0;
  std::string body;
};

int fail(const Status& s, int exit_code) {
  fmt::print(stderr, "evert sql: {}\n", s.message());
  return exit_code;
}

// "HOST:PORT", "[v6]:PORT", optionally with "http://" before it.
Result<ServerAddress> parse_server(std::string_view s) {
  auto bad = [&](const char* why) {
    return error(ErrorCode::kInvalidArgument, fmt::format("--server '{}': {}", s, why));
  };
  std::string_view rest = s;
  if (rest.starts_with("https://")) return bad("https is not supported");
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  if (rest.ends_with("/")) rest.remove_suffix(1);
  ServerAddress addr;
  size_t colon = std::string_view::npos;
  if (rest.starts_with("[")) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("no ']' after the IPv6 address");
    addr.host = std::string(rest.substr(1, close - 1));
    if (close + 1 < rest.size() && rest[close + 1] == ':') colon = close + 1;
  } else {
    colon = rest.rfind(':');
    if (colon != std::string_view::npos) addr.host = std::string(rest.substr(0, colon));
  }
  if (colon == std::string_view::npos) return bad("expected HOST:PORT");
  addr.port = std::string(rest.substr(colon + 1));
  if (addr.host.empty()) return bad("no host");
  int port = 0;
  for (char c : addr.port) {
    if (c < '0' || c > '9' || port > 65535) return bad("the port is not a number from 1 to 65535");
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return bad("the port is not a number from 1 to 65535");
  addr.text = std::string(rest);
  return addr;
}

// The whole of `path` ("-": stdin), refusing more than kScriptBytesMax.
Result<std::string> read_script(const std::string& path) {
  bool is_stdin = path == "-";
  std::string name = is_stdin ? "stdin" : path;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> owned(nullptr, std::fclose);
  std::FILE* f = stdin;
  if (!is_stdin) {
    owned.reset(std::fopen(path.c_str(), "rb"));
    if (owned == nullptr)
      return error(ErrorCode::kIoError, fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    f = owned.get();
  }
  std::string text;
  char buf[64 * 1024];
  for (;;) {
    size_t n = std::fread(buf, 1, sizeof buf, f);
    if (text.size() + n > kScriptBytesMax)
      return error(ErrorCode::kTooLarge, fmt::format("{} is larger than {} MiB", name, kScriptBytesMax >> 20));
    text.append(buf, n);
    if (n < sizeof buf) break;
  }
  if (std::ferror(f)) return error(ErrorCode::kIoError, fmt::format("cannot read {}: {}", name, std::strerror(errno)));
  return text;
}

// The requests, in command-line order (CLI11 records each occurrence).
Result<std::vector<Script>> collect_scripts(const SqlOptions& opts, const CLI::App& cmd, const CLI::Option* c_opt,
                                            const CLI::Option* f_opt) {
  std::vector<Script> scripts;
  size_t next_c = 0;
  size_t next_f = 0;
  for (const CLI::Option* o : cmd.parse_order()) {
    if (o == c_opt && next_c < opts.commands.size()) {
      scripts.push_back({fmt::format("-c #{}", next_c + 1), opts.commands[next_c]});
      ++next_c;
    } else if (o == f_opt && next_f < opts.files.size()) {
      const std::string& path = opts.files[next_f++];
      EVERT_ASSIGN_OR_RETURN(std::string sql, read_script(path));
      scripts.push_back({path == "-" ? "stdin" : path, std::move(sql)});
    }
  }
  if (opts.commands.empty() && opts.files.empty()) {
    EVERT_ASSIGN_OR_RETURN(std::string sql, read_script("-"));
    scripts.push_back({"stdin", std::move(sql)});
  }
  return scripts;
}

std::string request_body(const std::string& sql) {
  JsonWriter w;
  w.begin_object();
  w.key("sql");
  w.value(sql);
  w.end_object();
  return w.str();
}

Status transport_error(const ServerAddress& server, const char* step, beast::error_code ec, int timeout_ms) {
  if (ec == beast::error::timeout)
    return error(ErrorCode::kTimeout, fmt::format("no answer from {} within {} ms", server.text, timeout_ms));
  if (ec == http::error::body_limit)
    return error(ErrorCode::kTooLarge,
                 fmt::format("the answer from {} is larger than {} MiB", server.text, kAnswerBytesMax >> 20));
  return error(ErrorCode::kIoError, fmt::format("{} {}: {}", step, server.text, ec.message()));
}

// One HTTP/1.1 POST on a connection of its own. Beast's blocking calls
// cannot be given a deadline (tcp_stream timeouts apply to asynchronous
// operations only), so connect, write and read are asynchronous on a private
// io_context run to completion on this thread: the call still blocks, and
// gives up after timeout_ms. Name resolution is the system's, with its own
// timeouts.
Result<HttpAnswer> post(const ServerAddress& server, const char* target, std::string body, int timeout_ms) {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(server.host, server.port, ec);
  if (ec) return error(ErrorCode::kIoError, fmt::format("cannot resolve {}: {}", server.host, ec.message()));

  http::request<http::string_body> request{http::verb::post, target, 11};
  request.set(http::field::host, server.text);
  request.set(http::field::user_agent, "evert-sql");
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, "application/json");
  request.body() = std::move(body);
  request.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(kAnswerBytesMax);
  beast::flat_buffer buffer;

  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::milliseconds(timeout_ms));  // one deadline for all three steps
  const char* failed_step = nullptr;
  stream.async_connect(endpoints, [&](beast::error_code connect_ec, const tcp::endpoint&) {
    if (connect_ec) {
      ec = connect_ec;
      failed_step = "cannot connect to";
      return;
    }
    http::async_write(stream, request, [&](beast::error_code write_ec, size_t) {
      if (write_ec) {
        ec = write_ec;
        failed_step = "sending the request to";
        return;
      }
      http::async_read(stream, buffer, parser, [&](beast::error_code read_ec, size_t) {
        if (read_ec) {
          ec = read_ec;
          failed_step = "reading the answer from";
        }
      });
    });
  });
  ioc.run();
  if (failed_step != nullptr) return transport_error(server, failed_step, ec, timeout_ms);
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  HttpAnswer answer;
  answer.status = parser.get().result_int();
  answer.body = std::move(parser.get().body());
  return answer;
}

void write_all(std::FILE* f, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), f);
  std::fflush(f);
}

std::string quoted_answer(const std::string& body) {
  if (body.size() <= kQuotedAnswerBytesMax) return body;
  return body.substr(0, kQuotedAnswerBytesMax) + "...";
}

// Prints one answer; returns the exit code it calls for.
int print_answer(const SqlOptions& opts, const ServerAddress& server, const Script& script, const HttpAnswer& answer) {
  bool http_ok = answer.status >= 200 && answer.status < 300;
  if (opts.json) {
    write_all(stdout, answer.body.ends_with('\n') ? answer.body : answer.body + "\n");
    return http_ok ? 0 : 1;
  }
  auto output = render_sql_answer(answer.body, script.sql);
  if (!output.is_ok()) {
    return fail(error(ErrorCode::kCorruption, fmt::format("unexpected answer from {} to {} (HTTP {}): {}: {}",
                                                          server.text, script.origin, answer.status,
                                                          output.status().message(), quoted_answer(answer.body))),
                1);
  }
  write_all(stdout, output->out);  // the statements that ran come before the error
  write_all(stderr, output->err);
  if (output->failed) return 1;
  if (!http_ok)
    return fail(error(ErrorCode::kInternal, fmt::format("{} answered HTTP {} to {}", server.text, answer.status,
                                                        script.origin)),
                1);
  return 0;
}

int run_sql(const SqlOptions& opts, const CLI::App& cmd, const CLI::Option* c_opt, const CLI::Option* f_opt) {
  auto server = parse_server(opts.server);
  if (!server.is_ok()) return fail(server.status(), 2);
  auto scripts = collect_scripts(opts, cmd, c_opt, f_opt);
  if (!scripts.is_ok()) return fail(scripts.status(), 2);
  for (const Script& script : *scripts) {
    if (script.sql.find_first_not_of(" \t\r\n") == std::string::npos) continue;  // nothing to run
    auto answer = post(*server, kSqlTarget, request_body(script.sql), opts.timeout_ms);
    if (!answer.is_ok()) return fail(answer.status(), 2);
    if (int code = print_answer(opts, *server, script, *answer); code != 0) return code;
  }
  return 0;
}

}  // namespace

void add_sql_command(CLI::App& app) {
  auto opts = std::make_shared<SqlOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sql", "Run SQL on a running server over HTTP and print the results as psql does (stdin without -c/-f)");
  cmd->add_option("--server", opts->server, "The server's HTTP API, HOST:PORT")
      ->envname("EVERT_HTTP")
      ->capture_default_str();
  CLI::Option* c_opt = cmd->add_option("-c,--command", opts->commands,
                                       "Run these statements as one request (repeatable; run in order)")
                           ->allow_extra_args(false);
  CLI::Option* f_opt = cmd->add_option("-f,--file", opts->files,
                                       "Run this file as one request ('-': stdin; repeatable, in order with -c)")
                           ->allow_extra_args(false);
  cmd->add_flag("--json", opts->json, "Print each answer's JSON body as it came");
  cmd->add_option("--timeout-ms", opts->timeout_ms, "Give up on a request not answered within this time")
      ->check(CLI::Range(1, 86'400'000))
      ->capture_default_str();
  cmd->callback([opts, cmd, c_opt, f_opt] { std::exit(run_sql(*opts, *cmd, c_opt, f_opt)); });
}

}  // namespace evert::cli
