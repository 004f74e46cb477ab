// A small HTTP/1.1 server (Boost.Beast, kept out of this header) for
// evert's API and metrics. Routes map a method and an exact path (or a
// path prefix ending in '/') to a handler that returns a response.
//
// Threading: handlers run on the server's own I/O thread(s); they must be
// thread-safe and must not block for long.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/status.h"

namespace evert::serve {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  std::map<std::string, std::string> query;  // decoded
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;

  static HttpResponse json(std::string body, int status = 200) { return HttpResponse{status, "application/json", std::move(body)}; }
  // {"error": {"code": ..., "message": ...}} with an HTTP 4xx/5xx status.
  static HttpResponse error(int status, const std::string& code, const std::string& message);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 1;
  size_t body_bytes_max = 16u << 20;
};

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();
  // Registers a route before start(). `path` ending in '/' matches any
  // path below it.
  void route(const std::string& method, const std::string& path, HttpHandler handler);
  // Binds and starts serving; returns the bound port.
  Result<int> start(const HttpServerOptions& options);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evert::serve
