// The views benchmark (docs/BENCHMARKS.md): backfill of a GROUP BY
// SUM/COUNT view over N pre-written 100-byte JSON events, steady-state
// maintenance while a producer appends, and freshness (append -> visible in
// the view) at a fixed rate. Everything runs in-process on the real log and
// RocksDB in a temporary directory. The view runs on one thread; each
// backfill is measured twice, with that thread alone (one core) and with
// the source decoded ahead on other threads (DecodeAhead, the server's
// default: as many as there are cores).
//
//   view_bench [--events N] [--runs R] [--freshness-rate R/s] [--json FILE] [--backfill-only]
//              [--decode-threads N] [--ahead-only] [--partial-records N (-1: no partial aggregation)]
//              [--partial-window-ms MS] [--partial-unit N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "log/log_manager.h"
#include "log/partition.h"
#include "log/record_batch.h"
#include "testing/temp_dir.h"
#include "views/engine.h"

using namespace evert;
using Clock_ = std::chrono::steady_clock;

namespace {

// Event i: exactly the bytes bench/views/pg_baseline.py loads into PostgreSQL.
std::string event(int64_t i) {
  std::string core = fmt::format("{{\"id\":{},\"customer\":\"c{:06d}\",\"product\":{},\"qty\":{},\"ts\":{},\"pad\":\"", i,
                                 (i * 7919) % 100000, i % 1000, i % 10 + 1, 1700000000000 + i);
  std::string out = core + std::string(100 - core.size() - 2, 'x') + "\"}";
  return out;
}

double seconds(Clock_::duration d) { return std::chrono::duration<double>(d).count(); }

struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

void check(const views::ExecuteResult& r, const char* what) {
  if (r.error) {
    std::fprintf(stderr, "%s: %s %s\n", what, r.error->code.c_str(), r.error->message.c_str());
    std::exit(1);
  }
}

std::unique_ptr<log::LogManager> open_log(const std::string& dir) {
  log::LogOptions lo;
  lo.data_dir = dir + "/log";
  lo.flush.kind = log::FlushPolicy::Kind::kNone;
  log::OpenReport rep;
  auto log = log::LogManager::open(lo, &rep);
  if (!log) {
    std::fprintf(stderr, "log: %s\n", log.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(log).value();
}

// Appends events [from, to) in batches of `batch` records; returns the last offset.
int64_t produce(log::Partition& p, int64_t from, int64_t to, int batch) {
  int64_t last = -1;
  for (int64_t i = from; i < to;) {
    log::BatchBuilder bb(1700000000000);
    int64_t end = std::min(to, i + batch);
    for (; i < end; ++i) {
      std::string e = event(i);
      bb.add(std::nullopt, e, 1700000000000 + i);
    }
    std::string b = bb.finish();
    auto r = p.append(MutableByteSpan(reinterpret_cast<uint8_t*>(b.data()), b.size()));
    if (!r) {
      std::fprintf(stderr, "append: %s\n", r.status().to_string().c_str());
      std::exit(1);
    }
    last = r->last_offset;
  }
  return last;
}

const char* kTable =
    "CREATE TABLE events (id bigint, customer text, product bigint, qty int, ts bigint) "
    "WITH (topic = 'events', partitions = 1)";
const char* kView = "CREATE MATERIALIZED VIEW totals AS SELECT customer, count(*) AS n, sum(qty) AS qty FROM events GROUP BY customer";

// Blocks until the view has applied and committed events [0, events) of
// partition 0: the read-your-writes wait a query uses (no polling, which
// would take CPU from the view on a small machine), on a point read; a scan
// would also time the view's first ordered read (its keys are sorted when
// a reader first needs them).
void wait_live(views::Engine& e, int64_t events) {
  views::QueryOptions qo;
  qo.wait_for.push_back({"events", 0, events - 1});
  qo.timeout = std::chrono::minutes(10);
  check(e.execute("SELECT n FROM totals WHERE customer = 'c000000'", qo), "waiting for the view");
}

// PartialAggregation for every view (--partial-records N, -1: never;
// --partial-window-ms, --partial-unit).
views::PartialAggregation g_partial;

// One backfill: a fresh view over the `events` already in the log under
// `dir`; returns events/s until the view is live (after checking its
// result), or -1.
double backfill_run(const std::string& dir, const std::string& state, int64_t events, int decode_threads) {
  auto log = open_log(dir);
  views::EngineOptions eo;
  eo.state_dir = dir + "/" + state;
  eo.log = log.get();
  eo.decode_ahead.threads = decode_threads;
  eo.partial = g_partial;
  auto engine = views::Engine::open(eo);
  if (!engine) return -1;
  views::Engine& e = **engine;
  log->set_append_listener(1, [&e](const std::string& t, int32_t, int64_t) { e.on_append(t); });
  check(e.execute(kTable, {}), "create table");
  auto t0 = Clock_::now();
  check(e.execute(kView, {}), "create view");
  wait_live(e, events);
  double rate = double(events) / seconds(Clock_::now() - t0);
  // Verify the result against the formula.
  auto res = e.execute("SELECT count(*), sum(n), sum(qty) FROM totals", {});
  check(res, "verify");
  int64_t want_qty = 0;
  for (int64_t i = 0; i < events; ++i) want_qty += i % 10 + 1;
  const auto& row = res.results[0].rows[0];
  if (row[1].i != events || row[2].i != want_qty) {
    std::fprintf(stderr, "WRONG: n=%lld qty=%lld want %lld %lld\n", (long long)row[1].i, (long long)row[2].i,
                 (long long)events, (long long)want_qty);
    return -1;
  }
  e.close();
  log->set_append_listener(1, nullptr);
  (void)log->delete_topic("_evert.view.totals");
  (void)log->close();
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t events = 10'000'000;
  int runs = 3;
  double fresh_rate = 1000;
  std::string json_path;
  bool steady_too = true;
  int decode_threads = -1;  // the backfill decoding ahead: one thread per core
  bool one_core_too = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--events") events = std::stoll(next());
    else if (a == "--runs") runs = std::stoi(next());
    else if (a == "--freshness-rate") fresh_rate = std::stod(next());
    else if (a == "--json") json_path = next();
    else if (a == "--backfill-only") steady_too = false;
    else if (a == "--decode-threads") decode_threads = std::stoi(next());
    else if (a == "--ahead-only") one_core_too = false;
    else if (a == "--partial-records") g_partial.min_records = std::stoll(next());
    else if (a == "--partial-window-ms") g_partial.window = std::chrono::milliseconds(std::stoll(next()));
    else if (a == "--partial-unit") g_partial.unit_records = std::stoll(next());
    else {
      std::fprintf(stderr, "usage: view_bench [--events N] [--runs R] [--freshness-rate R] [--json FILE] [--backfill-only] [--decode-threads N] [--ahead-only] [--partial-records N] [--partial-window-ms MS] [--partial-unit N]\n");
      return 2;
    }
  }
  testing::TempDir tmp;
  // 1. Write the events once.
  {
    auto log = open_log(tmp.path());
    auto c = log->create_topic("events", 1, {});
    auto t0 = Clock_::now();
    produce(*log->partition("events", 0), 0, events, 1000);
    std::printf("wrote %lld events in %.2f s\n", (long long)events, seconds(Clock_::now() - t0));
    (void)log->close();
  }
  // 2. Backfill: a fresh view over the existing events, per run, with the
  // view's thread alone (one core) and with decoding ahead on other threads.
  std::vector<double> backfill, backfill_one;
  for (int r = 0; r < runs; ++r) {
    for (int threads : {0, decode_threads}) {
      if (threads == 0 && !one_core_too) continue;
      double rate = backfill_run(tmp.path(), fmt::format("state-{}-{}", r, threads), events, threads);
      if (rate < 0) return 1;
      (threads == 0 ? backfill_one : backfill).push_back(rate);
      std::printf("backfill run %d, %s: %.2f s, %.0f events/s\n", r + 1,
                  threads == 0 ? "one thread" : "decoding ahead", double(events) / rate, rate);
    }
  }
  if (backfill_one.empty()) backfill_one.push_back(0);
  Stats b1 = stats(backfill_one);
  std::printf("backfill on one thread: median %.0f events/s (min %.0f, max %.0f)\n", b1.median, b1.min, b1.max);
  Stats b = stats(backfill);
  std::printf("backfill decoding ahead: median %.0f events/s (min %.0f, max %.0f)\n", b.median, b.min, b.max);
  auto backfill_json = [&] {
    return fmt::format(
        "\"events\":{},\"backfill\":{{\"median\":{},\"min\":{},\"max\":{},\"unit\":\"events/s\"}},"
        "\"backfill_one_thread\":{{\"median\":{},\"min\":{},\"max\":{},\"unit\":\"events/s\"}}",
        events, b.median, b.min, b.max, b1.median, b1.min, b1.max);
  };
  if (!steady_too) {
    if (!json_path.empty()) std::ofstream(json_path) << "{" << backfill_json() << "}\n";
    return 0;
  }

  // 3. Steady state: the view follows a producer appending as fast as it can.
  std::vector<double> steady;
  std::vector<double> fresh_p50, fresh_p99;
  int64_t steady_events = std::min<int64_t>(events, 2'000'000);
  for (int r = 0; r < runs; ++r) {
    testing::TempDir dir;
    auto log = open_log(dir.path());
    views::EngineOptions eo;
    eo.state_dir = dir.path() + "/state";
    eo.log = log.get();
    eo.partial = g_partial;
    auto engine = views::Engine::open(eo);
    if (!engine) return 1;
    views::Engine& e = **engine;
    log->set_append_listener(1, [&e](const std::string& t, int32_t, int64_t) { e.on_append(t); });
    check(e.execute(kTable, {}), "create table");
    check(e.execute(kView, {}), "create view");
    auto part = log->partition("events", 0);
    auto t0 = Clock_::now();
    std::thread producer([&] { produce(*part, 0, steady_events, 100); });
    producer.join();
    wait_live(e, steady_events);
    double s = seconds(Clock_::now() - t0);
    steady.push_back(double(steady_events) / s);
    std::printf("steady run %d: %lld events appended and maintained in %.2f s: %.0f events/s\n", r + 1,
                (long long)steady_events, s, double(steady_events) / s);
    // 4. Freshness: single-event appends at a fixed rate; time until the
    // view has applied the event (its row is then visible to readers).
    std::vector<double> lat;
    int probes = int(std::min(5000.0, fresh_rate * 5));
    auto interval = std::chrono::duration<double>(1.0 / fresh_rate);
    auto next = Clock_::now();
    for (int i = 0; i < probes; ++i) {
      next += std::chrono::duration_cast<Clock_::duration>(interval);
      std::this_thread::sleep_until(next);
      auto start = Clock_::now();
      int64_t off = produce(*part, steady_events + i, steady_events + i + 1, 1);
      auto view = e.view_status("totals");
      (void)view;
      // Wait on the view itself: the same wait read-your-writes uses.
      views::QueryOptions qo;
      qo.wait_for.push_back({"events", 0, off});
      qo.timeout = std::chrono::milliseconds(5000);
      auto res = e.execute("SELECT n FROM totals WHERE customer = 'c000000'", qo);
      check(res, "freshness");
      lat.push_back(seconds(Clock_::now() - start) * 1000);
    }
    std::sort(lat.begin(), lat.end());
    fresh_p50.push_back(lat[lat.size() / 2]);
    fresh_p99.push_back(lat[size_t(double(lat.size()) * 0.99)]);
    std::printf("freshness run %d at %.0f events/s: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", r + 1, fresh_rate,
                fresh_p50.back(), fresh_p99.back(), lat.back());
    e.close();
    log->set_append_listener(1, nullptr);
    (void)log->close();
  }
  Stats st = stats(steady), f50 = stats(fresh_p50), f99 = stats(fresh_p99);
  std::printf("steady: median %.0f events/s (min %.0f, max %.0f)\n", st.median, st.min, st.max);
  std::printf("freshness p50: median %.3f ms (min %.3f, max %.3f); p99: median %.3f ms (min %.3f, max %.3f)\n",
              f50.median, f50.min, f50.max, f99.median, f99.min, f99.max);
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << "{" << backfill_json()
        << fmt::format(
               ",\"steady\":{{\"median\":{},\"min\":{},\"max\":{},\"unit\":\"events/s\"}},"
               "\"freshness_p50_ms\":{{\"median\":{},\"min\":{},\"max\":{}}},"
               "\"freshness_p99_ms\":{{\"median\":{},\"min\":{},\"max\":{}}}}}\n",
               st.median, st.min, st.max, f50.median, f50.min, f50.max, f99.median, f99.min, f99.max);
  }
  return 0;
}
