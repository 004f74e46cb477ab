// The evert binary as an operator uses it: `evert log dump`, `evert log
// check` and `evert serve` start-up, shutdown and data-directory locking.
// Every server started here is stopped by its PID.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "log/file_names.h"
#include "log/log_manager.h"
#include "support/log_contents.h"
#include "support/subprocess.h"
#include "testing/temp_dir.h"

namespace evert::cli {
namespace {

using testing::ChildProcess;
using testing::run_process;

constexpr const char* kTopic = "orders";
constexpr int64_t kServeStartTimeoutMs = 15'000;
constexpr int64_t kServeStopTimeoutMs = 15'000;

struct BatchSpec {
  int64_t base_offset;
  int64_t last_offset;
  int64_t segment_base;
};

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + needle.size())) ++n;
  return n;
}

// Batch i holds records i*10 .. i*10+count-1: key "key-<i>-<j>", value
// "value-<i>-<j>", except that batch 0 also has a null-key record with a
// binary value (checks the escaping of --print-data).
std::string make_batch(int i, int count) {
  log::BatchBuilder b(1'700'000'000'000 + i);
  for (int j = 0; j < count; ++j)
    b.add("key-" + std::to_string(i) + "-" + std::to_string(j), "value-" + std::to_string(i) + "-" + std::to_string(j),
          1'700'000'000'000 + i * 10 + j);
  if (i == 0) b.add(std::nullopt, std::string_view("a\x01" "b"), 1'700'000'000'000);
  return b.finish();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = tmp_.file("data");
    log::LogOptions o;
    o.data_dir = data_;
    o.background = false;
    log::OpenReport report;
    auto m = log::LogManager::open(o, &report);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    ASSERT_TRUE(m.value()->create_topic(kTopic, 2, {{"segment.bytes", "1024"}, {"retention.ms", "-1"}}).is_ok());
    auto p = m.value()->partition(kTopic, 0);
    for (int i = 0; i < 12; ++i) {
      std::string batch = make_batch(i, 3 + i % 4);
      records_ += 3 + i % 4 + (i == 0 ? 1 : 0);
      auto r = p->append(MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()), batch.size()));
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      batches_.push_back({r->base_offset, r->last_offset, p->segments().back()->base_offset()});
    }
    ASSERT_GT(p->segment_count(), 2u) << "want several segments in the partition";
    ASSERT_TRUE(m.value()->close().is_ok());
  }

  std::string partition_dir() const { return log::partition_dir(data_, kTopic, 0); }
  std::string segment(int64_t base) const {
    return io::join_path(partition_dir(), log::segment_file_name(base, log::SegmentFileKind::kLog));
  }
  static std::vector<std::string> evert(std::vector<std::string> args) {
    args.insert(args.begin(), EVERT_BINARY);
    return args;
  }
  std::vector<std::string> serve_args() const {
    return evert({"serve", "--data-dir", data_, "--kafka-port", "0", "--pg-port", "0", "--http-port", "0"});
  }
  // Waits until the server's stderr shows it is ready (or it exits).
  ::testing::AssertionResult wait_until_ready(ChildProcess& server, const std::string& err_path) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kServeStartTimeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
      if (testing::read_text_file(err_path).find("evert ready") != std::string::npos)
        return ::testing::AssertionSuccess();
      if (auto st = server.wait_for(0))
        return ::testing::AssertionFailure() << "server exited early: " << testing::describe_wait_status(*st) << "\n"
                                             << testing::read_text_file(err_path);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return ::testing::AssertionFailure() << "server not ready in time:\n" << testing::read_text_file(err_path);
  }
  void expect_data_intact() {
    log::LogOptions o;
    o.data_dir = data_;
    o.background = false;
    log::OpenReport report;
    auto m = log::LogManager::open(o, &report);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    EXPECT_TRUE(report.clean_shutdown);
    EXPECT_TRUE(report.problems.empty());
    auto stored = testing::read_partition(*m.value()->partition(kTopic, 0));
    ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
    ASSERT_EQ(stored->size(), batches_.size());
    for (size_t i = 0; i < batches_.size(); ++i) {
      std::string want = make_batch(int(i), 3 + int(i) % 4);
      log::set_base_offset(MutableByteSpan(reinterpret_cast<uint8_t*>(want.data()), want.size()),
                           batches_[i].base_offset);
      EXPECT_TRUE((*stored)[i].bytes == want) << "batch " << i;
    }
    ASSERT_TRUE(m.value()->close().is_ok());
  }

  testing::TempDir tmp_;
  std::string data_;
  std::vector<BatchSpec> batches_;
  int records_ = 0;
};

std::string batch_line_prefix(const BatchSpec& b) {
  return "baseOffset: " + std::to_string(b.base_offset) + " lastOffset: " + std::to_string(b.last_offset) + " ";
}

TEST_F(CliTest, DumpSegmentPrintsEachBatchOfThatSegment) {
  auto r = run_process(evert({"log", "dump", segment(0)}));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("Dumping " + segment(0)), std::string::npos) << r.out;
  size_t in_first = 0;
  for (const auto& b : batches_) {
    bool here = b.segment_base == 0;
    in_first += here;
    EXPECT_EQ(r.out.find(batch_line_prefix(b)) != std::string::npos, here) << batch_line_prefix(b) << "\n" << r.out;
  }
  EXPECT_EQ(count_of(r.out, "baseOffset: "), in_first);
  EXPECT_EQ(count_of(r.out, "crcValid: true"), in_first);
  EXPECT_EQ(count_of(r.out, "crcValid: false"), 0u);
  EXPECT_EQ(count_of(r.out, " key: "), 0u) << "keys printed without --print-data";
}

TEST_F(CliTest, DumpPartitionDirPrintsEverySegment) {
  auto r = run_process(evert({"log", "dump", partition_dir()}));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  size_t segments = 0;
  for (const auto& e : std::filesystem::directory_iterator(partition_dir()))
    segments += e.path().extension() == ".log";
  EXPECT_EQ(count_of(r.out, "Dumping "), segments);
  for (const auto& b : batches_) EXPECT_NE(r.out.find(batch_line_prefix(b)), std::string::npos) << r.out;
  EXPECT_EQ(count_of(r.out, "crcValid: true"), batches_.size());
  EXPECT_EQ(count_of(r.out, "| offset: "), size_t(records_));
}

TEST_F(CliTest, DumpPrintDataShowsKeysAndValues) {
  auto r = run_process(evert({"log", "dump", "--print-data", partition_dir()}));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  for (int i = 0; i < int(batches_.size()); ++i)
    for (int j = 0; j < 3 + i % 4; ++j) {
      std::string kv = "key: key-" + std::to_string(i) + "-" + std::to_string(j) + " payload: value-" +
                       std::to_string(i) + "-" + std::to_string(j) + "\n";
      EXPECT_NE(r.out.find(kv), std::string::npos) << kv;
    }
  EXPECT_NE(r.out.find("key: null payload: a\\x01b\n"), std::string::npos) << r.out;
}

TEST_F(CliTest, DumpShowsABadCrc) {
  std::string path = segment(0);
  {
    std::string bytes = testing::read_text_file(path);
    bytes[bytes.size() - 3] = char(bytes[bytes.size() - 3] ^ 0x10);
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  auto r = run_process(evert({"log", "dump", path}));
  EXPECT_EQ(count_of(r.out, "crcValid: false"), 1u) << r.describe();
  auto check = run_process(evert({"log", "check", data_}));
  EXPECT_EQ(check.exit_code, 1) << check.describe();
  EXPECT_NE(check.out.find("DAMAGED " + path + " at byte "), std::string::npos) << check.describe();
}

TEST_F(CliTest, DumpOfABogusPathFailsWithAMessage) {
  for (const std::string& path : {tmp_.file("no-such-thing"), tmp_.file("00000000000000000000.log"),
                                  tmp_.path() + "/nowhere/00000000000000000000.index"}) {
    auto r = run_process(evert({"log", "dump", path}));
    EXPECT_NE(r.exit_code, 0) << path << ": " << r.describe();
    EXPECT_NE(r.err.find(path.substr(path.rfind('/') + 1)), std::string::npos) << path << ": " << r.describe();
  }
  std::filesystem::create_directory(tmp_.file("empty"));
  auto r = run_process(evert({"log", "dump", tmp_.file("empty")}));
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.err.find("no segment files"), std::string::npos) << r.describe();
}

TEST_F(CliTest, CheckPassesOnADataDirAndAPartitionDir) {
  auto r = run_process(evert({"log", "check", data_}));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("1 topic(s), 2 partition(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": OK"), std::string::npos) << r.out;
  auto p = run_process(evert({"log", "check", partition_dir()}));
  EXPECT_EQ(p.exit_code, 0) << p.describe();
  EXPECT_NE(p.out.find(std::to_string(batches_.size()) + " batches"), std::string::npos) << p.out;
}

TEST_F(CliTest, CheckOfSomethingElseExitsTwo) {
  std::filesystem::create_directory(tmp_.file("plain"));
  auto r = run_process(evert({"log", "check", tmp_.file("plain")}));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("neither"), std::string::npos) << r.describe();
  auto missing = run_process(evert({"log", "check", tmp_.file("missing")}));
  EXPECT_EQ(missing.exit_code, 2) << missing.describe();
  EXPECT_NE(missing.err.find("missing"), std::string::npos) << missing.describe();
}

TEST_F(CliTest, ServeOpensTheDataDirAndStopsCleanlyOnSigterm) {
  std::string err = tmp_.file("serve.stderr");
  auto server = ChildProcess::spawn(serve_args(), false, tmp_.file("serve.stdout"), err);
  ASSERT_TRUE(wait_until_ready(server, err));
  std::string log = testing::read_text_file(err);
  EXPECT_NE(log.find("data directory " + data_ + ": 1 topic(s), 2 partition(s)"), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(log::clean_shutdown_path(data_))) << "marker kept while running";

  ASSERT_TRUE(server.signal(SIGTERM));
  auto status = server.wait_for(kServeStopTimeoutMs);
  ASSERT_TRUE(status.has_value()) << "server did not stop on SIGTERM";
  EXPECT_EQ(testing::describe_wait_status(*status), "exit 0") << testing::read_text_file(err);
  EXPECT_TRUE(std::filesystem::exists(log::clean_shutdown_path(data_)));
  EXPECT_NE(testing::read_text_file(err).find("stopped cleanly"), std::string::npos);
  expect_data_intact();
}

TEST_F(CliTest, SecondServeOnTheSameDataDirFailsOnTheLock) {
  std::string err = tmp_.file("first.stderr");
  auto first = ChildProcess::spawn(serve_args(), false, tmp_.file("first.stdout"), err);
  ASSERT_TRUE(wait_until_ready(first, err));

  auto second = run_process(serve_args(), kServeStartTimeoutMs);
  EXPECT_FALSE(second.timed_out) << "the second server started serving";
  EXPECT_NE(second.exit_code, 0) << second.describe();
  EXPECT_NE(second.err.find("lock"), std::string::npos) << second.describe();
  EXPECT_FALSE(std::filesystem::exists(log::clean_shutdown_path(data_))) << "second server wrote the marker";
  EXPECT_FALSE(first.wait_for(0).has_value()) << "first server died: " << testing::read_text_file(err);

  ASSERT_TRUE(first.signal(SIGTERM));
  auto status = first.wait_for(kServeStopTimeoutMs);
  ASSERT_TRUE(status.has_value()) << "server did not stop on SIGTERM";
  EXPECT_EQ(testing::describe_wait_status(*status), "exit 0") << testing::read_text_file(err);
  EXPECT_TRUE(std::filesystem::exists(log::clean_shutdown_path(data_)));
  auto check = run_process(evert({"log", "check", data_}));
  EXPECT_EQ(check.exit_code, 0) << check.describe();
  expect_data_intact();
}

}  // namespace
}  // namespace evert::cli
