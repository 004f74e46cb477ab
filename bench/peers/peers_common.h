// Shared by the peer load generators (bench/peers/*.cc): the events, a clock,
// flag parsing, latency quantiles and the one-line result format run.py reads.
//
// Every generator prints exactly one line starting with "result " on stdout,
// then space-separated key=value pairs (numbers in plain decimal). Progress
// and errors go to stderr. Exit status 0 means the figures are valid.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <vector>

namespace peers {

constexpr int kEventBytes = 100;
constexpr int64_t kCustomerCount = 100'000;
constexpr int64_t kCustomerStride = 7919;  // coprime to kCustomerCount
constexpr int64_t kTsBaseMs = 1'700'000'000'000;

inline uint64_t now_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

inline int64_t customer_of(int64_t i) { return (i * kCustomerStride) % kCustomerCount; }
inline int64_t qty_of(int64_t i) { return i % 10 + 1; }

// Event i: the same 100 bytes of JSON as bench/view_bench.cc and
// bench/views/pg_baseline.py. Writes exactly kEventBytes bytes to out.
inline void event_json(int64_t i, char out[kEventBytes]) {
  char core[kEventBytes + 1];
  int n = std::snprintf(core, sizeof core, "{\"id\":%lld,\"customer\":\"c%06lld\",\"product\":%lld,\"qty\":%lld,\"ts\":%lld,\"pad\":\"",
                        (long long)i, (long long)customer_of(i), (long long)(i % 1000), (long long)qty_of(i),
                        (long long)(kTsBaseMs + i));
  if (n < 0 || n > kEventBytes - 2) {
    std::fprintf(stderr, "event %lld does not fit in %d bytes\n", (long long)i, kEventBytes);
    std::exit(1);
  }
  std::copy(core, core + n, out);
  std::fill(out + n, out + kEventBytes - 2, 'x');
  out[kEventBytes - 2] = '"';
  out[kEventBytes - 1] = '}';
}

// `--name value` pairs after the mode; unknown names are an error.
class Flags {
 public:
  Flags(int argc, char** argv, int first, const std::vector<std::string>& known) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0 || i + 1 >= argc ||
          std::find(known.begin(), known.end(), a.substr(2)) == known.end()) {
        std::fprintf(stderr, "bad flag %s (known:", a.c_str());
        for (const auto& k : known) std::fprintf(stderr, " --%s", k.c_str());
        std::fprintf(stderr, ")\n");
        std::exit(2);
      }
      values_[a.substr(2)] = argv[++i];
    }
  }
  int64_t num(const std::string& name, int64_t fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : std::stoll(it->second);
  }
  std::string str(const std::string& name, const std::string& fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }

 private:
  std::map<std::string, std::string> values_;
};

// Latencies in ns; quantiles by sorting (a run holds at most a few million).
struct Latencies {
  std::vector<uint64_t> ns;
  void reserve(size_t n) { ns.reserve(n); }
  void add(uint64_t v) { ns.push_back(v); }
  // Sorts in place; call once, after the run.
  std::string summary_ms() {
    if (ns.empty()) return "p50_ms=0 p99_ms=0 p999_ms=0 max_ms=0";
    std::sort(ns.begin(), ns.end());
    auto q = [&](double f) { return double(ns[std::min(ns.size() - 1, size_t(f * double(ns.size())))]) / 1e6; };
    char buf[160];
    std::snprintf(buf, sizeof buf, "p50_ms=%.4f p99_ms=%.4f p999_ms=%.4f max_ms=%.4f", q(0.5), q(0.99), q(0.999),
                  double(ns.back()) / 1e6);
    return buf;
  }
};

inline double seconds_between(uint64_t start_ns, uint64_t end_ns) {
  return std::max(1e-9, double(end_ns - start_ns) / 1e9);
}

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::exit(1);
}

// Sleeps until due_ns, in steps of at most 1 ms; returns at once when late.
inline void sleep_until_ns(uint64_t due_ns) {
  uint64_t t = now_ns();
  if (t >= due_ns) return;
  uint64_t step = std::min<uint64_t>(due_ns - t, 1'000'000);
  struct timespec ts{0, long(step)};
  nanosleep(&ts, nullptr);
}

}  // namespace peers
