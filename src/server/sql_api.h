// The HTTP endpoints of the SQL engine: POST /v1/sql, GET /v1/views,
// GET /v1/views/<name>[?key=...], POST /v1/views/<name>/rebuild.
// See docs/SQL.md for the request and response bodies.
#pragma once

#include "base/json.h"
#include "serve/http/http_server.h"
#include "views/engine.h"

namespace evert::server {

void register_sql_routes(serve::HttpServer& http, views::Engine* engine);
void write_view_status(JsonWriter& w, const views::ViewStatus& st);

}  // namespace evert::server
