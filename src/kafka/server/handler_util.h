// Helpers shared by the api handlers (internal to kafka/server).
#pragma once

#include <string>

#include "kafka/server/broker.h"

namespace evert::kafka {

// Decodes the body of `req` into `out`; false (with the reason) when the
// bytes do not match the message layout.
template <typename T>
bool decode_body(Broker::Request& req, T& out, std::string* why) {
  Decoder d(MutableByteSpan(req.frame.data() + req.body_offset, req.frame.size() - req.body_offset));
  out.decode(d, req.header.api_version);
  if (!d.ok()) {
    *why = "malformed body: " + d.error_message();
    return false;
  }
  return true;
}

}  // namespace evert::kafka

// Decodes the request body or closes the connection (framing is lost).
#define EVERT_DECODE_OR_CLOSE(req, msg)                                        \
  do {                                                                         \
    std::string why_;                                                          \
    if (!decode_body(*(req), (msg), &why_)) return fail_request(*(req), why_); \
  } while (0)
