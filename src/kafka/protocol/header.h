// Kafka request and response headers, and response framing.
//
//   request header v1: api_key i16, api_version i16, correlation_id i32,
//                      client_id NULLABLE_STRING (always the i16-length form)
//   request header v2: v1 + tagged fields          (flexible request versions)
//   response header v0: correlation_id i32
//   response header v1: v0 + tagged fields          (flexible response versions,
//                                                    except ApiVersions: always v0)
//   frame: i32 size of what follows, then header and body.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kafka/protocol/wire.h"

namespace evert::kafka {

struct RequestHeader {
  int16_t api_key = 0;
  int16_t api_version = 0;
  int32_t correlation_id = 0;
  std::optional<std::string> client_id;
};

// Reads the fixed part (key, version, correlation id); fails on short input.
Result<RequestHeader> decode_request_header_prefix(Decoder& d);
// Reads client_id and, for flexible request versions, the tag buffer.
Status decode_request_header_rest(Decoder& d, bool flexible, RequestHeader* header);

// True when `version` of `api_key` uses flexible encoding (per kApis).
bool is_flexible(int16_t api_key, int16_t version);

// Builds a whole response frame: size, header, then the parts of `body`.
std::vector<Encoder::Part> frame_response(int16_t api_key, int16_t api_version, int32_t correlation_id,
                                          Encoder&& body);

}  // namespace evert::kafka
