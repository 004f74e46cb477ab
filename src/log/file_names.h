// Every on-disk name evert uses is built and parsed here (STYLE.md habit 2).
//
// data_dir/
//   .lock                          flock(2)'d while a server owns the directory
//   .clean-shutdown                present only between a clean close and the next open
//   topics/<topic>/topic.meta      partition count and config overrides (topic_meta.h)
//   topics/<topic>/<partition>/    one directory per partition:
//     <base offset, 20 digits>.log        batches (record_batch.h)
//     <base offset, 20 digits>.index      sparse offset index (offset_index.h)
//     <base offset, 20 digits>.timeindex  sparse time index (offset_index.h)
//     <base offset>.log.damaged-<pos>     bytes cut out of a segment by recovery
//     <offset, 20 digits>.producers        idempotent-producer state (producer_state.h)
//   *.tmp                          half-written files; removed on open
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace evert::log {

enum class SegmentFileKind { kLog, kOffsetIndex, kTimeIndex };

std::string segment_file_name(int64_t base_offset, SegmentFileKind kind);
std::string damaged_file_name(int64_t base_offset, uint64_t position);

struct ParsedSegmentFileName {
  int64_t base_offset;
  SegmentFileKind kind;
};
// Recognizes the three segment file kinds; nullopt for anything else.
std::optional<ParsedSegmentFileName> parse_segment_file_name(const std::string& name);

bool is_temp_file_name(const std::string& name);

std::string producer_snapshot_file_name(int64_t offset);
std::optional<int64_t> parse_producer_snapshot_file_name(const std::string& name);

std::string topics_dir(const std::string& data_dir);
std::string topic_dir(const std::string& data_dir, const std::string& topic);
std::string topic_meta_path(const std::string& data_dir, const std::string& topic);
std::string partition_dir(const std::string& data_dir, const std::string& topic, int32_t partition);
std::string lock_file_path(const std::string& data_dir);
std::string clean_shutdown_path(const std::string& data_dir);

// Kafka's rule: [a-zA-Z0-9._-]{1,249}, and not "." or "..". Also keeps the
// name safe as a directory name.
bool is_valid_topic_name(const std::string& name);
// Parses a partition directory name ("0", "17"); nullopt if it is not one.
std::optional<int32_t> parse_partition_dir_name(const std::string& name);

}  // namespace evert::log
