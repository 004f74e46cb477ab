// agg_bench: the evert and PostgreSQL sides of the aggregate workload of the
// side-by-side benchmark (bench/peers/run.py; Redis's side is
// redis_bench append-agg / point-reads).
//
//   agg_bench evert-append --bootstrap H:P --http-port P --events N [--acks all|1]
//                          [--batch-bytes B] [--view totals] [--topic events]
//       Produces events 0..N-1 (the 100-byte JSON of peers_common.h) with
//       librdkafka to the topic behind an evert table, then polls
//       GET /v1/views/<view> until the view has applied all N events. The
//       time runs from the first send to the moment the view is caught up:
//       appended, acknowledged and aggregated. --view none: no view, the
//       time ends at the last acknowledgement (to load a topic for a backfill).
//   agg_bench http-reads   --http-port P --reads K [--events N] [--view totals] [--seed X]
//       K GET /v1/views/<view>?key=<customer of a random event below N> on one keep-alive connection,
//       one at a time; every answer must be 200.
//   agg_bench pg-reads     --pg-port P --reads K [--events N] [--seed X]
//       K executions of the prepared SELECT n, total FROM agg WHERE
//       customer = $1 (libpq), one at a time; every answer must be a row.
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>

#include "peers_common.h"

using peers::die;
using peers::now_ns;

namespace {

// ------------------------------------------------------------ HTTP client

// A minimal HTTP/1.1 keep-alive client for evert's own API on loopback:
// GET only, Content-Length bodies only (what evert's server sends).
class Http {
 public:
  explicit Http(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("http connect failed");
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Http() { close(fd_); }
  Http(const Http&) = delete;
  Http& operator=(const Http&) = delete;

  // Returns the status code; the body goes to *body.
  int get(const std::string& target, std::string* body) {
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (size_t off = 0; off < req.size();) {
      ssize_t n = write(fd_, req.data() + off, req.size() - off);
      if (n <= 0) die("http write failed");
      off += size_t(n);
    }
    size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) fill();
    int status = std::atoi(buf_.c_str() + 9);  // "HTTP/1.1 200"
    size_t body_len = content_length(buf_.substr(0, head_end));
    while (buf_.size() < head_end + 4 + body_len) fill();
    body->assign(buf_, head_end + 4, body_len);
    buf_.erase(0, head_end + 4 + body_len);
    return status;
  }

 private:
  void fill() {
    char tmp[65536];
    ssize_t n = read(fd_, tmp, sizeof tmp);
    if (n <= 0) die("http read failed");
    buf_.append(tmp, size_t(n));
  }
  static size_t content_length(const std::string& head) {
    for (const char* name : {"Content-Length: ", "content-length: "}) {
      size_t p = head.find(name);
      if (p != std::string::npos) return size_t(std::stoull(head.substr(p + std::strlen(name))));
    }
    die("http answer without Content-Length");
  }
  int fd_ = -1;
  std::string buf_;
};

int64_t json_int(const std::string& body, const std::string& key) {
  size_t p = body.find("\"" + key + "\":");
  if (p == std::string::npos) return -1;
  return std::stoll(body.substr(p + key.size() + 3));
}

// ------------------------------------------------------------ evert append

struct Delivery {
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> failed{0};
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* d = static_cast<Delivery*>(opaque);
  if (m->err) {
    if (d->failed++ == 0) std::fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
  } else {
    ++d->ok;
  }
}

rd_kafka_t* make_producer(const peers::Flags& f, Delivery* d) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  const std::string acks = f.str("acks", "all") == "all" ? "-1" : f.str("acks", "all");
  const std::pair<std::string, std::string> props[] = {
      {"bootstrap.servers", f.str("bootstrap", "127.0.0.1:9092")},
      {"acks", acks},
      {"linger.ms", "5"},
      {"batch.size", std::to_string(f.num("batch-bytes", 1'000'000))},
      {"batch.num.messages", "1000000"},
      {"queue.buffering.max.messages", "2000000"},
      {"message.timeout.ms", "60000"},
  };
  for (const auto& [k, v] : props)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) die(err);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, d);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) die(err);
  return rk;
}

int run_evert_append(const peers::Flags& f) {
  const int64_t events = f.num("events", 1'000'000);
  const std::string topic_name = f.str("topic", "events");
  const std::string view = f.str("view", "totals");
  Delivery d;
  rd_kafka_t* rk = make_producer(f, &d);
  rd_kafka_topic_t* topic = rd_kafka_topic_new(rk, topic_name.c_str(), nullptr);
  char ev[peers::kEventBytes];
  const uint64_t start = now_ns();
  for (int64_t i = 0; i < events; ++i) {
    peers::event_json(i, ev);
    while (rd_kafka_produce(topic, 0, RD_KAFKA_MSG_F_COPY, ev, peers::kEventBytes, nullptr, 0, nullptr) != 0) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce failed");
      rd_kafka_poll(rk, 1);
    }
    if (i % 1024 == 0) rd_kafka_poll(rk, 0);
  }
  while (rd_kafka_outq_len(rk) > 0) rd_kafka_poll(rk, 10);
  const uint64_t acked_ns = now_ns();
  if (d.failed > 0 || d.ok != events) die("deliveries: " + std::to_string(d.ok.load()) + " ok");
  Http http(int(f.num("http-port", 8080)));
  std::string body;
  for (; view != "none";) {
    if (http.get("/v1/views/" + view, &body) != 200) die("view status: " + body);
    if (json_int(body, "events") >= events && json_int(body, "lag_records") == 0) break;
    if (now_ns() - acked_ns > 300'000'000'000ull) die("view not caught up after 300 s: " + body);
    peers::sleep_until_ns(now_ns() + 200'000);
  }
  const uint64_t end = now_ns();
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(rk);
  const double s = peers::seconds_between(start, end);
  std::printf("result events=%lld seconds=%.4f rate=%.1f acked_seconds=%.4f view_lag_after_ack_ms=%.1f\n",
              (long long)events, s, double(events) / s, peers::seconds_between(start, acked_ns),
              double(end - acked_ns) / 1e6);
  return 0;
}

// ------------------------------------------------------------ point reads

int run_http_reads(const peers::Flags& f) {
  const int64_t reads = f.num("reads", 100'000);
  // Keys are those of random events among the first key_events (all
  // 100,000 customers once key_events >= 100,000).
  const int64_t key_events = std::max<int64_t>(1, f.num("events", peers::kCustomerCount));
  const std::string view = f.str("view", "totals");
  std::mt19937_64 rng(uint64_t(f.num("seed", 42)));
  Http http(int(f.num("http-port", 8080)));
  peers::Latencies lat;
  lat.reserve(size_t(reads));
  std::string body;
  const uint64_t start = now_ns();
  for (int64_t k = 0; k < reads; ++k) {
    char target[64];
    std::snprintf(target, sizeof target, "/v1/views/%s?key=c%06lld", view.c_str(),
                  (long long)peers::customer_of(int64_t(rng() % uint64_t(key_events))));
    uint64_t t0 = now_ns();
    int status = http.get(target, &body);
    lat.add(now_ns() - t0);
    if (status != 200) die(std::string(target) + ": " + std::to_string(status) + " " + body);
  }
  const double s = peers::seconds_between(start, now_ns());
  std::printf("result reads=%lld seconds=%.4f rate=%.1f %s\n", (long long)reads, s, double(reads) / s,
              lat.summary_ms().c_str());
  return 0;
}

int run_pg_reads(const peers::Flags& f) {
  const int64_t reads = f.num("reads", 100'000);
  // Keys are those of random events among the first key_events (all
  // 100,000 customers once key_events >= 100,000).
  const int64_t key_events = std::max<int64_t>(1, f.num("events", peers::kCustomerCount));
  std::mt19937_64 rng(uint64_t(f.num("seed", 42)));
  std::string conninfo = "host=127.0.0.1 user=postgres dbname=postgres port=" + std::to_string(f.num("pg-port", 5432));
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) die(std::string("pg connect: ") + PQerrorMessage(c));
  PGresult* prep = PQprepare(c, "get", "SELECT n, total FROM agg WHERE customer = $1", 1, nullptr);
  if (PQresultStatus(prep) != PGRES_COMMAND_OK) die(std::string("pg prepare: ") + PQerrorMessage(c));
  PQclear(prep);
  peers::Latencies lat;
  lat.reserve(size_t(reads));
  const uint64_t start = now_ns();
  for (int64_t k = 0; k < reads; ++k) {
    char key[16];
    std::snprintf(key, sizeof key, "c%06lld", (long long)peers::customer_of(int64_t(rng() % uint64_t(key_events))));
    const char* params[] = {key};
    uint64_t t0 = now_ns();
    PGresult* r = PQexecPrepared(c, "get", 1, params, nullptr, nullptr, 0);
    lat.add(now_ns() - t0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) die(std::string("pg read ") + key + ": no row");
    PQclear(r);
  }
  const double s = peers::seconds_between(start, now_ns());
  PQfinish(c);
  std::printf("result reads=%lld seconds=%.4f rate=%.1f %s\n", (long long)reads, s, double(reads) / s,
              lat.summary_ms().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: agg_bench evert-append|http-reads|pg-reads [...]\n");
    return 2;
  }
  const std::string mode = argv[1];
  peers::Flags f(argc, argv, 2,
                 {"bootstrap", "http-port", "pg-port", "events", "acks", "batch-bytes", "view", "topic", "reads", "seed"});
  if (mode == "evert-append") return run_evert_append(f);
  if (mode == "http-reads") return run_http_reads(f);
  if (mode == "pg-reads") return run_pg_reads(f);
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
