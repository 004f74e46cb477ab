#include "log/topic_meta.h"

#include <fmt/format.h>

#include <charconv>
#include <sstream>

namespace evert::log {

std::string encode_topic_meta(const TopicMeta& meta) {
  std::string out = fmt::format("evert-topic-meta {}\npartitions={}\n", kTopicMetaVersion, meta.partitions);
  for (const auto& [k, v] : meta.overrides) out += fmt::format("config.{}={}\n", k, v);
  return out;
}

Result<TopicMeta> decode_topic_meta(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != fmt::format("evert-topic-meta {}", kTopicMetaVersion))
    return error(ErrorCode::kCorruption, fmt::format("topic.meta: unexpected first line '{}'", line));
  TopicMeta meta;
  bool have_partitions = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) return error(ErrorCode::kCorruption, "topic.meta: line without '=': " + line);
    std::string key = line.substr(0, eq);
    std::string value = line.substr(eq + 1);
    if (key == "partitions") {
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), meta.partitions);
      if (ec != std::errc() || ptr != value.data() + value.size() || meta.partitions < 1 ||
          meta.partitions > kPartitionsMax)
        return error(ErrorCode::kCorruption, "topic.meta: bad partition count " + value);
      have_partitions = true;
    } else if (key.rfind("config.", 0) == 0) {
      meta.overrides[key.substr(7)] = value;
    } else {
      return error(ErrorCode::kCorruption, "topic.meta: unknown key " + key);
    }
  }
  if (!have_partitions) return error(ErrorCode::kCorruption, "topic.meta: no partition count");
  return meta;
}

}  // namespace evert::log
