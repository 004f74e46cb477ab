// The records of the internal topic __consumer_offsets, byte by byte.
// Encoded with the Kafka wire primitives (big-endian; string = i16 length +
// bytes, nullable string = -1 for null, bytes = i32 length + bytes).
//
//   key, offset commit:   u16 type = 1, string group, string topic, i32 partition
//   key, group metadata:  u16 type = 2, string group
//   value, offset commit: u16 version = 1, i64 offset, nullable string metadata,
//                         i64 commit time (ms)
//   value, group:         u16 version = 1, string protocol type, i32 generation,
//                         string protocol, string leader, i32 member count, then
//                         per member: string member id, nullable string instance
//                         id, string client id, string client host, i32 session
//                         timeout ms, i32 rebalance timeout ms, bytes protocol
//                         metadata, bytes assignment
//   a null value (tombstone) deletes what the key names.
//
// Replay applies records in offset order; the last record of a key wins.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/status.h"

namespace evert::kafka {

inline constexpr uint16_t kOffsetKeyType = 1;
inline constexpr uint16_t kGroupKeyType = 2;
inline constexpr uint16_t kGroupRecordVersion = 1;

struct OffsetKey {
  std::string group;
  std::string topic;
  int32_t partition = 0;
};
struct GroupKey {
  std::string group;
};
using GroupRecordKey = std::variant<OffsetKey, GroupKey>;

struct OffsetValue {
  int64_t offset = 0;
  std::optional<std::string> metadata;
  int64_t commit_time_ms = 0;
};

struct StoredMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::string metadata;
  std::string assignment;
};

struct GroupValue {
  std::string protocol_type;
  int32_t generation = 0;
  std::string protocol;
  std::string leader;
  std::vector<StoredMember> members;
};

std::string encode_key(const GroupRecordKey& key);
std::string encode_offset_value(const OffsetValue& value);
std::string encode_group_value(const GroupValue& value);
Result<GroupRecordKey> decode_key(std::string_view bytes);
Result<OffsetValue> decode_offset_value(std::string_view bytes);
Result<GroupValue> decode_group_value(std::string_view bytes);

}  // namespace evert::kafka
