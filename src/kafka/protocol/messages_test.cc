// Tests of the generated Kafka messages (messages.spec -> kafka_codegen.py):
// round trips across versions, byte layouts assembled by hand from the
// protocol description, and every truncation and many corruptions of the
// encoded bytes, which must fail cleanly rather than crash.
#include "kafka/protocol/messages.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "kafka/protocol/alloc_probe_test_util.h"
#include "kafka/protocol/header.h"

namespace evert::kafka {
namespace {

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string unhex(std::string_view h) {
  std::string out;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += char(nibble(h[i]) << 4 | nibble(h[i + 1]));
  return out;
}

// Hex of a string's bytes, for building expected layouts readably.
std::string hexs(std::string_view s) { return hex(s); }

MutableByteSpan span_of(std::string& s) { return MutableByteSpan(reinterpret_cast<uint8_t*>(s.data()), s.size()); }

template <typename T>
std::string encode(const T& msg, int16_t v) {
  Encoder e;
  msg.encode(e, v);
  auto flat = e.flatten();
  EXPECT_TRUE(flat.is_ok());
  return flat.is_ok() ? *flat : std::string();
}

// Decodes `bytes` (which must outlive the result when it holds records).
template <typename T>
T decode_all(std::string& bytes, int16_t v) {
  T msg;
  Decoder d(span_of(bytes));
  msg.decode(d, v);
  EXPECT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(d.remaining(), 0u) << "bytes left after the message";
  return msg;
}

// Encodes, decodes and re-encodes: the two encodings must be equal. Returns
// the decoded message (its records point into *bytes_out).
template <typename T>
T round_trip(const T& msg, int16_t v, std::string* bytes_out) {
  *bytes_out = encode(msg, v);
  std::string copy = *bytes_out;
  T back = decode_all<T>(*bytes_out, v);
  EXPECT_EQ(hex(encode(back, v)), hex(copy)) << "re-encoding differs at v" << v;
  return back;
}

// Every strict prefix of a valid encoding must fail to decode, without
// crashing (the sanitizer build checks that no byte outside is touched).
template <typename T>
void expect_every_prefix_fails(const std::string& bytes, int16_t v) {
  for (size_t n = 0; n < bytes.size(); ++n) {
    // A separate allocation of exactly n bytes, so ASan sees any overread.
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + ptrdiff_t(n));
    T msg;
    Decoder d(MutableByteSpan(prefix.data(), prefix.size()));
    msg.decode(d, v);
    EXPECT_FALSE(d.ok()) << "a prefix of " << n << " of " << bytes.size() << " bytes decoded at v" << v;
  }
}

// Overwrites each byte with a few telling values; decoding must fail or
// succeed, never crash, and a success must encode again.
template <typename T>
void expect_corruptions_are_harmless(const std::string& bytes, int16_t v) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t value : {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff}) {
      std::vector<uint8_t> mutated(bytes.begin(), bytes.end());
      mutated[i] = value;
      T msg;
      Decoder d(MutableByteSpan(mutated.data(), mutated.size()));
      msg.decode(d, v);
      if (d.ok()) (void)encode(msg, v);
    }
  }
}

template <typename T>
void expect_robust(const std::string& bytes, int16_t v) {
  expect_every_prefix_fails<T>(bytes, v);
  expect_corruptions_are_harmless<T>(bytes, v);
}

// ------------------------------------------------------------- ApiVersions

TEST(ApiVersionsMessage, V0RequestIsEmptyAndV0ResponseRoundTrips) {
  ApiVersionsRequest req;
  EXPECT_EQ(encode(req, 0), "");
  ApiVersionsResponse resp;
  resp.api_keys.push_back({0, 3, 7});
  resp.api_keys.push_back({18, 0, 3});
  resp.throttle_time_ms = 99;  // absent in v0
  std::string bytes;
  auto back = round_trip(resp, 0, &bytes);
  EXPECT_EQ(hex(bytes), "0000" "00000002" "000000030007" "001200000003");
  ASSERT_EQ(back.api_keys.size(), 2u);
  EXPECT_EQ(back.api_keys[1].api_key, 18);
  EXPECT_EQ(back.api_keys[1].max_version, 3);
  EXPECT_EQ(back.throttle_time_ms, 0);
  expect_robust<ApiVersionsResponse>(bytes, 0);
}

TEST(ApiVersionsMessage, V1PutsThrottleLast) {
  ApiVersionsResponse resp;
  resp.api_keys.push_back({1, 4, 11});
  resp.throttle_time_ms = 5;
  std::string bytes;
  round_trip(resp, 1, &bytes);
  EXPECT_EQ(hex(bytes), "0000" "00000001" "00010004000b" "00000005");
}

TEST(ApiVersionsMessage, LibrdkafkaOpeningRequestGolden) {
  // kafka-protocol.md section 3: librdkafka's first request on a connection.
  std::string frame_body = unhex("0012" "0003" "0000002a" "0007") + "rdkafka" + unhex("00") + unhex("0b") +
                           "librdkafka" + unhex("06") + "2.0.2" + unhex("00");
  Decoder d(span_of(frame_body));
  auto header = decode_request_header_prefix(d);
  ASSERT_TRUE(header.is_ok()) << header.status().to_string();
  EXPECT_EQ(header->api_key, 18);
  EXPECT_EQ(header->api_version, 3);
  EXPECT_EQ(header->correlation_id, 42);
  ASSERT_TRUE(is_flexible(header->api_key, header->api_version));
  ASSERT_TRUE(decode_request_header_rest(d, true, &*header).is_ok());
  EXPECT_EQ(header->client_id, std::optional<std::string>("rdkafka"));
  ApiVersionsRequest req;
  req.decode(d, 3);
  ASSERT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(d.remaining(), 0u);
  EXPECT_EQ(req.client_software_name, "librdkafka");
  EXPECT_EQ(req.client_software_version, "2.0.2");
  // And the encoder writes the same body.
  EXPECT_EQ(hex(encode(req, 3)), "0b" + hexs("librdkafka") + "06" + hexs("2.0.2") + "00");
  std::string body = encode(req, 3);
  expect_robust<ApiVersionsRequest>(body, 3);
}

TEST(ApiVersionsMessage, V3RequestSkipsUnknownTags) {
  std::string body = unhex("02") + "a" + unhex("02") + "b" + unhex("02" "07" "02" "ffff" "2a" "00");
  ApiVersionsRequest req = decode_all<ApiVersionsRequest>(body, 3);
  EXPECT_EQ(req.client_software_name, "a");
  EXPECT_EQ(req.client_software_version, "b");
}

TEST(ApiVersionsMessage, V3ReplyLayoutGolden) {
  // Header v0 (no tag buffer, even though v3 is flexible), error 0, compact
  // array of N + 1, each entry key/min/max + empty tags, throttle, empty tags.
  ApiVersionsResponse resp;
  resp.api_keys.push_back({0, 3, 7});
  resp.api_keys.push_back({1, 4, 11});
  resp.api_keys.push_back({18, 0, 3});
  Encoder body;
  resp.encode(body, 3);
  auto parts = frame_response(api_key::kApiVersions, 3, 0x01020304, std::move(body));
  std::string frame;
  for (const auto& p : parts) frame += std::get<std::string>(p);
  std::string expected_body = "0000" "04" "00000003000700" "00010004000b00" "00120000000300" "00000000" "00";
  std::string expected = "00000021" "01020304" + expected_body;
  EXPECT_EQ(hex(frame), expected);
  EXPECT_EQ(expected_body.size() / 2 + 4, 0x21u);
}

TEST(ApiVersionsMessage, V3TaggedFieldsRoundTrip) {
  ApiVersionsResponse resp;
  resp.api_keys.push_back({18, 0, 3});
  resp.throttle_time_ms = 7;
  resp.supported_features.push_back({"metadata.version", 1, 7});
  resp.finalized_features_epoch = 12;
  resp.finalized_features.push_back({"metadata.version", 7, 1});
  resp.zk_migration_ready = true;
  std::string bytes;
  auto back = round_trip(resp, 3, &bytes);
  ASSERT_EQ(back.supported_features.size(), 1u);
  EXPECT_EQ(back.supported_features[0].name, "metadata.version");
  EXPECT_EQ(back.supported_features[0].max_version, 7);
  EXPECT_EQ(back.finalized_features_epoch, 12);
  ASSERT_EQ(back.finalized_features.size(), 1u);
  EXPECT_EQ(back.finalized_features[0].max_version_level, 7);
  EXPECT_TRUE(back.zk_migration_ready);
  // Tags are written in ascending order: 0, 1, 2, 3.
  std::string tail = "04" "00" "17" "02" "11" + hexs("metadata.version") + "0001" "0007" "00" "01" "08" "000000000000000c";
  EXPECT_NE(hex(bytes).find(tail), std::string::npos) << hex(bytes);
  EXPECT_EQ(hex(bytes).substr(hex(bytes).size() - 6), "030101");
  expect_robust<ApiVersionsResponse>(bytes, 3);
  // Defaults are left out: the tag buffer is then a single zero.
  ApiVersionsResponse plain;
  EXPECT_EQ(hex(encode(plain, 3)), "0000" "01" "00000000" "00");
  // Tags not read in v3 are not written in v2.
  EXPECT_EQ(hex(encode(resp, 2)), "0000" "00000001" "001200000003" "00000007");
}

TEST(ApiVersionsMessage, UnsupportedVersionAnswerIsV0WithOurRange) {
  ApiVersionsResponse resp;
  resp.error_code = 35;
  resp.api_keys.push_back({18, 0, 3});
  Encoder body;
  resp.encode(body, 0);
  auto parts = frame_response(api_key::kApiVersions, 0, 9, std::move(body));
  std::string frame;
  for (const auto& p : parts) frame += std::get<std::string>(p);
  EXPECT_EQ(hex(frame), "00000010" "00000009" "0023" "00000001" "001200000003");
}

// ------------------------------------------------------------- headers

TEST(RequestHeader, ShortPrefixesFail) {
  std::string full = unhex("0003" "0001" "00000007" "ffff");
  for (size_t n = 0; n < 8; ++n) {
    std::string prefix = full.substr(0, n);
    Decoder d(span_of(prefix));
    EXPECT_FALSE(decode_request_header_prefix(d).is_ok()) << n;
  }
  Decoder d(span_of(full));
  auto h = decode_request_header_prefix(d);
  ASSERT_TRUE(h.is_ok());
  ASSERT_TRUE(decode_request_header_rest(d, false, &*h).is_ok());
  EXPECT_EQ(h->client_id, std::nullopt);
  // A flexible header without its tag buffer is truncated.
  std::string no_tags = full;
  Decoder d2(span_of(no_tags));
  auto h2 = decode_request_header_prefix(d2);
  ASSERT_TRUE(h2.is_ok());
  EXPECT_FALSE(decode_request_header_rest(d2, true, &*h2).is_ok());
  // A client id longer than the frame.
  std::string lying = unhex("0003" "0001" "00000007" "0100" "abc");
  Decoder d3(span_of(lying));
  auto h3 = decode_request_header_prefix(d3);
  ASSERT_TRUE(h3.is_ok());
  EXPECT_FALSE(decode_request_header_rest(d3, false, &*h3).is_ok());
}

TEST(RequestHeader, FlexibleVersionsComeFromTheSpec) {
  EXPECT_TRUE(is_flexible(api_key::kApiVersions, 3));
  EXPECT_FALSE(is_flexible(api_key::kApiVersions, 2));
  EXPECT_FALSE(is_flexible(api_key::kProduce, 7));
  EXPECT_FALSE(is_flexible(api_key::kFetch, 11));
  EXPECT_TRUE(is_flexible(api_key::kOffsetFetch, 6));
  EXPECT_FALSE(is_flexible(api_key::kOffsetFetch, 5));
  EXPECT_FALSE(is_flexible(12345, 3));
  EXPECT_EQ(find_api(12345), nullptr);
  ASSERT_NE(find_api(api_key::kApiVersions), nullptr);
  EXPECT_EQ(find_api(api_key::kApiVersions)->max_version, 3);
}

TEST(ResponseHeader, FlexibleResponsesCarryATagBuffer) {
  Encoder body;
  body.write_int16(0);
  auto parts = frame_response(api_key::kIncrementalAlterConfigs, 1, 5, std::move(body));
  std::string frame;
  for (const auto& p : parts) frame += std::get<std::string>(p);
  EXPECT_EQ(hex(frame), "00000007" "00000005" "00" "0000");
  Encoder body0;
  body0.write_int16(0);
  auto parts0 = frame_response(api_key::kIncrementalAlterConfigs, 0, 5, std::move(body0));
  std::string frame0;
  for (const auto& p : parts0) frame0 += std::get<std::string>(p);
  EXPECT_EQ(hex(frame0), "00000006" "00000005" "0000");
}

// ------------------------------------------------------------- Metadata

TEST(MetadataMessage, RequestNullVersusEmptyTopics) {
  MetadataRequest all;  // topics = null
  EXPECT_EQ(hex(encode(all, 1)), "ffffffff");
  MetadataRequest none;
  none.topics.emplace();
  EXPECT_EQ(hex(encode(none, 0)), "00000000");
  EXPECT_EQ(hex(encode(none, 1)), "00000000");
  MetadataRequest one;
  one.topics.emplace().push_back({"t"});
  EXPECT_EQ(hex(encode(one, 0)), "00000001" "000174");

  std::string null_v1 = unhex("ffffffff");
  EXPECT_FALSE(decode_all<MetadataRequest>(null_v1, 1).topics.has_value());
  std::string empty_v1 = unhex("00000000");
  auto e1 = decode_all<MetadataRequest>(empty_v1, 1);
  ASSERT_TRUE(e1.topics.has_value());
  EXPECT_TRUE(e1.topics->empty());
  // Null is not a v0 value.
  std::string null_v0 = unhex("ffffffff");
  MetadataRequest bad;
  Decoder d(span_of(null_v0));
  bad.decode(d, 0);
  EXPECT_FALSE(d.ok());
}

TEST(MetadataMessage, V4AutoCreationFlag) {
  MetadataRequest req;
  req.topics.emplace().push_back({"orders"});
  req.allow_auto_topic_creation = false;
  std::string bytes;
  auto back = round_trip(req, 4, &bytes);
  EXPECT_EQ(hex(bytes), "00000001" "0006" + hexs("orders") + "00");
  EXPECT_FALSE(back.allow_auto_topic_creation);
  // Before v4 the flag is not on the wire and decodes as true.
  std::string v3 = encode(req, 3);
  EXPECT_EQ(hex(v3), "00000001" "0006" + hexs("orders"));
  EXPECT_TRUE(decode_all<MetadataRequest>(v3, 3).allow_auto_topic_creation);
  expect_robust<MetadataRequest>(bytes, 4);
}

MetadataResponse sample_metadata() {
  MetadataResponse resp;
  resp.throttle_time_ms = 1;
  resp.brokers.push_back({0, "h", 9092, std::nullopt});
  resp.cluster_id = "c";
  resp.controller_id = 0;
  auto& t = resp.topics.emplace_back();
  t.name = "t";
  auto& p = t.partitions.emplace_back();
  p.partition_index = 0;
  p.leader_id = 0;
  p.replica_nodes = {0};
  p.isr_nodes = {0};
  p.offline_replicas = {};
  auto& missing = resp.topics.emplace_back();
  missing.error_code = 3;
  missing.name = "gone";
  return resp;
}

TEST(MetadataMessage, ResponseLayoutsV0V1V2) {
  MetadataResponse resp = sample_metadata();
  const std::string partition = "0000" "00000000" "00000000" "00000001" "00000000" "00000001" "00000000";
  std::string bytes0;
  round_trip(resp, 0, &bytes0);
  EXPECT_EQ(hex(bytes0), "00000001" "00000000" "000168" "00002384"
                         "00000002" "0000" "000174" "00000001" + partition +
                         "0003" "0004" + hexs("gone") + "00000000");
  std::string bytes1;
  round_trip(resp, 1, &bytes1);
  EXPECT_EQ(hex(bytes1), "00000001" "00000000" "000168" "00002384" "ffff" "00000000"
                         "00000002" "0000" "000174" "00" "00000001" + partition +
                         "0003" "0004" + hexs("gone") + "00" "00000000");
  std::string bytes2;
  round_trip(resp, 2, &bytes2);
  EXPECT_EQ(hex(bytes2).substr(0, 48), "00000001" "00000000" "000168" "00002384" "ffff" "000163" "00000000");
  expect_robust<MetadataResponse>(bytes1, 1);
}

TEST(MetadataMessage, ResponseRoundTripsEveryVersion) {
  MetadataResponse resp = sample_metadata();
  resp.brokers[0].rack = "r1";
  for (int16_t v = MetadataResponse::kMinVersion; v <= MetadataResponse::kMaxVersion; ++v) {
    std::string bytes;
    auto back = round_trip(resp, v, &bytes);
    ASSERT_EQ(back.topics.size(), 2u) << v;
    EXPECT_EQ(back.topics[1].error_code, 3) << v;
    EXPECT_EQ(back.brokers[0].port, 9092) << v;
    EXPECT_EQ(back.brokers[0].rack, v >= 1 ? std::optional<std::string>("r1") : std::nullopt) << v;
    EXPECT_EQ(back.throttle_time_ms, v >= 3 ? 1 : 0) << v;
    expect_every_prefix_fails<MetadataResponse>(bytes, v);
  }
}

// ------------------------------------------------------------- Produce

ProduceRequest sample_produce() {
  ProduceRequest req;
  req.acks = -1;
  req.timeout_ms = 30000;
  auto& t = req.topic_data.emplace_back();
  t.name = "t";
  auto& p = t.partition_data.emplace_back();
  p.index = 2;
  p.records.owned = "BATCH";
  auto& q = t.partition_data.emplace_back();
  q.index = 3;
  q.records.is_null = true;
  return req;
}

TEST(ProduceMessage, V3RequestGolden) {
  ProduceRequest req = sample_produce();
  std::string bytes;
  auto back = round_trip(req, 3, &bytes);
  EXPECT_EQ(hex(bytes), "ffff" "ffff" "00007530" "00000001" "000174" "00000002"
                        "00000002" "00000005" + hexs("BATCH") + "00000003" "ffffffff");
  ASSERT_EQ(back.topic_data.size(), 1u);
  ASSERT_EQ(back.topic_data[0].partition_data.size(), 2u);
  const Records& r = back.topic_data[0].partition_data[0].records;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.data.data()), r.data.size()), "BATCH");
  // The records point into the request buffer.
  EXPECT_GE(static_cast<void*>(r.data.data()), static_cast<void*>(bytes.data()));
  EXPECT_LT(static_cast<void*>(r.data.data()), static_cast<void*>(bytes.data() + bytes.size()));
  EXPECT_TRUE(back.topic_data[0].partition_data[1].records.is_null);
  EXPECT_FALSE(back.transactional_id.has_value());
  EXPECT_EQ(back.acks, -1);
  expect_robust<ProduceRequest>(bytes, 3);
}

TEST(ProduceMessage, V7RequestHasTheV3Layout) {
  ProduceRequest req = sample_produce();
  req.transactional_id = "tx";
  EXPECT_EQ(hex(encode(req, 7)), hex(encode(req, 3)));
  std::string bytes;
  auto back = round_trip(req, 7, &bytes);
  EXPECT_EQ(back.transactional_id, std::optional<std::string>("tx"));
  expect_robust<ProduceRequest>(bytes, 7);
}

TEST(ProduceMessage, ResponseV3AndV7) {
  ProduceResponse resp;
  auto& t = resp.responses.emplace_back();
  t.name = "t";
  auto& p = t.partition_responses.emplace_back();
  p.index = 0;
  p.error_code = 2;
  p.base_offset = -1;
  p.log_append_time_ms = -1;
  p.log_start_offset = 10;
  resp.throttle_time_ms = 0;
  std::string bytes3;
  round_trip(resp, 3, &bytes3);
  EXPECT_EQ(hex(bytes3), "00000001" "000174" "00000001" "00000000" "0002" "ffffffffffffffff" "ffffffffffffffff"
                         "00000000");
  std::string bytes7;
  auto back = round_trip(resp, 7, &bytes7);
  EXPECT_EQ(hex(bytes7), "00000001" "000174" "00000001" "00000000" "0002" "ffffffffffffffff" "ffffffffffffffff"
                         "000000000000000a" "00000000");
  EXPECT_EQ(back.responses[0].partition_responses[0].log_start_offset, 10);
  expect_robust<ProduceResponse>(bytes7, 7);
}

// ------------------------------------------------------------- Fetch

FetchRequest sample_fetch() {
  FetchRequest req;
  req.replica_id = -1;
  req.max_wait_ms = 500;
  req.min_bytes = 1;
  req.max_bytes = 52428800;
  req.isolation_level = 1;
  req.session_id = 0;
  req.session_epoch = -1;
  auto& t = req.topics.emplace_back();
  t.topic = "t";
  auto& p = t.partitions.emplace_back();
  p.partition = 0;
  p.current_leader_epoch = 4;
  p.fetch_offset = 17;
  p.log_start_offset = -1;
  p.partition_max_bytes = 1048576;
  auto& f = req.forgotten_topics_data.emplace_back();
  f.topic = "old";
  f.partitions = {1, 2};
  req.rack_id = "rack";
  return req;
}

TEST(FetchMessage, RequestV4Golden) {
  FetchRequest req = sample_fetch();
  std::string bytes;
  auto back = round_trip(req, 4, &bytes);
  EXPECT_EQ(hex(bytes), "ffffffff" "000001f4" "00000001" "03200000" "01"
                        "00000001" "000174" "00000001" "00000000" "0000000000000011" "00100000");
  EXPECT_TRUE(back.forgotten_topics_data.empty());
  EXPECT_EQ(back.topics[0].partitions[0].current_leader_epoch, -1);
  EXPECT_EQ(back.rack_id, "");
  expect_robust<FetchRequest>(bytes, 4);
}

TEST(FetchMessage, RequestV7AndV11) {
  FetchRequest req = sample_fetch();
  std::string bytes7;
  auto back7 = round_trip(req, 7, &bytes7);
  EXPECT_EQ(hex(bytes7), "ffffffff" "000001f4" "00000001" "03200000" "01" "00000000" "ffffffff"
                         "00000001" "000174" "00000001" "00000000" "0000000000000011" "ffffffffffffffff" "00100000"
                         "00000001" "0003" + hexs("old") + "00000002" "00000001" "00000002");
  ASSERT_EQ(back7.forgotten_topics_data.size(), 1u);
  EXPECT_EQ(back7.forgotten_topics_data[0].partitions, (std::vector<int32_t>{1, 2}));
  expect_robust<FetchRequest>(bytes7, 7);

  std::string bytes11;
  auto back11 = round_trip(req, 11, &bytes11);
  EXPECT_EQ(back11.topics[0].partitions[0].current_leader_epoch, 4);
  EXPECT_EQ(back11.rack_id, "rack");
  EXPECT_EQ(hex(bytes11).substr(hex(bytes11).size() - 12), "0004" + hexs("rack"));
  expect_robust<FetchRequest>(bytes11, 11);
}

FetchResponse sample_fetch_response() {
  FetchResponse resp;
  resp.throttle_time_ms = 0;
  resp.session_id = 0;
  auto& t = resp.responses.emplace_back();
  t.topic = "t";
  auto& p = t.partitions.emplace_back();
  p.partition_index = 0;
  p.high_watermark = 3;
  p.last_stable_offset = 3;
  p.log_start_offset = 0;
  p.aborted_transactions.emplace();
  p.preferred_read_replica = -1;
  p.records.owned = "RECS";
  auto& q = t.partitions.emplace_back();
  q.partition_index = 1;
  q.error_code = 1;
  q.high_watermark = -1;
  q.aborted_transactions = std::nullopt;
  q.records.is_null = true;
  return resp;
}

TEST(FetchMessage, ResponseV4Golden) {
  FetchResponse resp = sample_fetch_response();
  std::string bytes;
  auto back = round_trip(resp, 4, &bytes);
  EXPECT_EQ(hex(bytes), "00000000" "00000001" "000174" "00000002"
                        "00000000" "0000" "0000000000000003" "0000000000000003" "00000000" "00000004" + hexs("RECS") +
                        "00000001" "0001" "ffffffffffffffff" "ffffffffffffffff" "ffffffff" "ffffffff");
  EXPECT_TRUE(back.responses[0].partitions[0].aborted_transactions.has_value());
  EXPECT_FALSE(back.responses[0].partitions[1].aborted_transactions.has_value());
  EXPECT_TRUE(back.responses[0].partitions[1].records.is_null);
  expect_robust<FetchResponse>(bytes, 4);
}

TEST(FetchMessage, ResponseV7AndV11) {
  FetchResponse resp = sample_fetch_response();
  resp.error_code = 0;
  resp.responses[0].partitions[0].aborted_transactions->push_back({7, 1});
  std::string bytes7;
  auto back7 = round_trip(resp, 7, &bytes7);
  EXPECT_EQ(hex(bytes7).substr(0, 20), "00000000" "0000" "00000000");
  ASSERT_EQ(back7.responses[0].partitions[0].aborted_transactions->size(), 1u);
  EXPECT_EQ((*back7.responses[0].partitions[0].aborted_transactions)[0].producer_id, 7);
  expect_robust<FetchResponse>(bytes7, 7);
  std::string bytes11;
  auto back11 = round_trip(resp, 11, &bytes11);
  EXPECT_EQ(back11.responses[0].partitions[0].preferred_read_replica, -1);
  // preferred_read_replica sits between the aborted transactions and the records.
  EXPECT_NE(hex(bytes11).find("0000000000000007" "0000000000000001" "ffffffff" "00000004" + hexs("RECS")),
            std::string::npos);
  expect_robust<FetchResponse>(bytes11, 11);
}

// ------------------------------------------------------------- admin

TEST(CreateTopicsMessage, V4RoundTrip) {
  CreateTopicsRequest req;
  auto& t = req.topics.emplace_back();
  t.name = "orders";
  t.num_partitions = -1;
  t.replication_factor = -1;
  auto& a = t.assignments.emplace_back();
  a.partition_index = 0;
  a.broker_ids = {0};
  t.configs.push_back({"cleanup.policy", "compact"});
  t.configs.push_back({"retention.ms", std::nullopt});
  req.timeout_ms = 5000;
  req.validate_only = true;
  std::string bytes;
  auto back = round_trip(req, 4, &bytes);
  ASSERT_EQ(back.topics.size(), 1u);
  EXPECT_EQ(back.topics[0].num_partitions, -1);
  EXPECT_EQ(back.topics[0].assignments[0].broker_ids, (std::vector<int32_t>{0}));
  ASSERT_EQ(back.topics[0].configs.size(), 2u);
  EXPECT_EQ(back.topics[0].configs[0].value, std::optional<std::string>("compact"));
  EXPECT_EQ(back.topics[0].configs[1].value, std::nullopt);
  EXPECT_TRUE(back.validate_only);
  EXPECT_EQ(hex(bytes).substr(hex(bytes).size() - 10), "00001388" "01");
  expect_robust<CreateTopicsRequest>(bytes, 4);
  // v0 has no validate_only.
  EXPECT_EQ(encode(req, 0).size() + 1, bytes.size());

  CreateTopicsResponse resp;
  resp.throttle_time_ms = 0;
  resp.topics.push_back({"orders", 36, "exists"});
  std::string rbytes;
  auto rback = round_trip(resp, 4, &rbytes);
  EXPECT_EQ(hex(rbytes), "00000000" "00000001" "0006" + hexs("orders") + "0024" "0006" + hexs("exists"));
  EXPECT_EQ(rback.topics[0].error_message, std::optional<std::string>("exists"));
  std::string r0 = encode(resp, 0);
  EXPECT_EQ(hex(r0), "00000001" "0006" + hexs("orders") + "0024");
  expect_robust<CreateTopicsResponse>(rbytes, 4);
}

TEST(DescribeConfigsMessage, RoundTripsV0ToV2) {
  DescribeConfigsRequest req;
  auto& r = req.resources.emplace_back();
  r.resource_type = 2;
  r.resource_name = "orders";
  r.configuration_keys = std::vector<std::string>{"retention.ms"};
  auto& all = req.resources.emplace_back();
  all.resource_type = 4;
  all.resource_name = "0";
  all.configuration_keys = std::nullopt;  // all keys
  req.include_synonyms = true;
  for (int16_t v = 0; v <= 2; ++v) {
    std::string bytes;
    auto back = round_trip(req, v, &bytes);
    ASSERT_EQ(back.resources.size(), 2u);
    EXPECT_TRUE(back.resources[0].configuration_keys.has_value());
    EXPECT_FALSE(back.resources[1].configuration_keys.has_value());
    EXPECT_EQ(back.include_synonyms, v >= 1);
    expect_robust<DescribeConfigsRequest>(bytes, v);
  }

  DescribeConfigsResponse resp;
  auto& res = resp.results.emplace_back();
  res.resource_type = 2;
  res.resource_name = "orders";
  auto& c = res.configs.emplace_back();
  c.name = "retention.ms";
  c.value = "1000";
  c.read_only = false;
  c.is_default = true;
  c.config_source = 1;
  c.is_sensitive = false;
  c.synonyms.push_back({"retention.ms", "1000", 1});
  auto& secret = res.configs.emplace_back();
  secret.name = "password";
  secret.value = std::nullopt;
  secret.is_sensitive = true;
  std::string bytes0;
  auto back0 = round_trip(resp, 0, &bytes0);
  EXPECT_TRUE(back0.results[0].configs[0].is_default);
  EXPECT_EQ(back0.results[0].configs[0].config_source, -1);
  EXPECT_TRUE(back0.results[0].configs[0].synonyms.empty());
  EXPECT_EQ(back0.results[0].configs[1].value, std::nullopt);
  expect_robust<DescribeConfigsResponse>(bytes0, 0);
  std::string bytes1;
  auto back1 = round_trip(resp, 1, &bytes1);
  EXPECT_FALSE(back1.results[0].configs[0].is_default);
  EXPECT_EQ(back1.results[0].configs[0].config_source, 1);
  ASSERT_EQ(back1.results[0].configs[0].synonyms.size(), 1u);
  EXPECT_EQ(back1.results[0].configs[0].synonyms[0].value, std::optional<std::string>("1000"));
  EXPECT_EQ(hex(encode(resp, 2)), hex(bytes1));
  expect_robust<DescribeConfigsResponse>(bytes1, 1);
}

// ------------------------------------------------------------- lying counts

TEST(GeneratedDecoders, HugeCountsFailFastWithoutAllocating) {
  struct Case {
    const char* name;
    std::string bytes;
    std::function<bool(Decoder&)> decode;
  };
  auto count_then_padding = [](std::string prefix, size_t total) {
    prefix += unhex("77359400");  // 2,000,000,000
    prefix.resize(total, '\x01');
    return prefix;
  };
  std::vector<Case> cases = {
      {"metadata v1 topics", count_then_padding("", 20),
       [](Decoder& d) { MetadataRequest m; m.decode(d, 1); return d.ok(); }},
      {"produce v7 partitions", count_then_padding(unhex("ffff" "0001" "00007530" "00000001" "000174"), 40),
       [](Decoder& d) { ProduceRequest m; m.decode(d, 7); return d.ok(); }},
      {"fetch v11 topics", count_then_padding(unhex("ffffffff" "00000000" "00000001" "00000001" "00" "00000000"
                                                    "ffffffff"), 48),
       [](Decoder& d) { FetchRequest m; m.decode(d, 11); return d.ok(); }},
      {"create topics v4 broker ids",
       count_then_padding(unhex("00000001" "000174" "00000001" "0001" "00000001" "00000000"), 40),
       [](Decoder& d) { CreateTopicsRequest m; m.decode(d, 4); return d.ok(); }},
      {"describe configs keys", count_then_padding(unhex("00000001" "02" "000174"), 24),
       [](Decoder& d) { DescribeConfigsRequest m; m.decode(d, 1); return d.ok(); }},
      {"api versions v3 compact array", unhex("0000" "ffffffff07") + std::string(13, '\x01'),
       [](Decoder& d) { ApiVersionsResponse m; m.decode(d, 3); return d.ok(); }},
  };
  for (auto& c : cases) {
    test::reset_largest_allocation();
    auto start = std::chrono::steady_clock::now();
    Decoder d(span_of(c.bytes));
    EXPECT_FALSE(c.decode(d)) << c.name;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100)) << c.name;
    EXPECT_LT(test::largest_allocation_bytes(), 4096u) << c.name;
  }
}

TEST(GeneratedDecoders, ArrayOfEmptyElementsIsBoundedByTheBuffer) {
  // Each ApiKeyRange takes at least 6 bytes, so 996 of them cannot follow in
  // 100 bytes: the count is refused before any element is decoded.
  std::string bytes = unhex("0000") + unhex("e507") + std::string(100, '\0');  // 996 + 1
  ApiVersionsResponse m;
  Decoder d(span_of(bytes));
  m.decode(d, 3);
  EXPECT_FALSE(d.ok());
}

}  // namespace
}  // namespace evert::kafka
