#include "kafka/server/group_records.h"

#include <fmt/format.h>

#include "kafka/protocol/wire.h"

namespace evert::kafka {
namespace {

std::string flatten(Encoder& e) { return e.flatten().value(); }

Decoder decoder_for(std::string_view bytes, std::string& copy) {
  copy.assign(bytes);
  return Decoder(MutableByteSpan(reinterpret_cast<uint8_t*>(copy.data()), copy.size()));
}

Status finish(const Decoder& d, const char* what) {
  if (!d.ok()) return error(ErrorCode::kCorruption, fmt::format("{}: {}", what, d.error_message()));
  if (d.remaining() != 0) return error(ErrorCode::kCorruption, fmt::format("{}: trailing bytes", what));
  return Status::ok();
}

}  // namespace

std::string encode_key(const GroupRecordKey& key) {
  Encoder e;
  if (const auto* k = std::get_if<OffsetKey>(&key)) {
    e.write_uint16(kOffsetKeyType);
    e.write_string(k->group, false);
    e.write_string(k->topic, false);
    e.write_int32(k->partition);
  } else {
    e.write_uint16(kGroupKeyType);
    e.write_string(std::get<GroupKey>(key).group, false);
  }
  return flatten(e);
}

std::string encode_offset_value(const OffsetValue& v) {
  Encoder e;
  e.write_uint16(kGroupRecordVersion);
  e.write_int64(v.offset);
  e.write_nullable_string(v.metadata, false);
  e.write_int64(v.commit_time_ms);
  return flatten(e);
}

std::string encode_group_value(const GroupValue& v) {
  Encoder e;
  e.write_uint16(kGroupRecordVersion);
  e.write_string(v.protocol_type, false);
  e.write_int32(v.generation);
  e.write_string(v.protocol, false);
  e.write_string(v.leader, false);
  e.write_int32(int32_t(v.members.size()));
  for (const auto& m : v.members) {
    e.write_string(m.member_id, false);
    e.write_nullable_string(m.group_instance_id, false);
    e.write_string(m.client_id, false);
    e.write_string(m.client_host, false);
    e.write_int32(m.session_timeout_ms);
    e.write_int32(m.rebalance_timeout_ms);
    e.write_bytes(m.metadata, false);
    e.write_bytes(m.assignment, false);
  }
  return flatten(e);
}

Result<GroupRecordKey> decode_key(std::string_view bytes) {
  std::string copy;
  Decoder d = decoder_for(bytes, copy);
  uint16_t type = d.read_uint16();
  GroupRecordKey key;
  if (type == kOffsetKeyType) {
    OffsetKey k;
    k.group = d.read_string(false);
    k.topic = d.read_string(false);
    k.partition = d.read_int32();
    key = std::move(k);
  } else if (type == kGroupKeyType) {
    key = GroupKey{d.read_string(false)};
  } else {
    return error(ErrorCode::kUnsupported, fmt::format("group record key type {}", type));
  }
  EVERT_RETURN_IF_ERROR(finish(d, "group record key"));
  return key;
}

Result<OffsetValue> decode_offset_value(std::string_view bytes) {
  std::string copy;
  Decoder d = decoder_for(bytes, copy);
  uint16_t version = d.read_uint16();
  if (d.ok() && version != kGroupRecordVersion)
    return error(ErrorCode::kUnsupported, fmt::format("offset record version {}", version));
  OffsetValue v;
  v.offset = d.read_int64();
  v.metadata = d.read_nullable_string(false);
  v.commit_time_ms = d.read_int64();
  EVERT_RETURN_IF_ERROR(finish(d, "offset record"));
  return v;
}

Result<GroupValue> decode_group_value(std::string_view bytes) {
  std::string copy;
  Decoder d = decoder_for(bytes, copy);
  uint16_t version = d.read_uint16();
  if (d.ok() && version != kGroupRecordVersion)
    return error(ErrorCode::kUnsupported, fmt::format("group record version {}", version));
  GroupValue v;
  v.protocol_type = d.read_string(false);
  v.generation = d.read_int32();
  v.protocol = d.read_string(false);
  v.leader = d.read_string(false);
  int32_t n = d.read_array_length(false, 20);
  for (int32_t i = 0; i < n && d.ok(); ++i) {
    StoredMember m;
    m.member_id = d.read_string(false);
    m.group_instance_id = d.read_nullable_string(false);
    m.client_id = d.read_string(false);
    m.client_host = d.read_string(false);
    m.session_timeout_ms = d.read_int32();
    m.rebalance_timeout_ms = d.read_int32();
    m.metadata = d.read_bytes(false);
    m.assignment = d.read_bytes(false);
    v.members.push_back(std::move(m));
  }
  EVERT_RETURN_IF_ERROR(finish(d, "group record"));
  return v;
}

}  // namespace evert::kafka
