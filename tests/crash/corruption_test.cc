// Damage done to a closed data directory on the real file system (torn
// tails, flipped bits, lost indexes), then reopened through LogManager: what
// recovery keeps must read back byte for byte, what it cuts must be reported
// by file and position, and `evert log check` must agree before and after.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "log/file_names.h"
#include "log/log_manager.h"
#include "log/offset_index.h"
#include "support/log_contents.h"
#include "support/seeded_batches.h"
#include "support/subprocess.h"
#include "testing/temp_dir.h"

namespace evert::log {
namespace {
namespace L = batch_layout;

constexpr const char* kTopic = "t";

// One written batch and where it landed.
struct Written {
  uint64_t seed = 0;
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  int64_t segment_base = 0;
  uint64_t position = 0;  // in its segment's .log
  uint64_t size_bytes = 0;
};

LogOptions options_for(const std::string& data_dir) {
  LogOptions o;
  o.data_dir = data_dir;
  o.background = false;
  return o;
}

std::string partition0(const std::string& data_dir) { return partition_dir(data_dir, kTopic, 0); }
std::string segment_path(const std::string& data_dir, int64_t base, SegmentFileKind kind) {
  return io::join_path(partition0(data_dir), segment_file_name(base, kind));
}
std::string log_path(const std::string& data_dir, int64_t base) {
  return segment_path(data_dir, base, SegmentFileKind::kLog);
}

std::unique_ptr<LogManager> open_log(const LogOptions& options, OpenReport* report) {
  auto m = LogManager::open(options, report);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  return m.is_ok() ? std::move(m).value() : nullptr;
}

// Appends one seeded batch and records where it went.
Written append_seeded(Partition& p, uint64_t seed) {
  std::string batch = testing::make_seeded_batch(seed);
  auto r = p.append(MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()), batch.size()));
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  Written w;
  w.seed = seed;
  w.base_offset = r.is_ok() ? r->base_offset : -1;
  w.last_offset = r.is_ok() ? r->last_offset : -1;
  w.size_bytes = batch.size();
  const auto& active = *p.segments().back();
  w.segment_base = active.base_offset();
  w.position = active.size_bytes() - batch.size();
  return w;
}

// Creates topic `t` (one partition) and appends `count` seeded batches;
// closes the log cleanly.
std::vector<Written> write_topic(const std::string& data_dir, int count, const ConfigOverrides& overrides) {
  std::vector<Written> written;
  OpenReport report;
  auto m = open_log(options_for(data_dir), &report);
  if (!m) return written;
  auto t = m->create_topic(kTopic, 1, overrides);
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  auto p = m->partition(kTopic, 0);
  for (int i = 0; i < count; ++i) written.push_back(append_seeded(*p, 1000 + uint64_t(i)));
  EXPECT_TRUE(m->close().is_ok());
  return written;
}

// Requires the partition to hold exactly `expected`, each batch byte for byte.
void expect_partition_holds(const Partition& p, const std::vector<Written>& expected) {
  auto stored = testing::read_partition(p);
  ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
  ASSERT_EQ(stored->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& s = (*stored)[i];
    EXPECT_EQ(s.base_offset, expected[i].base_offset) << "batch " << i;
    EXPECT_EQ(s.last_offset, expected[i].last_offset) << "batch " << i;
    EXPECT_TRUE(s.bytes == testing::expected_stored_batch(expected[i].seed, expected[i].base_offset))
        << "batch " << i << " at offset " << expected[i].base_offset << " differs";
  }
  if (!expected.empty()) {
    EXPECT_EQ(p.high_watermark(), expected.back().last_offset + 1);
  }
}

testing::ProcessResult evert_check(const std::string& dir) {
  return testing::run_process({EVERT_BINARY, "log", "check", dir});
}

void flip_bit(const std::string& path, uint64_t byte, int bit) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, off_t(byte)), 1);
  c = char(c ^ (1 << bit));
  ASSERT_EQ(::pwrite(fd, &c, 1, off_t(byte)), 1);
  ::close(fd);
}

std::string read_file(const std::string& path) { return testing::read_text_file(path); }

bool has_problem_naming(const OpenReport& report, const std::string& file, uint64_t position) {
  std::string at = "at byte " + std::to_string(position);
  for (const auto& p : report.problems)
    if (p.find(file) != std::string::npos && p.find(at) != std::string::npos) return true;
  return false;
}

std::string problems_of(const OpenReport& report) {
  std::string s;
  for (const auto& p : report.problems) s += "  " + p + "\n";
  return s;
}

// After recovery the log keeps working: an append lands at the high
// watermark, and a clean reopen gives the same contents and a passing check.
void expect_appends_and_reopens(const std::string& data_dir, std::vector<Written> expected) {
  {
    OpenReport report;
    auto m = open_log(options_for(data_dir), &report);
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(report.clean_shutdown);
    auto p = m->partition(kTopic, 0);
    int64_t hwm = p->high_watermark();
    expected.push_back(append_seeded(*p, 99'999));
    EXPECT_EQ(expected.back().base_offset, hwm);
    ASSERT_TRUE(m->close().is_ok());
  }
  OpenReport report;
  auto m = open_log(options_for(data_dir), &report);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(report.problems.empty()) << problems_of(report);
  expect_partition_holds(*m->partition(kTopic, 0), expected);
  ASSERT_TRUE(m->close().is_ok());
  auto check = evert_check(data_dir);
  EXPECT_EQ(check.exit_code, 0) << check.describe();
}

// How the damaged directory is reopened.
enum class Reopen {
  kVerifyAll,         // verify_all_on_open = true; the shutdown was clean
  kUncleanShutdown,   // default options; .clean-shutdown deleted as by a crash
};

LogOptions reopen_options(const std::string& data_dir, Reopen how) {
  LogOptions o = options_for(data_dir);
  if (how == Reopen::kVerifyAll) {
    o.verify_all_on_open = true;
  } else {
    std::filesystem::remove(clean_shutdown_path(data_dir));
  }
  return o;
}

std::string reopen_name(Reopen how) { return how == Reopen::kVerifyAll ? "VerifyAll" : "UncleanShutdown"; }

// ---- (a) a torn tail: the active .log cut short ----

enum class Cut { kInsideLastHeader, kInsideLastRecords, kInsideMiddleBatch, kAtMiddleBoundary };

struct TruncationCase {
  Cut cut;
  bool unclean;
};

std::string truncation_case_name(const ::testing::TestParamInfo<TruncationCase>& info) {
  static const char* const kNames[] = {"InsideLastHeader", "InsideLastRecords", "InsideMiddleBatch",
                                       "AtMiddleBoundary"};
  return std::string(kNames[int(info.param.cut)]) + (info.param.unclean ? "Unclean" : "Clean");
}

class TruncatedSegmentTest : public ::testing::TestWithParam<TruncationCase> {};

TEST_P(TruncatedSegmentTest, RecoveryDropsTheTornBatchAndKeepsEarlierOnes) {
  testing::TempDir tmp;
  const std::string data = tmp.file("data");
  auto written = write_topic(data, 20, {{"index.interval.bytes", "1024"}});
  ASSERT_EQ(written.size(), 20u);
  ASSERT_EQ(written.back().segment_base, 0) << "expected one segment";
  const std::string path = log_path(data, 0);
  const Written& last = written.back();
  const Written& middle = written[10];
  uint64_t cut_at = 0;
  size_t kept = 0;
  switch (GetParam().cut) {
    case Cut::kInsideLastHeader: cut_at = last.position + 30, kept = 19; break;
    case Cut::kInsideLastRecords: cut_at = last.position + last.size_bytes / 2, kept = 19; break;
    case Cut::kInsideMiddleBatch: cut_at = middle.position + middle.size_bytes / 2, kept = 10; break;
    case Cut::kAtMiddleBoundary: cut_at = middle.position, kept = 10; break;
  }
  ASSERT_EQ(::truncate(path.c_str(), off_t(cut_at)), 0);
  bool torn = GetParam().cut != Cut::kAtMiddleBoundary;
  if (torn) {
    auto before = evert_check(data);
    EXPECT_EQ(before.exit_code, 1) << before.describe();
    EXPECT_NE(before.out.find(path), std::string::npos) << before.describe();
  }
  if (GetParam().unclean) std::filesystem::remove(clean_shutdown_path(data));

  OpenReport report;
  auto m = open_log(options_for(data), &report);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(report.clean_shutdown, !GetParam().unclean);
  if (torn) {
    EXPECT_TRUE(has_problem_naming(report, path, written[kept].position)) << problems_of(report);
  }
  std::vector<Written> expected(written.begin(), written.begin() + std::ptrdiff_t(kept));
  auto p = m->partition(kTopic, 0);
  expect_partition_holds(*p, expected);
  EXPECT_EQ(p->segments().back()->size_bytes(), written[kept].position);
  ASSERT_TRUE(m->close().is_ok());
  EXPECT_EQ(std::filesystem::file_size(path), written[kept].position) << "torn bytes left in the file";
  auto after = evert_check(data);
  EXPECT_EQ(after.exit_code, 0) << after.describe();
  expect_appends_and_reopens(data, expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cuts, TruncatedSegmentTest,
    ::testing::Values(TruncationCase{Cut::kInsideLastHeader, false}, TruncationCase{Cut::kInsideLastHeader, true},
                      TruncationCase{Cut::kInsideLastRecords, false}, TruncationCase{Cut::kInsideLastRecords, true},
                      TruncationCase{Cut::kInsideMiddleBatch, false}, TruncationCase{Cut::kInsideMiddleBatch, true},
                      TruncationCase{Cut::kAtMiddleBoundary, false}, TruncationCase{Cut::kAtMiddleBoundary, true}),
    truncation_case_name);

// ---- (b) one flipped bit in a batch in the middle of a segment ----

// Which byte of the damaged batch gets a bit flipped.
enum class Field { kRecords, kCrc, kAttributes, kMagic, kBatchLength };

uint64_t field_byte(Field f, const Written& w) {
  switch (f) {
    case Field::kRecords: return w.position + L::kRecords + (w.size_bytes - L::kRecords) / 2;
    case Field::kCrc: return w.position + L::kCrc + 2;
    case Field::kAttributes: return w.position + L::kAttributes + 1;
    case Field::kMagic: return w.position + L::kMagic;
    case Field::kBatchLength: return w.position + L::kBatchLength + 3;
  }
  return 0;
}

struct BitFlipCase {
  Field field;
  Reopen reopen;
};

std::string bit_flip_case_name(const ::testing::TestParamInfo<BitFlipCase>& info) {
  static const char* const kNames[] = {"Records", "Crc", "Attributes", "Magic", "BatchLength"};
  return std::string(kNames[int(info.param.field)]) + reopen_name(info.param.reopen);
}

class BitFlipTest : public ::testing::TestWithParam<BitFlipCase> {};

// Checks a directory where batch `damaged` (of `written`) had a bit flipped:
// `evert log check` names it, the reopen cuts it and keeps every other batch.
void expect_bit_flip_recovered(const std::string& data, const std::vector<Written>& written, size_t damaged,
                               Reopen how) {
  const Written& bad = written[damaged];
  const std::string path = log_path(data, bad.segment_base);
  std::string damaged_bytes = read_file(path).substr(bad.position, bad.size_bytes);

  auto before = evert_check(data);
  EXPECT_EQ(before.exit_code, 1) << before.describe();
  EXPECT_NE(before.out.find(path + " at byte " + std::to_string(bad.position)), std::string::npos)
      << before.describe();

  OpenReport report;
  auto m = open_log(reopen_options(data, how), &report);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(has_problem_naming(report, path, bad.position)) << problems_of(report);
  std::vector<Written> expected = written;
  expected.erase(expected.begin() + std::ptrdiff_t(damaged));
  auto p = m->partition(kTopic, 0);
  expect_partition_holds(*p, expected);
  // A read of a cut offset skips forward to the next batch kept, as Kafka does.
  auto r = p->read(bad.base_offset, 1);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_TRUE(r->slice.has_value());
  std::string first(12, '\0');
  ASSERT_TRUE(r->slice->file->read_at(r->slice->position, MutableByteSpan(reinterpret_cast<uint8_t*>(first.data()), 8))
                  .is_ok());
  EXPECT_EQ(int64_t(load_be64(reinterpret_cast<const uint8_t*>(first.data()))), written[damaged + 1].base_offset);
  ASSERT_TRUE(m->close().is_ok());

  // The cut bytes are kept aside, not thrown away.
  std::string aside = io::join_path(partition0(data), damaged_file_name(bad.segment_base, bad.position));
  EXPECT_EQ(read_file(aside), damaged_bytes) << aside;
  auto after = evert_check(data);
  EXPECT_EQ(after.exit_code, 0) << after.describe();
  expect_appends_and_reopens(data, expected);
}

TEST_P(BitFlipTest, InTheActiveSegmentIsCutAndLaterBatchesKept) {
  testing::TempDir tmp;
  const std::string data = tmp.file("data");
  auto written = write_topic(data, 20, {{"index.interval.bytes", "1024"}});
  ASSERT_EQ(written.size(), 20u);
  ASSERT_EQ(written.back().segment_base, 0) << "expected one segment";
  flip_bit(log_path(data, 0), field_byte(GetParam().field, written[10]), 0);
  expect_bit_flip_recovered(data, written, 10, GetParam().reopen);
}

INSTANTIATE_TEST_SUITE_P(
    Fields, BitFlipTest,
    ::testing::Values(BitFlipCase{Field::kRecords, Reopen::kVerifyAll}, BitFlipCase{Field::kRecords, Reopen::kUncleanShutdown},
                      BitFlipCase{Field::kCrc, Reopen::kVerifyAll}, BitFlipCase{Field::kCrc, Reopen::kUncleanShutdown},
                      BitFlipCase{Field::kAttributes, Reopen::kVerifyAll},
                      BitFlipCase{Field::kAttributes, Reopen::kUncleanShutdown},
                      BitFlipCase{Field::kMagic, Reopen::kVerifyAll}, BitFlipCase{Field::kMagic, Reopen::kUncleanShutdown},
                      BitFlipCase{Field::kBatchLength, Reopen::kVerifyAll},
                      BitFlipCase{Field::kBatchLength, Reopen::kUncleanShutdown}),
    bit_flip_case_name);

// A closed (rolled) segment is only validated when asked to verify all.
TEST(BitFlipInRolledSegment, IsCutWhenVerifyingAllAndLaterSegmentsKept) {
  testing::TempDir tmp;
  const std::string data = tmp.file("data");
  auto written = write_topic(data, 60, {{"index.interval.bytes", "1024"}, {"segment.bytes", "16384"}});
  ASSERT_EQ(written.size(), 60u);
  // The middle batch of the second segment.
  int64_t second = -1;
  std::vector<size_t> in_second;
  for (size_t i = 0; i < written.size(); ++i) {
    if (written[i].segment_base != 0 && second < 0) second = written[i].segment_base;
    if (second >= 0 && written[i].segment_base == second) in_second.push_back(i);
  }
  ASSERT_GE(in_second.size(), 3u);
  ASSERT_NE(written.back().segment_base, second) << "the second segment must not be the active one";
  size_t damaged = in_second[in_second.size() / 2];
  flip_bit(log_path(data, second), field_byte(Field::kRecords, written[damaged]), 5);
  expect_bit_flip_recovered(data, written, damaged, Reopen::kVerifyAll);
}

// ---- (c) a lost index ----

IndexEntries index_entries(const std::string& data, int64_t base) {
  auto size = std::filesystem::file_size(log_path(data, base));
  auto e = read_index_files(io::Env::posix(), segment_path(data, base, SegmentFileKind::kOffsetIndex),
                            segment_path(data, base, SegmentFileKind::kTimeIndex), base, size);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : IndexEntries{};
}

// Offset lookups land on the batch holding the offset; timestamp lookups
// agree with a scan of every record written.
void expect_lookups_right(const Partition& p, const std::vector<Written>& written) {
  struct Rec {
    int64_t offset;
    int64_t timestamp;
  };
  std::vector<Rec> records;
  for (const auto& w : written) {
    std::string bytes = testing::expected_stored_batch(w.seed, w.base_offset);
    auto decoded = decode_records(as_bytes(bytes));
    ASSERT_TRUE(decoded.is_ok());
    for (const auto& r : *decoded) records.push_back({r.offset, r.timestamp});
    for (int64_t o = w.base_offset; o <= w.last_offset; ++o) {
      auto r = p.read(o, 1);
      ASSERT_TRUE(r.is_ok() && r->slice) << "read " << o;
      uint8_t head[8];
      ASSERT_TRUE(r->slice->file->read_at(r->slice->position, MutableByteSpan(head, 8)).is_ok());
      ASSERT_EQ(int64_t(load_be64(head)), w.base_offset) << "read(" << o << ") starts at the wrong batch";
    }
  }
  for (size_t i = 0; i < records.size(); i += 3) {
    for (int64_t target : {records[i].timestamp, records[i].timestamp + 1}) {
      std::optional<int64_t> want;
      for (const auto& r : records)
        if (r.timestamp >= target) {
          want = r.offset;
          break;
        }
      auto got = p.offset_for_timestamp(target);
      ASSERT_TRUE(got.is_ok()) << got.status().to_string();
      ASSERT_EQ(*got, want) << "offset_for_timestamp(" << target << ")";
    }
  }
}

class LostIndexTest : public ::testing::TestWithParam<SegmentFileKind> {};

TEST_P(LostIndexTest, IsRebuiltWithTheSameEntriesAndLookupsStayRight) {
  testing::TempDir tmp;
  const std::string data = tmp.file("data");
  auto written = write_topic(data, 40, {{"index.interval.bytes", "1024"}, {"segment.bytes", "16384"}});
  ASSERT_EQ(written.size(), 40u);
  int64_t active = written.back().segment_base;
  ASSERT_NE(active, 0) << "expected more than one segment";
  auto first_before = index_entries(data, 0);
  auto active_before = index_entries(data, active);
  ASSERT_FALSE(first_before.offsets.empty());
  for (int64_t base : {int64_t(0), active})
    ASSERT_TRUE(std::filesystem::remove(segment_path(data, base, GetParam())));

  OpenReport report;
  auto m = open_log(options_for(data), &report);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(report.clean_shutdown);
  expect_partition_holds(*m->partition(kTopic, 0), written);
  expect_lookups_right(*m->partition(kTopic, 0), written);
  ASSERT_TRUE(m->close().is_ok());

  for (int64_t base : {int64_t(0), active}) EXPECT_TRUE(std::filesystem::exists(segment_path(data, base, GetParam())));
  auto first_after = index_entries(data, 0);
  auto active_after = index_entries(data, active);
  auto same = [](const IndexEntries& a, const IndexEntries& b) {
    return std::equal(a.offsets.begin(), a.offsets.end(), b.offsets.begin(), b.offsets.end(),
                      [](auto& x, auto& y) { return x.relative_offset == y.relative_offset && x.position == y.position; }) &&
           std::equal(a.times.begin(), a.times.end(), b.times.begin(), b.times.end(), [](auto& x, auto& y) {
             return x.relative_offset == y.relative_offset && x.timestamp == y.timestamp;
           });
  };
  EXPECT_TRUE(same(first_before, first_after)) << "rebuilt index of the first segment differs";
  EXPECT_TRUE(same(active_before, active_after)) << "rebuilt index of the active segment differs";
  auto check = evert_check(data);
  EXPECT_EQ(check.exit_code, 0) << check.describe();
}

INSTANTIATE_TEST_SUITE_P(Kinds, LostIndexTest,
                         ::testing::Values(SegmentFileKind::kOffsetIndex, SegmentFileKind::kTimeIndex),
                         [](const ::testing::TestParamInfo<SegmentFileKind>& info) {
                           return std::string(info.param == SegmentFileKind::kOffsetIndex ? "OffsetIndex" : "TimeIndex");
                         });

}  // namespace
}  // namespace evert::log
