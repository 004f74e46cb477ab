// Topic configuration: Kafka's names and defaults for what the log honours.
//
// A topic stores only its overrides (topic_meta.h); the effective config is
// the server defaults with those overrides applied. Unknown names and bad
// values are rejected with kInvalidArgument (Kafka's INVALID_CONFIG).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/status.h"

namespace evert::log {

enum class TimestampType { kCreateTime, kLogAppendTime };

struct TopicConfig {
  int64_t segment_bytes = 1ll << 30;             // segment.bytes: roll when a segment would exceed this
  int64_t segment_ms = 7ll * 24 * 3600 * 1000;   // segment.ms: roll when a batch's timestamp is this far past the first's
  int64_t retention_ms = 7ll * 24 * 3600 * 1000; // retention.ms: -1 keeps forever
  int64_t retention_bytes = -1;                  // retention.bytes: per partition, -1 = no limit
  int32_t index_interval_bytes = 4096;           // index.interval.bytes
  int32_t max_message_bytes = 1048588;           // max.message.bytes: largest batch accepted
  TimestampType timestamp_type = TimestampType::kCreateTime;  // message.timestamp.type
};

using ConfigOverrides = std::map<std::string, std::string>;

// Applies `overrides` to `base`; fails on an unknown key or invalid value.
Result<TopicConfig> apply_config_overrides(const TopicConfig& base, const ConfigOverrides& overrides);

// Every config name the log knows, with its value in `config` as a string
// (for DescribeConfigs and `evert topic describe`).
std::map<std::string, std::string> describe_config(const TopicConfig& config);

// How appended data reaches the disk when nobody asks for sync.
struct FlushPolicy {
  enum class Kind { kEveryAppend, kInterval, kNone };
  Kind kind = Kind::kInterval;
  int64_t interval_ms = 1000;
};
// Parses "always", "none" or "interval:<ms>" (also "<ms>ms").
Result<FlushPolicy> parse_flush_policy(const std::string& text);
std::string flush_policy_name(const FlushPolicy& policy);

}  // namespace evert::log
