#include "log/topic_config.h"

#include <fmt/format.h>

#include <charconv>

namespace evert::log {
namespace {

Result<int64_t> parse_int(const std::string& key, const std::string& value, int64_t min, int64_t max) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size() || value.empty())
    return error(ErrorCode::kInvalidArgument, fmt::format("{}: '{}' is not an integer", key, value));
  if (v < min || v > max)
    return error(ErrorCode::kInvalidArgument, fmt::format("{}: {} is outside [{}, {}]", key, v, min, max));
  return v;
}

}  // namespace

Result<TopicConfig> apply_config_overrides(const TopicConfig& base, const ConfigOverrides& overrides) {
  TopicConfig c = base;
  for (const auto& [key, value] : overrides) {
    if (key == "segment.bytes") {
      // Index positions are 32-bit; Kafka's own limit is INT32_MAX too.
      EVERT_ASSIGN_OR_RETURN(c.segment_bytes, parse_int(key, value, 14, INT32_MAX));
    } else if (key == "segment.ms") {
      EVERT_ASSIGN_OR_RETURN(c.segment_ms, parse_int(key, value, 1, INT64_MAX));
    } else if (key == "retention.ms") {
      EVERT_ASSIGN_OR_RETURN(c.retention_ms, parse_int(key, value, -1, INT64_MAX));
    } else if (key == "retention.bytes") {
      EVERT_ASSIGN_OR_RETURN(c.retention_bytes, parse_int(key, value, -1, INT64_MAX));
    } else if (key == "index.interval.bytes") {
      EVERT_ASSIGN_OR_RETURN(int64_t v, parse_int(key, value, 0, INT32_MAX));
      c.index_interval_bytes = int32_t(v);
    } else if (key == "max.message.bytes") {
      EVERT_ASSIGN_OR_RETURN(int64_t v, parse_int(key, value, 0, 64ll << 20));
      c.max_message_bytes = int32_t(v);
    } else if (key == "message.timestamp.type") {
      if (value == "CreateTime") {
        c.timestamp_type = TimestampType::kCreateTime;
      } else if (value == "LogAppendTime") {
        c.timestamp_type = TimestampType::kLogAppendTime;
      } else {
        return error(ErrorCode::kInvalidArgument,
                     fmt::format("message.timestamp.type: '{}' is not CreateTime or LogAppendTime", value));
      }
    } else if (key == "cleanup.policy") {
      if (value != "delete")
        return error(ErrorCode::kInvalidArgument,
                     fmt::format("cleanup.policy: '{}' is not supported yet (only 'delete')", value));
    } else {
      return error(ErrorCode::kInvalidArgument, fmt::format("unknown topic config '{}'", key));
    }
  }
  return c;
}

std::map<std::string, std::string> describe_config(const TopicConfig& c) {
  return {
      {"cleanup.policy", "delete"},
      {"index.interval.bytes", std::to_string(c.index_interval_bytes)},
      {"max.message.bytes", std::to_string(c.max_message_bytes)},
      {"message.timestamp.type", c.timestamp_type == TimestampType::kCreateTime ? "CreateTime" : "LogAppendTime"},
      {"retention.bytes", std::to_string(c.retention_bytes)},
      {"retention.ms", std::to_string(c.retention_ms)},
      {"segment.bytes", std::to_string(c.segment_bytes)},
      {"segment.ms", std::to_string(c.segment_ms)},
  };
}

Result<FlushPolicy> parse_flush_policy(const std::string& text) {
  FlushPolicy p;
  if (text == "always") {
    p.kind = FlushPolicy::Kind::kEveryAppend;
    return p;
  }
  if (text == "none") {
    p.kind = FlushPolicy::Kind::kNone;
    return p;
  }
  std::string ms = text;
  if (ms.rfind("interval:", 0) == 0) ms = ms.substr(9);
  if (ms.size() > 2 && ms.compare(ms.size() - 2, 2, "ms") == 0) ms.resize(ms.size() - 2);
  auto v = parse_int("flush", ms, 1, 24ll * 3600 * 1000);
  if (!v.is_ok())
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("flush policy '{}': expected always, none or interval:<ms>", text));
  p.kind = FlushPolicy::Kind::kInterval;
  p.interval_ms = *v;
  return p;
}

std::string flush_policy_name(const FlushPolicy& p) {
  switch (p.kind) {
    case FlushPolicy::Kind::kEveryAppend: return "always";
    case FlushPolicy::Kind::kNone: return "none";
    case FlushPolicy::Kind::kInterval: return fmt::format("interval:{}", p.interval_ms);
  }
  return "?";
}

}  // namespace evert::log
