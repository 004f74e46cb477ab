// topic.meta: what a topic is, beyond its data. A text file, written
// atomically (io::write_file_atomically), one item per line:
//
//   evert-topic-meta 1          format name and version
//   partitions=<N>
//   config.<name>=<value>       one line per config override
//
// Unknown lines in a newer version are an error, not silently dropped.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "log/topic_config.h"

namespace evert::log {

inline constexpr int kTopicMetaVersion = 1;
inline constexpr int32_t kPartitionsMax = 10000;

struct TopicMeta {
  int32_t partitions = 1;
  ConfigOverrides overrides;
};

std::string encode_topic_meta(const TopicMeta& meta);
Result<TopicMeta> decode_topic_meta(const std::string& text);

}  // namespace evert::log
