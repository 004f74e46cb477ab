// Process-crash durability: a writer process appends under the every-append
// flush policy and reports what append() acknowledged; we SIGKILL it at a
// random moment, reopen the data directory and require every acknowledged
// batch back byte for byte, then `evert log check` to pass. Repeated on the
// same directory so later runs recover what earlier kills left.
//
// EVERT_CRASH_SEED=<n> replays the same kill delays.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "crash/crash_workload.h"
#include "log/file_names.h"
#include "log/log_manager.h"
#include "support/log_contents.h"
#include "support/seeded_batches.h"
#include "support/subprocess.h"
#include "testing/temp_dir.h"

namespace evert::crash {
namespace {

using testing::ChildProcess;

constexpr int kRuns = 25;
constexpr int64_t kKillDelayMinMs = 5;
constexpr int64_t kKillDelayMaxMs = 200;
constexpr int64_t kChildExitTimeoutMs = 10'000;
constexpr int64_t kTestBudgetMs = 60'000;

struct Ack {
  int64_t last_offset = 0;
  uint64_t seed = 0;
};
// partition -> base offset -> what the writer was told it stored there.
using AckMap = std::map<int32_t, std::map<int64_t, Ack>>;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Parses complete lines out of `buffer` (keeping a partial tail) into
// `acks`; a line that contradicts an earlier acknowledgement is a problem.
void take_ack_lines(std::string& buffer, AckMap& acks, std::vector<std::string>& problems) {
  size_t start = 0;
  for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::istringstream line(buffer.substr(start, nl - start));
    int32_t p;
    Ack ack;
    int64_t base;
    if (!(line >> p >> base >> ack.last_offset >> ack.seed) || p < 0 || p >= kPartitions) {
      problems.push_back("unparsable acknowledgement: " + buffer.substr(start, nl - start));
      continue;
    }
    auto [it, inserted] = acks[p].emplace(base, ack);
    if (!inserted)
      problems.push_back("partition " + std::to_string(p) + " acknowledged offset " + std::to_string(base) +
                         " twice (seeds " + std::to_string(it->second.seed) + ", " + std::to_string(ack.seed) + ")");
  }
  buffer.erase(0, start);
}

// Reads whatever the writer has reported until `deadline_ms` (or EOF).
void read_acks_until(int fd, int64_t deadline_ms, std::string& buffer, AckMap& acks,
                     std::vector<std::string>& problems) {
  while (true) {
    int64_t left = deadline_ms - now_ms();
    if (deadline_ms >= 0 && left <= 0) return;
    pollfd pfd{fd, POLLIN, 0};
    int n = ::poll(&pfd, 1, deadline_ms < 0 ? -1 : int(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    char buf[8192];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return;  // EOF: the writer is gone
    buffer.append(buf, size_t(got));
    take_ack_lines(buffer, acks, problems);
  }
}

// Compares one partition as read back with the acknowledgements for it:
// every stored batch must be a seeded batch of this partition, byte for byte
// at its offset, offsets contiguous from 0; every acknowledged batch must be
// there. Unacknowledged batches (in flight at the kill) may or may not be.
std::vector<std::string> verify_partition(int32_t p, const std::vector<testing::StoredBatch>& stored,
                                          const std::map<int64_t, Ack>& acked) {
  std::vector<std::string> problems;
  auto where = [p](int64_t offset) { return "partition " + std::to_string(p) + " offset " + std::to_string(offset); };
  std::map<int64_t, const testing::StoredBatch*> by_base;
  int64_t expected_base = 0;
  for (const auto& b : stored) {
    if (b.base_offset != expected_base)
      problems.push_back(where(b.base_offset) + ": expected the next batch at " + std::to_string(expected_base));
    expected_base = b.last_offset + 1;
    by_base[b.base_offset] = &b;
    auto seed = testing::seed_of_batch(as_bytes(b.bytes));
    if (!seed) {
      problems.push_back(where(b.base_offset) + ": not a batch the writer wrote");
      continue;
    }
    if (seed_partition(*seed) != p)
      problems.push_back(where(b.base_offset) + ": batch of partition " + std::to_string(seed_partition(*seed)));
    if (b.bytes != testing::expected_stored_batch(*seed, b.base_offset))
      problems.push_back(where(b.base_offset) + ": bytes differ from the batch of seed " + std::to_string(*seed));
  }
  for (const auto& [base, ack] : acked) {
    auto it = by_base.find(base);
    if (it == by_base.end()) {
      problems.push_back(where(base) + ": acknowledged batch (seed " + std::to_string(ack.seed) + ") is missing");
      continue;
    }
    auto seed = testing::seed_of_batch(as_bytes(it->second->bytes));
    if (it->second->last_offset != ack.last_offset || seed != ack.seed)
      problems.push_back(where(base) + ": holds another batch than the acknowledged one (seed " +
                         std::to_string(ack.seed) + ")");
  }
  return problems;
}

struct RecoveredState {
  bool topic_exists = false;
  size_t segments = 0;
  size_t batches = 0;
  size_t repairs = 0;  // lines of OpenReport::problems: torn tails cut, indexes rebuilt
};

// Opens the data directory in this process (recovering it), compares it with
// `acks`, and closes it cleanly.
RecoveredState verify_data_dir(const std::string& data_dir, const AckMap& acks, std::vector<std::string>& problems) {
  RecoveredState state;
  log::LogOptions options;
  options.data_dir = data_dir;
  options.background = false;
  log::OpenReport report;
  auto manager = log::LogManager::open(options, &report);
  if (!manager.is_ok()) {
    problems.push_back("reopen: " + manager.status().to_string());
    return state;
  }
  state.topic_exists = manager.value()->describe_topic(kTopic).has_value();
  state.repairs = report.problems.size();
  for (int32_t p = 0; p < kPartitions; ++p) {
    static const std::map<int64_t, Ack> kNone;
    auto it = acks.find(p);
    const auto& acked = it == acks.end() ? kNone : it->second;
    auto partition = manager.value()->partition(kTopic, p);
    if (!partition) {
      if (!acked.empty()) problems.push_back("partition " + std::to_string(p) + " lost with acknowledged batches");
      continue;
    }
    auto stored = testing::read_partition(*partition);
    if (!stored.is_ok()) {
      problems.push_back("partition " + std::to_string(p) + ": " + stored.status().to_string());
      continue;
    }
    for (auto& s : verify_partition(p, *stored, acked)) problems.push_back(std::move(s));
    state.segments += partition->segment_count();
    state.batches += stored->size();
  }
  if (Status s = manager.value()->close(); !s.is_ok()) problems.push_back("close: " + s.to_string());
  return state;
}

std::string join_lines(const std::vector<std::string>& lines, size_t max_lines = 20) {
  std::string out;
  for (size_t i = 0; i < lines.size() && i < max_lines; ++i) out += "  " + lines[i] + "\n";
  if (lines.size() > max_lines) out += "  ... and " + std::to_string(lines.size() - max_lines) + " more\n";
  return out;
}

uint64_t choose_seed() {
  if (const char* s = std::getenv("EVERT_CRASH_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

TEST(CrashTest, AcknowledgedBatchesSurviveSigkill) {
  uint64_t seed = choose_seed();
  std::printf("crash test seed %llu (replay the kill delays with EVERT_CRASH_SEED=%llu)\n",
              (unsigned long long)seed, (unsigned long long)seed);
  std::mt19937_64 rng(seed);
  testing::TempDir tmp;
  const std::string data_dir = tmp.file("data");
  AckMap acks;
  size_t ack_count = 0;
  int64_t start_ms = now_ms();
  RecoveredState state;
  size_t repairs = 0;
  for (int run = 0; run < kRuns; ++run) {
    SCOPED_TRACE("run " + std::to_string(run) + ", seed " + std::to_string(seed));
    ASSERT_LT(now_ms() - start_ms, kTestBudgetMs) << "over the time budget after " << run << " runs";
    std::string err_path = tmp.file("writer-" + std::to_string(run) + ".stderr");
    auto child = ChildProcess::spawn({CRASH_WRITER, data_dir, std::to_string(run)}, true, "", err_path);
    int64_t delay_ms = kKillDelayMinMs + int64_t(rng() % uint64_t(kKillDelayMaxMs - kKillDelayMinMs + 1));
    std::string buffer;
    std::vector<std::string> problems;
    read_acks_until(child.stdout_fd(), now_ms() + delay_ms, buffer, acks, problems);
    ASSERT_TRUE(child.signal(SIGKILL)) << "writer " << child.pid() << " already gone";
    auto status = child.wait_for(kChildExitTimeoutMs);
    ASSERT_TRUE(status.has_value()) << "writer " << child.pid() << " did not die";
    ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
        << "writer ended by itself: " << testing::describe_wait_status(*status) << "\n"
        << testing::read_text_file(err_path);
    // Lines already in the pipe were acknowledged before the kill.
    read_acks_until(child.stdout_fd(), -1, buffer, acks, problems);
    ASSERT_TRUE(problems.empty()) << join_lines(problems);

    state = verify_data_dir(data_dir, acks, problems);
    repairs += state.repairs;
    ack_count = 0;
    for (const auto& [p, m] : acks) ack_count += m.size();
    ASSERT_TRUE(problems.empty()) << "after the kill at " << delay_ms << " ms:\n"
                                  << join_lines(problems) << "writer stderr:\n"
                                  << testing::read_text_file(err_path);
    if (ack_count > 0) {
      ASSERT_TRUE(state.topic_exists);
    }

    auto check = testing::run_process({EVERT_BINARY, "log", "check", data_dir});
    ASSERT_EQ(check.exit_code, 0) << "evert log check after run " << run << ": " << check.describe();
    // Our reopen ended with a clean close; every other run, make the next
    // writer take the unclean path (validate its active segments) as well.
    if (run % 2 == 1) std::filesystem::remove(log::clean_shutdown_path(data_dir));
  }
  int64_t elapsed_ms = now_ms() - start_ms;
  std::printf("%d kills, %zu acknowledged batches, %zu batches stored in %zu segments, %zu repairs on reopen, %lld ms\n",
              kRuns, ack_count, state.batches, state.segments, repairs, (long long)elapsed_ms);
  // A run that never got to append proves nothing; the whole test must have.
  EXPECT_GT(ack_count, 0u) << "the writer never acknowledged a batch";
  EXPECT_GE(state.batches, ack_count);
  // Segments roll by size here (~40 batches each); one per batch means
  // rolling misfires (e.g. segment.ms judged by the wall clock).
  EXPECT_LE(state.segments, size_t(kPartitions) + state.batches / 4) << "segments roll far too often";
  RecordProperty("acknowledged_batches", int(ack_count));
  RecordProperty("segments", int(state.segments));
  RecordProperty("elapsed_ms", int(elapsed_ms));
}

// The verifier itself must be able to fail: feed it losses and changes.
std::vector<testing::StoredBatch> seeded_partition(int32_t p, int n, AckMap* acks) {
  std::vector<testing::StoredBatch> out;
  int64_t next = 0;
  for (int i = 0; i < n; ++i) {
    uint64_t seed = workload_seed(0, p, uint32_t(i));
    std::string bytes = testing::expected_stored_batch(seed, next);
    int64_t last = log::decode_batch_header(as_bytes(bytes)).last_offset();
    (*acks)[p][next] = Ack{last, seed};
    out.push_back(testing::StoredBatch{next, last, std::move(bytes)});
    next = last + 1;
  }
  return out;
}

TEST(CrashVerifier, AcceptsAnIntactPartition) {
  AckMap acks;
  auto stored = seeded_partition(1, 5, &acks);
  EXPECT_TRUE(verify_partition(1, stored, acks[1]).empty());
  stored.pop_back();  // an unacknowledged tail may be lost
  acks[1].erase(std::prev(acks[1].end()));
  EXPECT_TRUE(verify_partition(1, stored, acks[1]).empty());
}

TEST(CrashVerifier, ReportsALostAcknowledgedBatch) {
  AckMap acks;
  auto stored = seeded_partition(0, 5, &acks);
  stored.pop_back();
  auto problems = verify_partition(0, stored, acks[0]);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("is missing"), std::string::npos) << problems[0];
}

TEST(CrashVerifier, ReportsAChangedByte) {
  AckMap acks;
  auto stored = seeded_partition(2, 5, &acks);
  stored[2].bytes.back() = char(stored[2].bytes.back() ^ 1);
  auto problems = verify_partition(2, stored, acks[2]);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(join_lines(problems).find("offset " + std::to_string(stored[2].base_offset)), std::string::npos)
      << join_lines(problems);
}

TEST(CrashVerifier, ReportsAGapAndAForeignPartition) {
  AckMap acks;
  auto stored = seeded_partition(0, 5, &acks);
  stored.erase(stored.begin() + 1);
  EXPECT_FALSE(verify_partition(0, stored, {}).empty());
  AckMap other;
  EXPECT_FALSE(verify_partition(1, seeded_partition(0, 2, &other), {}).empty());
}

}  // namespace
}  // namespace evert::crash
