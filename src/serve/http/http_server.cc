#include "serve/http/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>
#include <vector>

#include "base/json.h"
#include "base/logging.h"

namespace evert::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResponse HttpResponse::error(int status, const std::string& code, const std::string& message) {
  JsonWriter w;
  w.begin_object();
  w.key("error");
  w.begin_object();
  w.key("code");
  w.value(code);
  w.key("message");
  w.value(message);
  w.end_object();
  w.end_object();
  return HttpResponse{status, "application/json", w.str()};
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(char(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

void parse_target(std::string_view target, HttpRequest* req) {
  auto q = target.find('?');
  req->path = url_decode(target.substr(0, q));
  if (q == std::string_view::npos) return;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    std::string key = url_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    if (!key.empty()) req->query[key] = value;
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
}

}  // namespace

struct HttpServer::Impl {
  asio::io_context io;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::map<std::pair<std::string, std::string>, HttpHandler> routes;
  HttpServerOptions options;
  bool started = false;

  HttpResponse dispatch(const HttpRequest& req) {
    auto exact = routes.find({req.method, req.path});
    if (exact != routes.end()) return exact->second(req);
    // Longest prefix route ending in '/'.
    const HttpHandler* best = nullptr;
    size_t best_len = 0;
    bool path_known = false;
    for (const auto& [key, handler] : routes) {
      const auto& [method, path] = key;
      bool matches = path == req.path || (!path.empty() && path.back() == '/' && req.path.rfind(path, 0) == 0);
      if (!matches) continue;
      path_known = true;
      if (method == req.method && path.size() > best_len) {
        best = &handler;
        best_len = path.size();
      }
    }
    if (best) return (*best)(req);
    if (path_known) return HttpResponse::error(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
    return HttpResponse::error(404, "not_found", "no such endpoint: " + req.path);
  }

  void accept() {
    acceptor->async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
        return accept();
      }
      std::make_shared<Session>(this, std::move(socket))->start();
      accept();
    });
  }

  // One keep-alive HTTP connection.
  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl* impl, tcp::socket socket) : impl(impl), stream(std::move(socket)) {}
    Impl* impl;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::unique_ptr<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> response;

    void start() { read(); }

    void read() {
      parser = std::make_unique<http::request_parser<http::string_body>>();
      parser->body_limit(impl->options.body_bytes_max);
      parser->header_limit(64 * 1024);
      stream.expires_after(std::chrono::seconds(60));
      http::async_read(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t) {
        self->on_read(ec);
      });
    }

    void on_read(beast::error_code ec) {
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof) return close();
      HttpResponse out;
      bool keep_alive = false;
      unsigned version = 11;
      if (ec) {
        int status = ec == http::error::body_limit ? 413 : 400;
        out = HttpResponse::error(status, status == 413 ? "too_large" : "bad_request", ec.message());
      } else {
        auto& msg = parser->get();
        keep_alive = msg.keep_alive();
        version = msg.version();
        HttpRequest req;
        req.method = std::string(msg.method_string());
        parse_target(std::string_view(msg.target().data(), msg.target().size()), &req);
        req.body = std::move(msg.body());
        try {
          out = impl->dispatch(req);
        } catch (const std::exception& e) {
          out = HttpResponse::error(500, "internal", e.what());
        }
      }
      response = http::response<http::string_body>(http::status(out.status), version);
      response.set(http::field::server, "evert");
      response.set(http::field::content_type, out.content_type);
      response.keep_alive(keep_alive);
      response.body() = std::move(out.body);
      response.prepare_payload();
      http::async_write(stream, response, [self = shared_from_this(), keep_alive](beast::error_code wec, size_t) {
        if (wec || !keep_alive) return self->close();
        self->read();
      });
    }

    void close() {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
  };
};

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& method, const std::string& path, HttpHandler handler) {
  impl_->routes[{method, path}] = std::move(handler);
}

Result<int> HttpServer::start(const HttpServerOptions& options) {
  impl_->options = options;
  beast::error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) return error(ErrorCode::kInvalidArgument, "bad HTTP listen address '" + options.host + "'");
  impl_->acceptor = std::make_unique<tcp::acceptor>(impl_->io);
  tcp::endpoint endpoint(address, uint16_t(options.port));
  impl_->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(endpoint, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return error(ErrorCode::kIoError,
                 "cannot listen for HTTP on " + options.host + ":" + std::to_string(options.port) + ": " + ec.message());
  int port = impl_->acceptor->local_endpoint().port();
  impl_->accept();
  impl_->started = true;
  for (int i = 0; i < std::max(1, options.threads); ++i) impl_->threads.emplace_back([this] { impl_->io.run(); });
  return port;
}

void HttpServer::stop() {
  if (!impl_->started) return;
  impl_->started = false;
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor->close(ec);
  });
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace evert::serve
