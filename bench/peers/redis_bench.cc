// redis_bench: the Redis Streams side of the side-by-side benchmark
// (bench/peers/run.py, docs/BENCHMARKS.md "Side by side"). hiredis, one
// connection per role, no scripting.
//
//   redis_bench append      --port P --events N [--batch B] [--stream S]
//       XADD S * v <event> for events 0..N-1, B commands per pipeline, two
//       pipelines in flight (the next is sent before the replies of the last
//       are read). With appendfsync always, Redis fsyncs the AOF once per
//       event-loop pass, before it answers: once per pipeline.
//   redis_bench append-agg  --port P --events N [--batch B]
//       The same, plus the per-key aggregate: per event HINCRBY agg:<customer>
//       n 1 and HINCRBY agg:<customer> qty <qty>, each pipeline one MULTI/EXEC
//       so stream and aggregate change together. The client supplies the
//       parsed customer and qty (Redis does not parse JSON).
//   redis_bench read        --port P --events N [--batch B] [--stream S]
//       XRANGE from the start, B entries per call, until N entries are read.
//   redis_bench e2e         --port P --events N --rate R [--stream S]
//       A producer connection sends XADDs at R/s (what is due is sent as one
//       pipeline), a consumer connection in another thread loops XREAD BLOCK;
//       latency = receive time - send time carried in the value.
//   redis_bench point-reads --port P --reads K [--events N] [--seed X]
//       K HMGETs of agg:<customer of a random event below N> n qty, one at a time (request,
//       reply, next), each checked to be present.
#include <hiredis/hiredis.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "peers_common.h"

using peers::die;
using peers::now_ns;

namespace {

// A connection that dies on any error: a benchmark figure from a half-failed
// run is worse than none.
struct Redis {
  redisContext* c = nullptr;
  explicit Redis(int port) {
    struct timeval tv{10, 0};
    c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == nullptr || c->err) die(std::string("redis connect: ") + (c ? c->errstr : "out of memory"));
    struct timeval rtv{60, 0};
    redisSetTimeout(c, rtv);
  }
  ~Redis() { redisFree(c); }
  Redis(const Redis&) = delete;
  Redis& operator=(const Redis&) = delete;

  void flush() {
    int done = 0;
    while (!done)
      if (redisBufferWrite(c, &done) != REDIS_OK) die(std::string("redis write: ") + c->errstr);
  }
  // Reads one reply; dies on a connection or command error.
  redisReply* reply() {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK || r == nullptr) die(std::string("redis read: ") + c->errstr);
    auto* rr = static_cast<redisReply*>(r);
    if (rr->type == REDIS_REPLY_ERROR) die(std::string("redis error: ") + rr->str);
    return rr;
  }
  void discard_replies(int64_t n) {
    for (int64_t i = 0; i < n; ++i) freeReplyObject(reply());
  }
};

// Appends the commands of events [from, to) to the output buffer; returns
// how many replies they will produce.
int64_t queue_batch(Redis& r, const std::string& stream, int64_t from, int64_t to, bool with_agg) {
  char ev[peers::kEventBytes];
  int64_t replies = 0;
  if (with_agg) {
    redisAppendCommand(r.c, "MULTI");
    ++replies;
  }
  for (int64_t i = from; i < to; ++i) {
    peers::event_json(i, ev);
    redisAppendCommand(r.c, "XADD %s * v %b", stream.c_str(), ev, size_t(peers::kEventBytes));
    ++replies;
    if (with_agg) {
      char key[24];
      std::snprintf(key, sizeof key, "agg:c%06lld", (long long)peers::customer_of(i));
      redisAppendCommand(r.c, "HINCRBY %s n 1", key);
      redisAppendCommand(r.c, "HINCRBY %s qty %lld", key, (long long)peers::qty_of(i));
      replies += 2;
    }
  }
  if (with_agg) {
    redisAppendCommand(r.c, "EXEC");
    ++replies;
  }
  return replies;
}

int run_append(int port, const peers::Flags& f, bool with_agg) {
  const int64_t events = f.num("events", 1'000'000);
  const int64_t batch = f.num("batch", 1000);
  const std::string stream = f.str("stream", "events");
  Redis r(port);
  const uint64_t start = now_ns();
  int64_t pending_replies = 0;
  for (int64_t from = 0; from < events; from += batch) {
    int64_t replies = queue_batch(r, stream, from, std::min(events, from + batch), with_agg);
    r.flush();
    r.discard_replies(pending_replies);  // the previous pipeline's
    pending_replies = replies;
  }
  r.discard_replies(pending_replies);
  const double s = peers::seconds_between(start, now_ns());
  std::printf("result events=%lld seconds=%.4f rate=%.1f mb_per_s=%.2f\n", (long long)events, s, double(events) / s,
              double(events) * peers::kEventBytes / s / 1e6);
  return 0;
}

int run_read(int port, const peers::Flags& f) {
  const int64_t events = f.num("events", 1'000'000);
  const int64_t batch = f.num("batch", 10'000);
  const std::string stream = f.str("stream", "events");
  Redis r(port);
  std::string from = "-";
  int64_t got = 0, bytes = 0;
  const uint64_t start = now_ns();
  while (got < events) {
    auto* rep = static_cast<redisReply*>(
        redisCommand(r.c, "XRANGE %s %s + COUNT %lld", stream.c_str(), from.c_str(), (long long)batch));
    if (rep == nullptr || rep->type != REDIS_REPLY_ARRAY) die("XRANGE failed");
    if (rep->elements == 0) die("stream ended after " + std::to_string(got) + " entries");
    for (size_t k = 0; k < rep->elements; ++k) {
      redisReply* entry = rep->element[k];
      redisReply* fields = entry->element[1];
      bytes += int64_t(fields->element[1]->len);
      ++got;
    }
    from = std::string("(") + rep->element[rep->elements - 1]->element[0]->str;
    freeReplyObject(rep);
  }
  const double s = peers::seconds_between(start, now_ns());
  std::printf("result events=%lld seconds=%.4f rate=%.1f mb_per_s=%.2f\n", (long long)got, s, double(got) / s,
              double(bytes) / s / 1e6);
  return 0;
}

int run_e2e(int port, const peers::Flags& f) {
  const int64_t events = f.num("events", 100'000);
  const int64_t rate = f.num("rate", 10'000);
  const std::string stream = f.str("stream", "e2e");
  std::atomic<bool> producer_done{false};
  peers::Latencies lat;
  lat.reserve(size_t(events));
  // The consumer starts first and reads from the start of a fresh stream.
  std::thread consumer([&] {
    Redis r(port);
    std::string last = "0-0";
    while (int64_t(lat.ns.size()) < events) {
      auto* rep = static_cast<redisReply*>(
          redisCommand(r.c, "XREAD COUNT 10000 BLOCK 1000 STREAMS %s %s", stream.c_str(), last.c_str()));
      if (rep == nullptr) die("XREAD failed");
      uint64_t now = now_ns();
      if (rep->type == REDIS_REPLY_NIL) {
        freeReplyObject(rep);
        if (producer_done) die("e2e: producer finished but records are missing");
        continue;
      }
      redisReply* entries = rep->element[0]->element[1];
      for (size_t k = 0; k < entries->elements; ++k) {
        redisReply* value = entries->element[k]->element[1]->element[1];
        uint64_t sent;
        std::memcpy(&sent, value->str, sizeof sent);
        lat.add(now - sent);
      }
      last = entries->element[entries->elements - 1]->element[0]->str;
      freeReplyObject(rep);
    }
  });
  Redis r(port);
  char ev[peers::kEventBytes];
  peers::event_json(0, ev);
  const uint64_t start = now_ns();
  for (int64_t i = 0; i < events;) {
    const uint64_t now = now_ns();
    int64_t queued = 0;
    for (; i < events && start + uint64_t(double(i) * 1e9 / double(rate)) <= now && queued < 10'000; ++i, ++queued) {
      uint64_t sent = now_ns();
      std::memcpy(ev, &sent, sizeof sent);
      redisAppendCommand(r.c, "XADD %s * v %b", stream.c_str(), ev, size_t(peers::kEventBytes));
    }
    if (queued == 0) {
      peers::sleep_until_ns(start + uint64_t(double(i) * 1e9 / double(rate)));
      continue;
    }
    r.flush();
    r.discard_replies(queued);
  }
  producer_done = true;
  consumer.join();
  const double s = peers::seconds_between(start, now_ns());
  std::printf("result events=%lld seconds=%.4f rate=%.1f %s\n", (long long)events, s, double(events) / s,
              lat.summary_ms().c_str());
  return 0;
}

int run_point_reads(int port, const peers::Flags& f) {
  const int64_t reads = f.num("reads", 100'000);
  // Keys are those of random events among the first key_events (all
  // 100,000 customers once key_events >= 100,000).
  const int64_t key_events = std::max<int64_t>(1, f.num("events", peers::kCustomerCount));
  std::mt19937_64 rng(uint64_t(f.num("seed", 42)));
  Redis r(port);
  peers::Latencies lat;
  lat.reserve(size_t(reads));
  const uint64_t start = now_ns();
  for (int64_t k = 0; k < reads; ++k) {
    char key[24];
    std::snprintf(key, sizeof key, "agg:c%06lld", (long long)peers::customer_of(int64_t(rng() % uint64_t(key_events))));
    uint64_t t0 = now_ns();
    auto* rep = static_cast<redisReply*>(redisCommand(r.c, "HMGET %s n qty", key));
    lat.add(now_ns() - t0);
    if (rep == nullptr || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
      die(std::string("HMGET ") + key + ": no row");
    freeReplyObject(rep);
  }
  const double s = peers::seconds_between(start, now_ns());
  std::printf("result reads=%lld seconds=%.4f rate=%.1f %s\n", (long long)reads, s, double(reads) / s,
              lat.summary_ms().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: redis_bench append|append-agg|read|e2e|point-reads --port P [...]\n");
    return 2;
  }
  const std::string mode = argv[1];
  peers::Flags f(argc, argv, 2, {"port", "events", "batch", "stream", "rate", "reads", "seed"});
  const int port = int(f.num("port", 6379));
  if (mode == "append") return run_append(port, f, false);
  if (mode == "append-agg") return run_append(port, f, true);
  if (mode == "read") return run_read(port, f);
  if (mode == "e2e") return run_e2e(port, f);
  if (mode == "point-reads") return run_point_reads(port, f);
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
