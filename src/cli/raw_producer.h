// `evert bench produce --raw`: a producer without a client library. It
// builds its record batches once and sends them as Produce requests over
// one connection, several in flight, so that what it measures is the broker
// and the disk under it, not a client's per-record work (librdkafka needs
// more than a core for 100-byte records at a few million per second, on the
// same two cores as the server). One broker only: every request goes to the
// bootstrap server, which must lead the topic's partitions (evert does).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "cli/latency_histogram.h"

namespace evert::cli {

struct RawProduceOptions {
  std::string host;
  std::string port;
  std::string topic;
  int32_t partitions = 1;  // requests go round robin over partitions 0..n-1
  int64_t records = 0;
  int16_t acks = 1;               // 1 or -1 (all); acks=0 has no responses to count
  int32_t batch_records = 1000;   // records per batch, one batch per request
  int32_t in_flight = 5;          // requests sent and not yet answered
  int32_t timeout_ms = 30'000;    // the broker's ack timeout, and the longest wait for an answer
};

struct RawProduceResult {
  int64_t records = 0;
  uint64_t elapsed_ns = 0;  // first send to last answer
  LatencyHistogram latency;  // per request: send -> answer
};

// Sends `records` records of `payload` bytes each; fails on the first
// connection error, broker error code or timeout. `progress` runs on the
// caller's thread about once a second with the records acknowledged so far.
Result<RawProduceResult> raw_produce(const RawProduceOptions& o, const std::string& payload,
                                     const std::function<void(int64_t acked)>& progress);

}  // namespace evert::cli
