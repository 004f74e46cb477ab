// Append throughput of log::Partition against the raw disk under it.
//
// Each evert benchmark has a raw twin that writes the very same buffers (same
// bytes per call) with pwrite to a plain file in the same directory, i.e. on
// the same file system, with the same flush behaviour:
//
//   flush     evert (FlushPolicy)                 raw twin
//   none      kNone                               pwrite
//   interval  kInterval 1000 ms (the LogManager   pwrite, plus a thread that
//             background thread flushes)          fdatasyncs every 1000 ms
//   sync      kEveryAppend                        pwrite + fdatasync
//
// The two run interleaved, in chunks of about kChunkBytes, so that both see
// the same machine: a shared 2-core VM whose CPU and disk speed drift with
// what other processes do. `vs_raw` is the median over chunks of raw time /
// evert time for the same bytes (robust to preemptions, which land a whole
// time slice in one side of one chunk); `vs_raw_total` is whole-run evert
// bytes/s over raw bytes/s (equal to it on a quiet machine). main() prints a
// summary against the targets at the end. BM_RawAppend measures page-aligned
// raw appends alone, as a description of the disk.
//
// Timing is manual: only Partition::append (or pwrite [+ fdatasync]) is
// inside the clock. Batches are built once, outside the loop, into a pool of
// buffers that the appends cycle through; append rewrites base_offset in
// place, which the CRC does not cover, so the buffers are reused as they are.
// Files are recycled (deleted and recreated, untimed) before they pass
// kFileBytesMax, so a run needs at most twice that in disk space; TempDir
// removes everything afterwards.
//
//   ./build/bench/log_bench --benchmark_counters_tabular=true
//   ./build/bench/log_bench --benchmark_filter='PartitionAppend/.*/1048576/sync'
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/crc32c.h"
#include "base/logging.h"
#include "log/log_manager.h"
#include "log/record_batch.h"
#include "testing/temp_dir.h"

namespace evert::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr uint64_t kFileBytesMax = 256ull << 20;  // a file is recycled before it grows past this
constexpr size_t kPoolBytesMax = 8u << 20;        // source buffers per benchmark
constexpr size_t kPoolBuffersMin = 2;
constexpr int64_t kFlushIntervalMs = 1000;
constexpr size_t kChunkBytes = 256u << 10;  // evert and raw alternate every this many bytes
constexpr size_t kSmallBatchBytes = 16u << 10;
constexpr size_t kLargeBatchBytes = 1u << 20;

enum class Flush { kNone = 0, kInterval = 1, kSync = 2 };

const char* flush_name(Flush f) {
  switch (f) {
    case Flush::kNone: return "none";
    case Flush::kInterval: return "interval";
    case Flush::kSync: return "sync";
  }
  return "?";
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "log_bench: %s\n", what.c_str());
  std::abort();
}

void check_ok(const Status& s, const char* what) {
  if (!s.is_ok()) die(std::string(what) + ": " + s.to_string());
}

double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---- results shared between benchmarks and the final summary ----

struct EvertFigures {
  uint64_t iterations = 0;
  size_t batch_bytes = 0;  // what one append carries
  Flush flush = Flush::kNone;
  double records_per_s = 0;
  double bytes_per_s = 0;
  double raw_bytes_per_s = 0;  // the interleaved raw twin, over the whole run
  double paired_ratio = 0;     // median over chunks of raw time / evert time for the same bytes
  double total_ratio() const { return bytes_per_s / raw_bytes_per_s; }
};

// Evert and raw time for the same appends, chunk by chunk. On a busy machine
// a preemption lands a whole time slice in one chunk of one side; the median
// of the per-chunk ratios ignores those, the totals do not.
class PairedTimes {
 public:
  void add_evert(double seconds) { chunk_evert_s_ += seconds; }
  void end_chunk(double raw_seconds) {
    evert_s_ += chunk_evert_s_;
    raw_s_ += raw_seconds;
    if (chunk_evert_s_ > 0) ratios_.push_back(raw_seconds / chunk_evert_s_);
    chunk_evert_s_ = 0;
  }
  double evert_s() const { return evert_s_; }
  double raw_s() const { return raw_s_; }
  double median_ratio() {
    if (ratios_.empty()) return 0;
    auto mid = ratios_.begin() + ptrdiff_t(ratios_.size() / 2);
    std::nth_element(ratios_.begin(), mid, ratios_.end());
    return *mid;
  }

 private:
  double chunk_evert_s_ = 0;
  double evert_s_ = 0;
  double raw_s_ = 0;
  std::vector<double> ratios_;
};

std::mutex g_results_mu;
// Every call of each evert benchmark, by name. Google Benchmark calls a
// function with growing iteration counts until a run is long enough, then
// repeats that count (--benchmark_repetitions): the runs with the most
// iterations are the reported ones.
std::map<std::string, std::vector<EvertFigures>> g_evert_runs;
std::vector<std::string> g_evert_order;  // names in the order they first ran

// ---- raw file appends ----

// Appends to one plain file with pwrite, recycling it past kFileBytesMax.
// Under kInterval a thread fdatasyncs it every kFlushIntervalMs, like the
// LogManager's background flush.
class RawFile {
 public:
  RawFile(const std::string& dir, Flush flush) : path_(dir + "/raw.bin"), flush_(flush) {
    reopen();
    if (flush_ == Flush::kInterval) flusher_ = std::thread([this] { flush_loop(); });
  }
  ~RawFile() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (flusher_.joinable()) flusher_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }

  // Appends `data`; returns the seconds the write (and its fdatasync) took.
  double append(const uint8_t* data, size_t size) {
    if (end_ + size > kFileBytesMax) reopen();
    auto t0 = SteadyClock::now();
    for (size_t done = 0; done < size;) {
      ssize_t n = ::pwrite(fd_, data + done, size - done, off_t(end_ + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) die("pwrite " + path_ + ": " + std::strerror(errno));
      done += size_t(n);
    }
    if (flush_ == Flush::kSync && ::fdatasync(fd_) != 0) die("fdatasync: " + std::string(std::strerror(errno)));
    auto t1 = SteadyClock::now();
    end_ += size;
    return seconds_between(t0, t1);
  }

 private:
  // Starts over with an empty file, as EvertLog does by recreating its topic.
  void reopen() {
    std::lock_guard lock(mu_);  // waits out a flush in progress
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) die("open " + path_ + ": " + std::strerror(errno));
    end_ = 0;
  }
  void flush_loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::milliseconds(kFlushIntervalMs));
      if (!stopping_ && ::fdatasync(fd_) != 0) die("interval fdatasync failed");
    }
  }

  const std::string path_;
  const Flush flush_;
  int fd_ = -1;       // written by the appending thread under mu_; read by the flusher under mu_
  uint64_t end_ = 0;  // appending thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread flusher_;
};

// Copies of `prototype`, enough to span kPoolBytesMax, so that the bytes an
// append reads come from L3 or memory as a producer's would, not from L1/L2.
std::vector<std::vector<uint8_t>> make_pool(const std::vector<uint8_t>& prototype) {
  size_t count = std::max(kPoolBuffersMin, kPoolBytesMax / prototype.size());
  return std::vector<std::vector<uint8_t>>(count, prototype);
}

std::vector<uint8_t> raw_prototype(size_t write_bytes) {
  std::vector<uint8_t> bytes(write_bytes);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 131 + 7);
  return bytes;
}

// Page-aligned raw appends on their own: what the disk does.
void BM_RawAppend(benchmark::State& state, size_t write_bytes, Flush flush) {
  testing::TempDir dir;
  RawFile file(dir.path(), flush);
  auto pool = make_pool(raw_prototype(write_bytes));
  uint64_t bytes = 0;
  size_t i = 0;
  for (auto _ : state) {
    state.SetIterationTime(file.append(pool[i++ % pool.size()].data(), write_bytes));
    bytes += write_bytes;
  }
  state.counters["bytes/s"] = benchmark::Counter(double(bytes), benchmark::Counter::kIsRate);
  state.SetLabel(flush_name(flush));
}

// ---- evert appends ----

log::FlushPolicy flush_policy(Flush flush) {
  log::FlushPolicy p;
  switch (flush) {
    case Flush::kNone: p.kind = log::FlushPolicy::Kind::kNone; break;
    case Flush::kInterval: p.kind = log::FlushPolicy::Kind::kInterval; break;
    case Flush::kSync: p.kind = log::FlushPolicy::Kind::kEveryAppend; break;
  }
  p.interval_ms = kFlushIntervalMs;
  return p;
}

// One topic of one partition in a LogManager (whose background thread does
// the interval flushes), recreated past kFileBytesMax.
class EvertLog {
 public:
  EvertLog(const std::string& dir, Flush flush) {
    log::LogOptions options;
    options.data_dir = dir + "/data";
    options.flush = flush_policy(flush);
    options.defaults.segment_bytes = int64_t(kFileBytesMax) * 2;  // never rolls within a run
    log::OpenReport report;
    auto m = log::LogManager::open(options, &report);
    check_ok(m.status(), "open log");
    manager_ = std::move(m).value();
    create();
  }
  ~EvertLog() { check_ok(manager_->close(), "close log"); }

  // Appends the batches in `data`; returns the seconds Partition::append took.
  double append(MutableByteSpan data) {
    if (written_ + data.size() > kFileBytesMax) recycle();
    auto t0 = SteadyClock::now();
    auto r = partition_->append(data);
    auto t1 = SteadyClock::now();
    if (!r.is_ok()) die("append: " + r.status().to_string());
    written_ += data.size();
    return seconds_between(t0, t1);
  }

 private:
  void create() {
    check_ok(manager_->create_topic("bench", 1, {}).status(), "create topic");
    partition_ = manager_->partition("bench", 0);
    written_ = 0;
  }
  void recycle() {
    partition_.reset();
    check_ok(manager_->delete_topic("bench"), "delete topic");
    create();
  }

  std::unique_ptr<log::LogManager> manager_;
  std::shared_ptr<log::Partition> partition_;
  uint64_t written_ = 0;
};

// One batch of as many `record_bytes`-value records as fit in `batch_bytes_max`.
std::vector<uint8_t> build_batch(size_t record_bytes, size_t batch_bytes_max, int64_t timestamp_ms) {
  std::string value(record_bytes, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = char('a' + i % 26);
  log::BatchBuilder builder(timestamp_ms);
  // A record's varint framing takes at most 16 bytes on top of its value.
  while (builder.size_bytes() + record_bytes + 16 <= batch_bytes_max) builder.add(std::nullopt, value, timestamp_ms);
  std::string batch = builder.finish();
  if (batch.size() > batch_bytes_max) die("batch overshoots its size");
  return std::vector<uint8_t>(batch.begin(), batch.end());
}

int64_t records_in(const std::vector<uint8_t>& batch) {
  return int64_t(log::decode_batch_header(ByteSpan(batch.data(), batch.size())).records_count);
}

// Records of `record_bytes` values in batches of at most `batch_bytes_max`,
// interleaved with the raw twin.
void BM_PartitionAppend(benchmark::State& state, size_t record_bytes, size_t batch_bytes_max, Flush flush,
                        const std::string& name) {
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  std::vector<uint8_t> prototype = build_batch(record_bytes, batch_bytes_max, now_ms);
  const size_t batch_bytes = prototype.size();
  const int64_t records_per_batch = records_in(prototype);
  const uint64_t chunk_appends = std::max<uint64_t>(1, kChunkBytes / batch_bytes);
  auto pool = make_pool(prototype);
  testing::TempDir dir;
  RawFile raw(dir.path(), flush);
  EvertLog log(dir.path(), flush);
  PairedTimes times;
  uint64_t evert_appends = 0;
  uint64_t raw_appends = 0;
  auto catch_up_raw = [&] {
    double raw_s = 0;
    for (; raw_appends < evert_appends; ++raw_appends)
      // Half a pool away from evert's buffer, so that neither finds the other's bytes cache-hot.
      raw_s += raw.append(pool[(raw_appends + pool.size() / 2) % pool.size()].data(), batch_bytes);
    times.end_chunk(raw_s);
  };
  for (auto _ : state) {
    auto& batch = pool[evert_appends % pool.size()];
    double s = log.append(MutableByteSpan(batch.data(), batch.size()));
    state.SetIterationTime(s);
    times.add_evert(s);
    if (++evert_appends % chunk_appends == 0) catch_up_raw();
  }
  if (raw_appends < evert_appends) catch_up_raw();

  double records = double(evert_appends) * double(records_per_batch);
  double bytes = double(evert_appends) * double(batch_bytes);
  EvertFigures f{evert_appends, batch_bytes, flush, records / times.evert_s(), bytes / times.evert_s(),
                 bytes / times.raw_s(), times.median_ratio()};
  state.counters["records/s"] = benchmark::Counter(records, benchmark::Counter::kIsRate);
  state.counters["bytes/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
  state.counters["raw_bytes/s"] = benchmark::Counter(f.raw_bytes_per_s);
  state.counters["vs_raw"] = benchmark::Counter(f.paired_ratio);
  state.counters["vs_raw_total"] = benchmark::Counter(f.total_ratio());
  state.SetLabel(fmt::format("{}, {} B batches", flush_name(flush), batch_bytes));

  std::lock_guard lock(g_results_mu);
  if (!g_evert_runs.count(name)) g_evert_order.push_back(name);
  g_evert_runs[name].push_back(f);
}

// ---- CRC32C, which every append pays over every byte ----

enum class CrcImpl { kSoftware, kSse42, kVpclmul };

// `pooled`: cycle through kPoolBytesMax of buffers, as the append benchmarks
// do, so the bytes come from L3 or memory rather than L1/L2.
void BM_Crc32c(benchmark::State& state, size_t size, CrcImpl impl, bool pooled) {
  if ((impl == CrcImpl::kSse42 && !crc32c_hardware_available()) ||
      (impl == CrcImpl::kVpclmul && !crc32c_vpclmul_available())) {
    state.SkipWithError("not supported by this CPU");
    return;
  }
  auto* extend = impl == CrcImpl::kSoftware ? crc32c_extend_software
                 : impl == CrcImpl::kSse42  ? crc32c_extend_hardware
                                            : crc32c_extend_vpclmul;
  auto pool = pooled ? make_pool(raw_prototype(size)) : std::vector<std::vector<uint8_t>>{raw_prototype(size)};
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(extend(0, pool[i++ % pool.size()].data(), size));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(size));
}

// The dispatching entry point the log uses: shows which path it took.
void BM_Crc32cDispatch(benchmark::State& state, size_t size) {
  std::vector<uint8_t> data = raw_prototype(size);
  for (auto _ : state) benchmark::DoNotOptimize(crc32c(data.data(), size));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(size));
  state.SetLabel(crc32c_vpclmul_available()    ? "uses vpclmulqdq"
                 : crc32c_hardware_available() ? "uses sse4.2"
                                               : "uses software");
}

// Validation as Partition::append does it, on a cache-warm batch.
void BM_ValidateBatch(benchmark::State& state, size_t record_bytes, size_t batch_bytes_max) {
  std::vector<uint8_t> batch = build_batch(record_bytes, batch_bytes_max, 1700000000000);
  for (auto _ : state) check_ok(log::validate_batch(ByteSpan(batch.data(), batch.size())), "validate");
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(batch.size()));
}

void register_crc_benchmarks() {
  for (size_t b : {kSmallBatchBytes, kLargeBatchBytes}) {
    for (auto [impl, impl_name] : {std::pair{CrcImpl::kVpclmul, "vpclmulqdq"}, std::pair{CrcImpl::kSse42, "sse4.2"},
                                   std::pair{CrcImpl::kSoftware, "software"}})
      for (bool pooled : {false, true})
        benchmark::RegisterBenchmark(
            fmt::format("BM_Crc32c/{}/{}/{}", b, impl_name, pooled ? "pool8MiB" : "hot").c_str(), BM_Crc32c, b,
            impl, pooled);
    benchmark::RegisterBenchmark(fmt::format("BM_Crc32cDispatch/{}", b).c_str(), BM_Crc32cDispatch, b);
    for (size_t r : {100, 1024})
      benchmark::RegisterBenchmark(fmt::format("BM_ValidateBatch/{}/{}", r, b).c_str(), BM_ValidateBatch, r, b);
  }
}

// Grouped by flush mode, the interval runs last: their background flushes
// write gigabytes, and a disk busy draining them slows whatever runs next.
void register_append_benchmarks() {
  for (Flush f : {Flush::kSync, Flush::kNone, Flush::kInterval}) {
    // Interval runs last long enough to see a few background flushes.
    double min_time_s = f == Flush::kInterval ? 2.0 * kFlushIntervalMs / 1000 : 0.5;
    for (size_t b : {kSmallBatchBytes, kLargeBatchBytes})
      benchmark::RegisterBenchmark(fmt::format("BM_RawAppend/{}/{}", b, flush_name(f)).c_str(), BM_RawAppend, b, f)
          ->UseManualTime()
          ->MinTime(min_time_s)
          ->Unit(benchmark::kMicrosecond);
    for (size_t b : {kSmallBatchBytes, kLargeBatchBytes})
      for (size_t r : {100, 1024}) {
        std::string name = fmt::format("BM_PartitionAppend/{}/{}/{}", r, b, flush_name(f));
        benchmark::RegisterBenchmark(name.c_str(), BM_PartitionAppend, r, b, f, name)
            ->UseManualTime()
            ->MinTime(min_time_s)
            ->Unit(benchmark::kMicrosecond);
      }
  }
}

// Targets from the issue: 80% of raw bandwidth without sync, 70% of raw
// fdatasync'd bandwidth with sync at 1 MiB.
std::string target_verdict(const EvertFigures& f, double ratio) {
  if (f.flush == Flush::kSync) {
    if (f.batch_bytes <= kSmallBatchBytes) return "(no target)";
    return ratio >= 0.70 ? "meets >=70%" : "MISSES >=70%";
  }
  return ratio >= 0.80 ? "meets >=80%" : "MISSES >=80%";
}

// The reported run of a benchmark, or the median-ratio one of its repetitions.
EvertFigures reported_run(std::vector<EvertFigures> runs) {
  uint64_t most = 0;
  for (const auto& r : runs) most = std::max(most, r.iterations);
  std::erase_if(runs, [most](const EvertFigures& r) { return r.iterations != most; });
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.paired_ratio < b.paired_ratio; });
  return runs[runs.size() / 2];
}

void print_summary(FILE* out) {
  std::lock_guard lock(g_results_mu);
  if (g_evert_order.empty()) return;
  std::fprintf(out, "\nPartition::append vs raw appends of the same buffers, interleaved, same flush mode\n");
  std::fprintf(out, "ratio: median over chunks of the paired ratio; total: whole-run bytes/s over raw's\n");
  std::fprintf(out, "(of several repetitions, the one with the median ratio)\n");
  std::fprintf(out, "%-38s %12s %9s %9s %6s %6s  %s\n", "benchmark", "records/s", "MB/s", "raw MB/s", "ratio", "total",
               "target");
  for (const auto& name : g_evert_order) {
    EvertFigures f = reported_run(g_evert_runs[name]);
    std::fprintf(out, "%-38s %12.0f %9.1f %9.1f %5.0f%% %5.0f%%  %s\n", name.c_str(), f.records_per_s,
                 f.bytes_per_s / 1e6, f.raw_bytes_per_s / 1e6, 100 * f.paired_ratio, 100 * f.total_ratio(),
                 target_verdict(f, f.paired_ratio).c_str());
  }
}

// The summary goes where the console table went, unless stdout carries JSON or CSV.
FILE* summary_stream(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.starts_with("--benchmark_format=") && arg != "--benchmark_format=console") return stderr;
  }
  return stdout;
}

}  // namespace
}  // namespace evert::bench

int main(int argc, char** argv) {
  evert::set_log_level(evert::LogLevel::kWarn);
  evert::bench::register_crc_benchmarks();
  evert::bench::register_append_benchmarks();
  FILE* summary = evert::bench::summary_stream(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  evert::bench::print_summary(summary);
  return 0;
}
