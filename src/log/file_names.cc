#include "log/file_names.h"

#include <fmt/format.h>

#include <charconv>

#include "io/env.h"

namespace evert::log {
namespace {
constexpr size_t kOffsetDigits = 20;

const char* suffix(SegmentFileKind kind) {
  switch (kind) {
    case SegmentFileKind::kLog: return ".log";
    case SegmentFileKind::kOffsetIndex: return ".index";
    case SegmentFileKind::kTimeIndex: return ".timeindex";
  }
  return "";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

std::string segment_file_name(int64_t base_offset, SegmentFileKind kind) {
  return fmt::format("{:020d}{}", base_offset, suffix(kind));
}

std::string damaged_file_name(int64_t base_offset, uint64_t position) {
  return fmt::format("{:020d}.log.damaged-{}", base_offset, position);
}

std::optional<ParsedSegmentFileName> parse_segment_file_name(const std::string& name) {
  if (name.size() <= kOffsetDigits) return std::nullopt;
  for (SegmentFileKind kind : {SegmentFileKind::kLog, SegmentFileKind::kOffsetIndex, SegmentFileKind::kTimeIndex}) {
    std::string sfx = suffix(kind);
    if (name.size() != kOffsetDigits + sfx.size() || !ends_with(name, sfx)) continue;
    int64_t base = 0;
    auto [ptr, ec] = std::from_chars(name.data(), name.data() + kOffsetDigits, base);
    if (ec != std::errc() || ptr != name.data() + kOffsetDigits || base < 0) return std::nullopt;
    return ParsedSegmentFileName{base, kind};
  }
  return std::nullopt;
}

bool is_temp_file_name(const std::string& name) { return ends_with(name, ".tmp"); }

std::string producer_snapshot_file_name(int64_t offset) { return fmt::format("{:020d}.producers", offset); }

std::optional<int64_t> parse_producer_snapshot_file_name(const std::string& name) {
  static const std::string kSuffix = ".producers";
  if (name.size() != kOffsetDigits + kSuffix.size() || !ends_with(name, kSuffix)) return std::nullopt;
  int64_t offset = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + kOffsetDigits, offset);
  if (ec != std::errc() || ptr != name.data() + kOffsetDigits || offset < 0) return std::nullopt;
  return offset;
}

std::string topics_dir(const std::string& data_dir) { return io::join_path(data_dir, "topics"); }
std::string topic_dir(const std::string& data_dir, const std::string& topic) {
  return io::join_path(topics_dir(data_dir), topic);
}
std::string topic_meta_path(const std::string& data_dir, const std::string& topic) {
  return io::join_path(topic_dir(data_dir, topic), "topic.meta");
}
std::string partition_dir(const std::string& data_dir, const std::string& topic, int32_t partition) {
  return io::join_path(topic_dir(data_dir, topic), std::to_string(partition));
}
std::string lock_file_path(const std::string& data_dir) { return io::join_path(data_dir, ".lock"); }
std::string clean_shutdown_path(const std::string& data_dir) {
  return io::join_path(data_dir, ".clean-shutdown");
}

bool is_valid_topic_name(const std::string& name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<int32_t> parse_partition_dir_name(const std::string& name) {
  if (name.empty() || name.size() > 9) return std::nullopt;
  int32_t p = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), p);
  if (ec != std::errc() || ptr != name.data() + name.size() || p < 0) return std::nullopt;
  if (std::to_string(p) != name) return std::nullopt;  // no leading zeros
  return p;
}

}  // namespace evert::log
