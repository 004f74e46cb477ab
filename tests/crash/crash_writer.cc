// crash_writer DATA_DIR RUN: appends seeded batches to every partition of
// the crash topic under the every-append flush policy and reports each one
// on stdout once append() has returned (i.e. once it is durable), until it
// is killed. See crash_workload.h for the line format.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "crash/crash_workload.h"
#include "log/log_manager.h"
#include "support/seeded_batches.h"

namespace evert::crash {
namespace {

// Exits the whole process: a writer that cannot append must not keep
// reporting on other partitions as if nothing happened.
[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "crash_writer: %s\n", what.c_str());
  std::fflush(stderr);
  ::_exit(3);
}

void write_partition(log::Partition& partition, int32_t index, uint32_t run) {
  for (uint32_t seq = 0; seq < kBatchesPerRunMax; ++seq) {
    uint64_t seed = workload_seed(run, index, seq);
    std::string batch = testing::make_seeded_batch(seed);
    auto r = partition.append(MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()), batch.size()));
    if (!r.is_ok()) fail("append to partition " + std::to_string(index) + ": " + r.status().to_string());
    char line[128];
    int n = std::snprintf(line, sizeof line, "%d %lld %lld %llu\n", index, (long long)r->base_offset,
                          (long long)r->last_offset, (unsigned long long)seed);
    if (::write(STDOUT_FILENO, line, size_t(n)) != n) fail("writing the acknowledgement");
  }
}

int run(const std::string& data_dir, uint32_t run) {
  log::LogOptions options;
  options.data_dir = data_dir;
  options.flush.kind = log::FlushPolicy::Kind::kEveryAppend;
  log::OpenReport report;
  auto manager = log::LogManager::open(options, &report);
  if (!manager.is_ok()) fail("open: " + manager.status().to_string());
  log::LogManager& m = **manager;
  if (!m.describe_topic(kTopic)) {
    auto created = m.create_topic(kTopic, kPartitions, kTopicOverrides);
    if (!created.is_ok()) fail("create topic: " + created.status().to_string());
  }
  std::vector<std::thread> writers;
  for (int32_t p = 0; p < kPartitions; ++p) {
    std::shared_ptr<log::Partition> partition = m.partition(kTopic, p);
    if (!partition) fail("partition " + std::to_string(p) + " missing");
    writers.emplace_back([partition, p, run] { write_partition(*partition, p, run); });
  }
  for (auto& t : writers) t.join();
  // Done early: wait (bounded) for the parent's SIGKILL rather than closing
  // cleanly, so every run ends the same way.
  std::this_thread::sleep_for(std::chrono::seconds(60));
  return 0;
}

}  // namespace
}  // namespace evert::crash

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_writer DATA_DIR RUN\n");
    return 2;
  }
  return evert::crash::run(argv[1], uint32_t(std::strtoul(argv[2], nullptr, 10)));
}
