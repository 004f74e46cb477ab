#include "kafka/protocol/header.h"

#include "base/bytes.h"
#include "kafka/protocol/messages.h"

namespace evert::kafka {

Result<RequestHeader> decode_request_header_prefix(Decoder& d) {
  RequestHeader h;
  h.api_key = d.read_int16();
  h.api_version = d.read_int16();
  h.correlation_id = d.read_int32();
  if (!d.ok()) return d.status();
  return h;
}

Status decode_request_header_rest(Decoder& d, bool flexible, RequestHeader* header) {
  header->client_id = d.read_nullable_string(false);
  if (flexible) d.read_tagged_fields([](uint32_t, Decoder&) { return false; });
  return d.status();
}

bool is_flexible(int16_t api_key, int16_t version) {
  const ApiInfo* api = find_api(api_key);
  return api != nullptr && api->first_flexible_version >= 0 && version >= api->first_flexible_version;
}

std::vector<Encoder::Part> frame_response(int16_t api_key, int16_t api_version, int32_t correlation_id,
                                          Encoder&& body) {
  Encoder head;
  bool tagged_header = is_flexible(api_key, api_version) && api_key != api_key::kApiVersions;
  uint64_t size = 4 + (tagged_header ? 1 : 0) + body.size_bytes();
  head.write_int32(int32_t(size));
  head.write_int32(correlation_id);
  if (tagged_header) head.write_empty_tagged_fields();
  head.append(std::move(body));
  return std::move(head.parts());
}

}  // namespace evert::kafka
