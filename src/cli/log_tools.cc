// Offline tools over a data directory: `evert log dump` and `evert log check`.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "io/env.h"
#include "log/file_names.h"
#include "log/log_check.h"
#include "log/offset_index.h"
#include "log/record_batch.h"
#include "log/segment.h"

namespace evert::cli {
namespace {

std::string printable(std::string_view s, size_t max_chars) {
  std::string out;
  for (char ch : s.substr(0, max_chars)) {
    auto c = uint8_t(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(ch);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > max_chars) out += "...";
  return out;
}

void print_batch(uint64_t pos, const log::BatchHeader& h, ByteSpan bytes, bool print_data) {
  int32_t last_seq = h.base_sequence < 0 ? -1 : int32_t(h.base_sequence + h.last_offset_delta);
  fmt::print(
      "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} producerEpoch: {} "
      "partitionLeaderEpoch: {} isTransactional: {} isControl: {} position: {} {}: {} size: {} magic: {} "
      "compresscodec: {} crcValid: {}\n",
      h.base_offset, h.last_offset(), h.records_count, h.base_sequence, last_seq, h.producer_id, h.producer_epoch,
      h.partition_leader_epoch, h.transactional(), h.control(), pos, h.log_append_time() ? "LogAppendTime" : "CreateTime",
      h.max_timestamp, h.total_size(), h.magic, log::compression_name(h.compression()),
      log::validate_batch(bytes).is_ok());
  std::string inflated;
  auto records = log::decode_records(bytes, &inflated);
  if (!records.is_ok()) {
    fmt::print("| records unreadable: {}\n", records.status().message());
    return;
  }
  for (const auto& r : *records) {
    std::string header_keys;
    for (const auto& hd : r.headers) header_keys += (header_keys.empty() ? "" : ",") + printable(hd.key, 64);
    fmt::print("| offset: {} {}: {} keySize: {} valueSize: {} headerKeys: [{}]", r.offset,
               h.log_append_time() ? "LogAppendTime" : "CreateTime", r.timestamp, r.key ? int64_t(r.key->size()) : -1,
               r.value ? int64_t(r.value->size()) : -1, header_keys);
    if (print_data) {
      fmt::print(" key: {} payload: {}", r.key ? printable(*r.key, 256) : "null",
                 r.value ? printable(*r.value, 1024) : "null");
    }
    fmt::print("\n");
  }
}

int dump_segment(io::Env& env, const std::string& path, bool print_data) {
  auto file = env.open_file(path, io::OpenMode::kReadOnly);
  if (!file.is_ok()) {
    fmt::print(stderr, "evert log dump: {}\n", file.status().message());
    return 1;
  }
  auto size = file.value()->size_bytes();
  if (!size.is_ok()) return 1;
  fmt::print("Dumping {}\n", path);
  auto damage = log::scan_batches(**file, 0, *size, false, 0, [&](uint64_t pos, const log::BatchHeader& h, ByteSpan b) {
    print_batch(pos, h, b, print_data);
    return Status::ok();
  });
  if (!damage.is_ok()) {
    fmt::print(stderr, "evert log dump: {}\n", damage.status().message());
    return 1;
  }
  if (*damage) {
    fmt::print("Damaged bytes at position {}: {}\n", damage.value()->position, damage.value()->reason);
    return 1;
  }
  return 0;
}

int dump_index(io::Env& env, const std::string& path, const log::ParsedSegmentFileName& parsed) {
  std::string dir = io::parent_dir(path);
  std::string log_path = io::join_path(dir, log::segment_file_name(parsed.base_offset, log::SegmentFileKind::kLog));
  uint64_t size = env.file_exists(log_path) ? env.file_size(log_path).value() : UINT32_MAX;
  auto entries = log::read_index_files(
      env, io::join_path(dir, log::segment_file_name(parsed.base_offset, log::SegmentFileKind::kOffsetIndex)),
      io::join_path(dir, log::segment_file_name(parsed.base_offset, log::SegmentFileKind::kTimeIndex)),
      parsed.base_offset, size);
  if (!entries.is_ok()) {
    fmt::print(stderr, "evert log dump: {}\n", entries.status().message());
    return 1;
  }
  fmt::print("Dumping {}\n", path);
  if (parsed.kind == log::SegmentFileKind::kOffsetIndex) {
    for (const auto& e : entries->offsets)
      fmt::print("offset: {} position: {}\n", parsed.base_offset + int64_t(e.relative_offset), e.position);
  } else {
    for (const auto& e : entries->times)
      fmt::print("timestamp: {} offset: {}\n", e.timestamp, parsed.base_offset + int64_t(e.relative_offset));
  }
  return 0;
}

int run_dump(const std::string& path, bool print_data) {
  io::Env& env = io::Env::posix();
  if (env.dir_exists(path)) {
    auto names = env.list_dir(path);
    if (!names.is_ok()) {
      fmt::print(stderr, "evert log dump: {}\n", names.status().message());
      return 1;
    }
    std::vector<std::string> logs;
    for (const auto& n : *names) {
      auto p = log::parse_segment_file_name(n);
      if (p && p->kind == log::SegmentFileKind::kLog) logs.push_back(n);
    }
    std::sort(logs.begin(), logs.end());
    if (logs.empty()) {
      fmt::print(stderr, "evert log dump: {} holds no segment files\n", path);
      return 1;
    }
    int rc = 0;
    for (const auto& n : logs) rc |= dump_segment(env, io::join_path(path, n), print_data);
    return rc;
  }
  auto parsed = log::parse_segment_file_name(std::filesystem::path(path).filename().string());
  if (!parsed) {
    fmt::print(stderr, "evert log dump: {} is not a segment (.log), index (.index, .timeindex) or partition directory\n",
               path);
    return 2;
  }
  if (parsed->kind != log::SegmentFileKind::kLog) return dump_index(env, path, *parsed);
  return dump_segment(env, path, print_data);
}

bool holds_segments(io::Env& env, const std::string& dir) {
  auto names = env.list_dir(dir);
  if (!names.is_ok()) return true;  // the check itself reports why
  return std::any_of(names->begin(), names->end(), [](const std::string& n) {
    auto p = log::parse_segment_file_name(n);
    return p && p->kind == log::SegmentFileKind::kLog;
  });
}

int run_check(const std::string& data_dir) {
  io::Env& env = io::Env::posix();
  log::CheckReport report;
  if (env.dir_exists(io::join_path(data_dir, "topics"))) {
    auto r = log::check_data_dir(env, data_dir);
    if (!r.is_ok()) {
      fmt::print(stderr, "evert log check: {}\n", r.status().message());
      return 2;
    }
    report = std::move(r).value();
  } else if (env.dir_exists(data_dir)) {
    // Reporting "0 segments: OK" for a mistyped path would hide the mistake.
    if (!holds_segments(env, data_dir)) {
      fmt::print(stderr,
                 "evert log check: {} is neither an evert data directory (no topics/) nor a partition directory "
                 "(no .log segments)\n",
                 data_dir);
      return 2;
    }
    if (Status s = log::check_partition_dir(env, data_dir, &report); !s.is_ok()) {
      fmt::print(stderr, "evert log check: {}\n", s.message());
      return 2;
    }
  } else {
    fmt::print(stderr, "evert log check: {} is not a directory\n", data_dir);
    return 2;
  }
  for (const auto& p : report.problems) fmt::print("DAMAGED {}\n", p);
  fmt::print("{}: {} topic(s), {} partition(s), {} segment(s), {} batches, {} records, {} bytes: {}\n", data_dir,
             report.topics, report.partitions, report.segments, report.batches, report.records, report.bytes,
             report.ok() ? "OK" : fmt::format("{} problem(s)", report.problems.size()));
  return report.ok() ? 0 : 1;
}

}  // namespace

void add_log_commands(CLI::App& app) {
  CLI::App* log_cmd = app.add_subcommand("log", "Offline tools for a data directory");
  log_cmd->require_subcommand(1);

  auto dump_path = std::make_shared<std::string>();
  auto print_data = std::make_shared<bool>(false);
  CLI::App* dump = log_cmd->add_subcommand("dump", "Print the batches and records of a segment or partition directory");
  dump->add_option("PATH", *dump_path, "A .log/.index/.timeindex file or a partition directory")->required();
  dump->add_flag("--print-data", *print_data, "Also print keys and values");
  dump->callback([dump_path, print_data] { std::exit(run_dump(*dump_path, *print_data)); });

  auto data_dir = std::make_shared<std::string>();
  CLI::App* check = log_cmd->add_subcommand("check", "Verify every batch CRC and index; exit 1 on damage");
  check->add_option("DATA_DIR", *data_dir, "A data directory (or one partition directory)")->required();
  check->callback([data_dir] { std::exit(run_check(*data_dir)); });
}

}  // namespace evert::cli
