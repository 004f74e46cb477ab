#include "server/sql_api.h"

#include <simdjson.h>

#include <fmt/format.h>

namespace evert::server {

namespace {

constexpr int64_t kTimeoutMsMax = 300000;

serve::HttpResponse sql_error(const sql::SqlError& e, int statement, const std::string& results_json,
                              const std::string& sql_text) {
  JsonWriter w;
  w.begin_object();
  w.key("error");
  w.begin_object();
  w.key("code");
  w.value(e.code);
  w.key("message");
  w.value(e.message);
  w.key("position");
  if (e.position >= 0) {
    // PostgreSQL counts characters from 1; count UTF-8 lead bytes.
    int64_t chars = 0;
    for (size_t i = 0; i < size_t(e.position) && i < sql_text.size(); ++i) {
      if ((uint8_t(sql_text[i]) & 0xC0) != 0x80) ++chars;
    }
    w.value(chars + 1);
  } else {
    w.null();
  }
  w.key("statement");
  if (statement >= 0) {
    w.value(int64_t(statement));
  } else {
    w.null();
  }
  w.end_object();
  w.key("results");
  w.raw(results_json.empty() ? "[]" : results_json);
  w.end_object();
  return serve::HttpResponse::json(w.str(), views::http_status_for(e.code));
}

void write_result_head(JsonWriter& w, const views::StatementResult& r) {
  w.key("command");
  w.value(r.command);
  if (r.has_rows) {
    w.key("columns");
    w.begin_array();
    for (const auto& c : r.columns) w.value(c);
    w.end_array();
    w.key("types");
    w.begin_array();
    for (const auto& t : r.types) w.value(t);
    w.end_array();
  }
  if (r.rows_affected >= 0) {
    w.key("rows_affected");
    w.value(r.rows_affected);
  }
  if (!r.offsets.empty()) {
    w.key("offsets");
    w.begin_array();
    for (const auto& o : r.offsets) {
      w.begin_object();
      w.key("topic");
      w.value(o.topic);
      w.key("partition");
      w.value(int64_t(o.partition));
      w.key("offset");
      w.value(o.offset);
      w.end_object();
    }
    w.end_array();
  }
}

void write_row(JsonWriter& w, const sql::Row& row) {
  w.begin_array();
  for (const auto& v : row) sql::write_json(w, v);
  w.end_array();
}

std::string results_json(const std::vector<views::StatementResult>& results) {
  JsonWriter w;
  w.begin_array();
  for (const auto& r : results) {
    w.begin_object();
    write_result_head(w, r);
    if (r.has_rows) {
      w.key("rows");
      w.begin_array();
      for (const auto& row : r.rows) write_row(w, row);
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();
  return w.str();
}

serve::HttpResponse bad_request(const std::string& message) {
  return sql_error(sql::SqlError{"08P01", message, -1}, -1, "", "");
}

serve::HttpResponse post_sql(views::Engine* engine, const serve::HttpRequest& req) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(req.body).get(doc)) return bad_request("the body must be a JSON object: {\"sql\": \"...\"}");
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) return bad_request("the body must be a JSON object: {\"sql\": \"...\"}");
  std::string_view text;
  if (obj["sql"].get_string().get(text)) return bad_request("\"sql\" (a string) is required");
  views::QueryOptions options;
  bool stream = false;
  for (auto [key, value] : obj) {
    if (key == "sql") continue;
    if (key == "stream") {
      if (value.get_bool().get(stream)) return bad_request("\"stream\" must be a boolean");
    } else if (key == "timeout_ms") {
      int64_t ms;
      if (value.get_int64().get(ms) || ms < 0 || ms > kTimeoutMsMax)
        return bad_request(fmt::format("\"timeout_ms\" must be an integer from 0 to {}", kTimeoutMsMax));
      options.timeout = std::chrono::milliseconds(ms);
    } else if (key == "wait_for") {
      simdjson::dom::array arr;
      if (value.get_array().get(arr)) return bad_request("\"wait_for\" must be an array");
      for (auto item : arr) {
        std::string_view topic;
        int64_t partition, offset;
        if (item["topic"].get_string().get(topic) || item["partition"].get_int64().get(partition) ||
            item["offset"].get_int64().get(offset) || partition < 0 || partition > INT32_MAX)
          return bad_request("each \"wait_for\" item needs \"topic\", \"partition\" and \"offset\"");
        options.wait_for.push_back({std::string(topic), int32_t(partition), offset});
      }
    } else {
      return bad_request(fmt::format("unknown field \"{}\"", std::string(key)));
    }
  }
  std::string sql_text(text);
  views::ExecuteResult result = engine->execute(sql_text, options);
  if (result.error) {
    return sql_error(*result.error, int(result.results.size()), results_json(result.results), sql_text);
  }
  if (stream) {
    std::string out;
    for (const auto& r : result.results) {
      JsonWriter head;
      head.begin_object();
      write_result_head(head, r);
      head.end_object();
      out += head.str();
      out += '\n';
      for (const auto& row : r.rows) {
        JsonWriter line;
        write_row(line, row);
        out += line.str();
        out += '\n';
      }
      out += fmt::format("{{\"end\":true,\"rows\":{}}}\n", r.rows.size());
    }
    return serve::HttpResponse{200, "application/x-ndjson", std::move(out)};
  }
  return serve::HttpResponse::json("{\"results\":" + results_json(result.results) + "}");
}

}  // namespace

void write_view_status(JsonWriter& w, const views::ViewStatus& st) {
  w.begin_object();
  w.key("name");
  w.value(st.name);
  w.key("state");
  w.value(st.state);
  w.key("progress");
  w.value(st.progress);
  w.key("rows");
  w.value(st.rows);
  w.key("events");
  w.value(st.events);
  w.key("events_since_start");
  w.value(st.events_since_start);
  w.key("decoded_ahead");
  w.value(st.decoded_ahead);
  w.key("summed_ahead");
  w.value(st.summed_ahead);
  w.key("events_per_second");
  w.value(st.events_per_second);
  w.key("lag_records");
  w.value(st.lag_records);
  w.key("lag_ms");
  w.value(st.lag_ms);
  w.key("errors");
  w.value(st.errors);
  w.key("recent_errors");
  w.begin_array();
  for (const auto& e : st.recent_errors) {
    w.begin_object();
    w.key("partition");
    w.value(int64_t(e.partition));
    w.key("offset");
    w.value(e.offset);
    w.key("reason");
    w.value(e.reason);
    w.end_object();
  }
  w.end_array();
  if (!st.failure.empty()) {
    w.key("failure");
    w.value(st.failure);
  }
  w.key("offsets");
  w.begin_array();
  for (int64_t o : st.offsets) w.value(o);
  w.end_array();
  w.end_object();
}

void register_sql_routes(serve::HttpServer& http, views::Engine* engine) {
  http.route("POST", "/v1/sql", [engine](const serve::HttpRequest& req) { return post_sql(engine, req); });
  http.route("GET", "/v1/views", [engine](const serve::HttpRequest&) {
    JsonWriter w;
    w.begin_object();
    w.key("views");
    w.begin_array();
    for (const auto& st : engine->view_statuses()) write_view_status(w, st);
    w.end_array();
    w.end_object();
    return serve::HttpResponse::json(w.str());
  });
  http.route("GET", "/v1/views/", [engine](const serve::HttpRequest& req) {
    std::string name = req.path.substr(std::string("/v1/views/").size());
    auto key = req.query.find("key");
    if (key == req.query.end()) {
      auto st = engine->view_status(name);
      if (!st) return sql_error({"42P01", fmt::format("materialized view \"{}\" does not exist", name), -1}, -1, "", "");
      JsonWriter w;
      write_view_status(w, *st);
      return serve::HttpResponse::json(w.str());
    }
    auto r = engine->lookup(name, key->second);
    if (!r.ok()) return sql_error(r.error(), -1, "", "");
    if (r.value().rows.empty())
      return serve::HttpResponse::error(404, "no_data", fmt::format("view \"{}\" has no row with key {}", name, key->second));
    JsonWriter w;
    w.begin_object();
    w.key("view");
    w.value(name);
    w.key("columns");
    w.begin_array();
    for (const auto& c : r.value().columns) w.value(c);
    w.end_array();
    w.key("row");
    write_row(w, r.value().rows[0]);
    w.key("object");
    w.begin_object();
    for (size_t i = 0; i < r.value().columns.size(); ++i) {
      w.key(r.value().columns[i]);
      sql::write_json(w, r.value().rows[0][i]);
    }
    w.end_object();
    w.end_object();
    return serve::HttpResponse::json(w.str());
  });
  http.route("POST", "/v1/views/", [engine](const serve::HttpRequest& req) {
    std::string rest = req.path.substr(std::string("/v1/views/").size());
    const std::string suffix = "/rebuild";
    if (rest.size() <= suffix.size() || rest.substr(rest.size() - suffix.size()) != suffix)
      return serve::HttpResponse::error(404, "not_found", "POST /v1/views/<name>/rebuild is the only action");
    std::string name = rest.substr(0, rest.size() - suffix.size());
    auto r = engine->rebuild(name);
    if (!r.ok()) return sql_error(r.error(), -1, "", "");
    JsonWriter w;
    w.begin_object();
    w.key("view");
    w.value(name);
    w.key("events");
    w.value(r.value().events);
    w.key("rows");
    w.value(r.value().rows);
    w.key("differences");
    w.value(r.value().differences);
    w.end_object();
    return serve::HttpResponse::json(w.str());
  });
}

}  // namespace evert::server
