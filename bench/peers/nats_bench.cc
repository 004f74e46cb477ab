// nats_bench: the NATS JetStream side of the side-by-side benchmark
// (bench/peers/run.py, docs/BENCHMARKS.md "Side by side"). Debian's C client
// (libnats 3.4), one connection.
//
//   nats_bench append --port P --events N [--window W] [--stream S]
//       Creates stream S (subject S, file storage, one replica) and publishes
//       events 0..N-1 with js_PublishAsync, at most W unacknowledged; the
//       time ends when the last acknowledgement has arrived.
//   nats_bench read   --port P --events N [--stream S]
//       An ordered push consumer (no acks, flow control) from the first
//       message; the time ends at the N-th message.
//   nats_bench e2e    --port P --events N --rate R [--stream S]
//       Creates stream S, subscribes with an ordered consumer for new
//       messages, then publishes asynchronously at R/s; latency = receive
//       time - send time carried in the value.
#include <nats/nats.h>

#include <atomic>
#include <cstring>
#include <string>

#include "peers_common.h"

using peers::die;
using peers::now_ns;

namespace {

void check(natsStatus s, const char* what) {
  if (s != NATS_OK) die(std::string("nats ") + what + ": " + natsStatus_GetText(s) + " " + nats_GetLastError(nullptr));
}

struct Acks {
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> failed{0};
};

void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* a = static_cast<Acks*>(closure);
  if (pa != nullptr) {
    ++a->ok;
  } else {
    if (a->failed++ == 0 && pae != nullptr)
      std::fprintf(stderr, "publish failed: %s %s\n", natsStatus_GetText(pae->Err), pae->ErrText ? pae->ErrText : "");
  }
  natsMsg_Destroy(msg);
}

struct Nats {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  Nats(int port, Acks* acks, int64_t window) {
    natsOptions* o = nullptr;
    check(natsOptions_Create(&o), "options");
    std::string url = "nats://127.0.0.1:" + std::to_string(port);
    check(natsOptions_SetURL(o, url.c_str()), "url");
    check(natsConnection_Connect(&nc, o), "connect");
    natsOptions_Destroy(o);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 30'000;
    if (acks != nullptr) {
      jo.PublishAsync.MaxPending = window;
      jo.PublishAsync.AckHandler = on_ack;
      jo.PublishAsync.AckHandlerClosure = acks;
      jo.PublishAsync.StallWait = 30'000;
    }
    check(natsConnection_JetStream(&js, nc, &jo), "jetstream");
  }
  ~Nats() {
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
  void add_stream(const std::string& name) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[] = {name.c_str()};
    cfg.Name = name.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsErrCode code = jsErrCode(0);
    natsStatus s = js_AddStream(nullptr, js, &cfg, nullptr, &code);
    if (s != NATS_OK) die("add stream " + name + ": " + natsStatus_GetText(s) + " code " + std::to_string(int(code)));
  }
  void complete() {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120'000;
    check(js_PublishAsyncComplete(js, &po), "publish complete");
  }
};

int run_append(int port, const peers::Flags& f) {
  const int64_t events = f.num("events", 1'000'000);
  const std::string stream = f.str("stream", "events");
  Acks acks;
  Nats n(port, &acks, f.num("window", 2000));
  n.add_stream(stream);
  char ev[peers::kEventBytes];
  const uint64_t start = now_ns();
  for (int64_t i = 0; i < events; ++i) {
    peers::event_json(i, ev);
    check(js_PublishAsync(n.js, stream.c_str(), ev, peers::kEventBytes, nullptr), "publish");
  }
  n.complete();
  const double s = peers::seconds_between(start, now_ns());
  if (acks.failed > 0 || acks.ok != events)
    die("acks: " + std::to_string(acks.ok.load()) + " ok, " + std::to_string(acks.failed.load()) + " failed");
  std::printf("result events=%lld seconds=%.4f rate=%.1f mb_per_s=%.2f\n", (long long)events, s, double(events) / s,
              double(events) * peers::kEventBytes / s / 1e6);
  return 0;
}

jsSubOptions ordered(jsDeliverPolicy from) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Ordered = true;
  so.Config.DeliverPolicy = from;
  return so;
}

int run_read(int port, const peers::Flags& f) {
  const int64_t events = f.num("events", 1'000'000);
  const std::string stream = f.str("stream", "events");
  Nats n(port, nullptr, 0);
  jsSubOptions so = ordered(js_DeliverAll);
  natsSubscription* sub = nullptr;
  const uint64_t start = now_ns();
  check(js_SubscribeSync(&sub, n.js, stream.c_str(), nullptr, &so, nullptr), "subscribe");
  check(natsSubscription_SetPendingLimits(sub, 4'000'000, 1 << 30), "pending limits");
  int64_t got = 0, bytes = 0;
  while (got < events) {
    natsMsg* m = nullptr;
    check(natsSubscription_NextMsg(&m, sub, 30'000), "next message");
    bytes += natsMsg_GetDataLength(m);
    ++got;
    natsMsg_Destroy(m);
  }
  const double s = peers::seconds_between(start, now_ns());
  natsSubscription_Destroy(sub);
  std::printf("result events=%lld seconds=%.4f rate=%.1f mb_per_s=%.2f\n", (long long)got, s, double(got) / s,
              double(bytes) / s / 1e6);
  return 0;
}

struct E2e {
  peers::Latencies lat;
  std::atomic<int64_t> received{0};
};

void on_e2e(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  uint64_t now = now_ns();
  auto* e = static_cast<E2e*>(closure);
  if (natsMsg_GetDataLength(m) >= 8) {
    uint64_t sent;
    std::memcpy(&sent, natsMsg_GetData(m), sizeof sent);
    e->lat.add(now - sent);  // only this callback's thread touches lat
    ++e->received;
  }
  natsMsg_Destroy(m);
}

int run_e2e(int port, const peers::Flags& f) {
  const int64_t events = f.num("events", 100'000);
  const int64_t rate = f.num("rate", 10'000);
  const std::string stream = f.str("stream", "e2e");
  Acks acks;
  Nats n(port, &acks, 100'000);
  n.add_stream(stream);
  E2e e;
  e.lat.reserve(size_t(events));
  jsSubOptions so = ordered(js_DeliverNew);
  natsSubscription* sub = nullptr;
  check(js_Subscribe(&sub, n.js, stream.c_str(), on_e2e, &e, nullptr, &so, nullptr), "subscribe");
  check(natsSubscription_SetPendingLimits(sub, 4'000'000, 1 << 30), "pending limits");
  char ev[peers::kEventBytes];
  peers::event_json(0, ev);
  const uint64_t start = now_ns();
  for (int64_t i = 0; i < events; ++i) {
    const uint64_t due = start + uint64_t(double(i) * 1e9 / double(rate));
    while (now_ns() < due) peers::sleep_until_ns(due);
    uint64_t sent = now_ns();
    std::memcpy(ev, &sent, sizeof sent);
    check(js_PublishAsync(n.js, stream.c_str(), ev, peers::kEventBytes, nullptr), "publish");
  }
  n.complete();
  const uint64_t deadline = now_ns() + 30'000'000'000ull;
  while (e.received < events && now_ns() < deadline) peers::sleep_until_ns(now_ns() + 1'000'000);
  if (e.received < events) die("e2e: received " + std::to_string(e.received.load()) + " of " + std::to_string(events));
  const double s = peers::seconds_between(start, now_ns());
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  std::printf("result events=%lld seconds=%.4f rate=%.1f %s\n", (long long)events, s, double(events) / s,
              e.lat.summary_ms().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: nats_bench append|read|e2e --port P [...]\n");
    return 2;
  }
  const std::string mode = argv[1];
  peers::Flags f(argc, argv, 2, {"port", "events", "window", "stream", "rate"});
  const int port = int(f.num("port", 4222));
  int rc = 2;
  if (mode == "append") rc = run_append(port, f);
  else if (mode == "read") rc = run_read(port, f);
  else if (mode == "e2e") rc = run_e2e(port, f);
  else std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  nats_Close();
  return rc;
}
