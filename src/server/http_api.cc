#include "server/http_api.h"
#include "server/sql_api.h"

#include <fmt/format.h>

#include "base/clock.h"
#include "base/json.h"

namespace evert::server {
namespace {

struct PartitionLag {
  std::string topic;
  int32_t partition;
  int64_t committed;
  int64_t end;  // -1 when the partition is gone
  int64_t lag() const { return end >= 0 && committed >= 0 ? std::max<int64_t>(0, end - committed) : 0; }
};

std::vector<PartitionLag> lags_of(const ApiSources& s, const std::string& group) {
  std::vector<PartitionLag> out;
  for (const auto& f : s.groups->fetch_offsets(group, std::nullopt)) {
    auto p = s.log->partition(f.topic, f.partition);
    int64_t end = p ? p->high_watermark() : -1;
    out.push_back(PartitionLag{f.topic, f.partition, f.offset, end});
  }
  return out;
}

void write_group(JsonWriter& w, const ApiSources& s, const kafka::GroupDescription& d) {
  w.begin_object();
  w.key("group_id");
  w.value(d.group_id);
  w.key("state");
  w.value(d.state);
  w.key("protocol_type");
  w.value(d.protocol_type);
  w.key("protocol");
  w.value(d.protocol);
  w.key("generation");
  w.value(d.generation_id);
  w.key("members");
  w.begin_array();
  for (const auto& m : d.members) {
    w.begin_object();
    w.key("member_id");
    w.value(m.member_id);
    w.key("client_id");
    w.value(m.client_id);
    w.key("client_host");
    w.value(m.client_host);
    w.end_object();
  }
  w.end_array();
  int64_t total = 0;
  w.key("offsets");
  w.begin_array();
  for (const auto& l : lags_of(s, d.group_id)) {
    int64_t lag = l.lag();
    total += lag;
    w.begin_object();
    w.key("topic");
    w.value(l.topic);
    w.key("partition");
    w.value(l.partition);
    w.key("committed_offset");
    w.value(l.committed);
    w.key("log_end_offset");
    w.value(l.end);
    w.key("lag");
    w.value(lag);
    w.end_object();
  }
  w.end_array();
  w.key("total_lag");
  w.value(total);
  w.end_object();
}

serve::HttpResponse status(const ApiSources& s) {
  JsonWriter w;
  w.begin_object();
  w.key("version");
  w.value("0.1.0");
  w.key("uptime_ms");
  w.value(Clock::system().now_ms() - s.started_ms);
  w.key("data_dir");
  w.value(s.data_dir);
  w.key("listeners");
  w.begin_object();
  w.key("kafka");
  w.value(int64_t(s.kafka_port));
  w.key("http");
  w.value(int64_t(s.http_port));
  w.end_object();
  w.key("kafka");
  w.begin_object();
  w.key("requests");
  w.value(uint64_t(s.broker->stats().requests.load()));
  w.key("bad_requests");
  w.value(uint64_t(s.broker->stats().bad_requests.load()));
  w.key("connections_open");
  w.value(int64_t(s.net->stats().connections_open.load()));
  w.end_object();
  if (s.engine) {
    w.key("views");
    w.begin_array();
    for (const auto& st : s.engine->view_statuses()) write_view_status(w, st);
    w.end_array();
  }
  w.key("topics");
  w.begin_array();
  for (const auto& name : s.log->topic_names()) {
    auto info = s.log->describe_topic(name);
    if (!info) continue;
    w.begin_object();
    w.key("name");
    w.value(name);
    w.key("partitions");
    w.begin_array();
    for (int32_t i = 0; i < info->partitions; ++i) {
      auto p = s.log->partition(name, i);
      if (!p) continue;
      w.begin_object();
      w.key("partition");
      w.value(i);
      w.key("log_start_offset");
      w.value(p->log_start_offset());
      w.key("high_watermark");
      w.value(p->high_watermark());
      w.key("durable_offset");
      w.value(p->durable_offset());
      w.key("size_bytes");
      w.value(p->size_bytes());
      w.key("segments");
      w.value(uint64_t(p->segment_count()));
      w.end_object();
    }
    w.end_array();
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return serve::HttpResponse::json(w.str());
}

std::string prometheus_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

serve::HttpResponse metrics(const ApiSources& s) {
  std::string out;
  out += "# TYPE evert_kafka_requests_total counter\n";
  out += fmt::format("evert_kafka_requests_total {}\n", s.broker->stats().requests.load());
  out += "# TYPE evert_kafka_bad_requests_total counter\n";
  out += fmt::format("evert_kafka_bad_requests_total {}\n", s.broker->stats().bad_requests.load());
  out += "# TYPE evert_kafka_connections_open gauge\n";
  out += fmt::format("evert_kafka_connections_open {}\n", s.net->stats().connections_open.load());
  out += "# TYPE evert_partition_high_watermark gauge\n";
  std::string sizes = "# TYPE evert_partition_size_bytes gauge\n";
  for (const auto& name : s.log->topic_names()) {
    auto info = s.log->describe_topic(name);
    if (!info) continue;
    for (int32_t i = 0; i < info->partitions; ++i) {
      auto p = s.log->partition(name, i);
      if (!p) continue;
      out += fmt::format("evert_partition_high_watermark{{topic=\"{}\",partition=\"{}\"}} {}\n", prometheus_label(name),
                         i, p->high_watermark());
      sizes += fmt::format("evert_partition_size_bytes{{topic=\"{}\",partition=\"{}\"}} {}\n", prometheus_label(name), i,
                           p->size_bytes());
    }
  }
  out += sizes;
  out += "# TYPE evert_group_lag gauge\n";
  for (const auto& g : s.groups->list()) {
    for (const auto& l : lags_of(s, g.group_id)) {
      out += fmt::format("evert_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {}\n",
                         prometheus_label(g.group_id), prometheus_label(l.topic), l.partition, l.lag());
    }
  }
  return serve::HttpResponse{200, "text/plain; version=0.0.4", out};
}

}  // namespace

void register_status_routes(serve::HttpServer& http, const ApiSources* s) {
  http.route("GET", "/v1/status", [s](const serve::HttpRequest&) { return status(*s); });
  http.route("GET", "/metrics", [s](const serve::HttpRequest&) { return metrics(*s); });
  http.route("GET", "/v1/groups", [s](const serve::HttpRequest&) {
    JsonWriter w;
    w.begin_object();
    w.key("groups");
    w.begin_array();
    for (const auto& g : s->groups->list()) write_group(w, *s, s->groups->describe(g.group_id));
    w.end_array();
    w.end_object();
    return serve::HttpResponse::json(w.str());
  });
  http.route("GET", "/v1/groups/", [s](const serve::HttpRequest& req) {
    std::string id = req.path.substr(std::string("/v1/groups/").size());
    auto d = s->groups->describe(id);
    if (d.state == "Dead") return serve::HttpResponse::error(404, "not_found", "no group '" + id + "'");
    JsonWriter w;
    write_group(w, *s, d);
    return serve::HttpResponse::json(w.str());
  });
}

}  // namespace evert::server
