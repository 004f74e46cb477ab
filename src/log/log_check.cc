#include "log/log_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "log/file_names.h"
#include "log/offset_index.h"
#include "log/segment.h"
#include "log/topic_meta.h"

namespace evert::log {
namespace {

void check_indexes(io::Env& env, const std::string& dir, int64_t base, uint64_t size,
                   const std::map<uint64_t, int64_t>& batch_at, CheckReport* report) {
  std::string opath = io::join_path(dir, segment_file_name(base, SegmentFileKind::kOffsetIndex));
  std::string tpath = io::join_path(dir, segment_file_name(base, SegmentFileKind::kTimeIndex));
  auto entries = read_index_files(env, opath, tpath, base, size);
  if (!entries.is_ok()) {
    report->problems.push_back(fmt::format("{}: {}", opath, entries.status().message()));
    return;
  }
  for (const auto& e : entries->offsets) {
    auto it = batch_at.find(e.position);
    if (it == batch_at.end() || it->second != base + int64_t(e.relative_offset)) {
      report->problems.push_back(fmt::format("{}: entry (offset {}, byte {}) does not name a batch start", opath,
                                             base + int64_t(e.relative_offset), e.position));
      return;
    }
  }
}

}  // namespace

Status check_partition_dir(io::Env& env, const std::string& dir, CheckReport* report) {
  EVERT_ASSIGN_OR_RETURN(auto names, env.list_dir(dir));
  std::vector<int64_t> bases;
  for (const auto& n : names) {
    auto parsed = parse_segment_file_name(n);
    if (parsed && parsed->kind == SegmentFileKind::kLog) bases.push_back(parsed->base_offset);
  }
  std::sort(bases.begin(), bases.end());
  ++report->partitions;
  int64_t next_min = bases.empty() ? 0 : bases.front();
  for (int64_t base : bases) {
    ++report->segments;
    std::string path = io::join_path(dir, segment_file_name(base, SegmentFileKind::kLog));
    if (base < next_min)
      report->problems.push_back(fmt::format("{}: starts at offset {} inside the previous segment (ends {})", path,
                                             base, next_min - 1));
    EVERT_ASSIGN_OR_RETURN(auto file, env.open_file(path, io::OpenMode::kReadOnly));
    EVERT_ASSIGN_OR_RETURN(uint64_t size, file->size_bytes());
    std::map<uint64_t, int64_t> batch_at;
    EVERT_ASSIGN_OR_RETURN(auto damage, scan_batches(*file, 0, size, true, std::max(base, next_min),
                                                     [&](uint64_t pos, const BatchHeader& h, ByteSpan) {
                                                       batch_at[pos] = h.base_offset;
                                                       ++report->batches;
                                                       report->records += h.records_count;
                                                       next_min = h.last_offset() + 1;
                                                       return Status::ok();
                                                     }));
    report->bytes += size;
    if (damage) {
      report->problems.push_back(fmt::format("{} at byte {}: {}", path, damage->position, damage->reason));
      continue;
    }
    check_indexes(env, dir, base, size, batch_at, report);
  }
  return Status::ok();
}

Result<CheckReport> check_data_dir(io::Env& env, const std::string& data_dir) {
  CheckReport report;
  std::string tdir = topics_dir(data_dir);
  if (!env.dir_exists(tdir)) return error(ErrorCode::kNotFound, data_dir + " is not an evert data directory (no topics/)");
  EVERT_ASSIGN_OR_RETURN(auto topics, env.list_dir(tdir));
  std::sort(topics.begin(), topics.end());
  for (const auto& topic : topics) {
    if (!is_valid_topic_name(topic)) continue;
    ++report.topics;
    std::string meta_path = topic_meta_path(data_dir, topic);
    auto text = io::read_whole_file(env, meta_path);
    if (!text.is_ok()) {
      report.problems.push_back(fmt::format("{}: {}", meta_path, text.status().message()));
      continue;
    }
    auto meta = decode_topic_meta(*text);
    if (!meta.is_ok()) {
      report.problems.push_back(fmt::format("{}: {}", meta_path, meta.status().message()));
      continue;
    }
    for (int32_t p = 0; p < meta->partitions; ++p) {
      std::string pdir = partition_dir(data_dir, topic, p);
      if (!env.dir_exists(pdir)) {
        report.problems.push_back(fmt::format("{}: partition directory missing", pdir));
        continue;
      }
      EVERT_RETURN_IF_ERROR(check_partition_dir(env, pdir, &report));
    }
  }
  return report;
}

}  // namespace evert::log
