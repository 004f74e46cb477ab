#include "kafka/server/broker.h"

#include <fmt/format.h>

#include <map>

#include "base/logging.h"
#include "kafka/protocol/messages.h"
#include "kafka/server/errors.h"
#include "kafka/server/fetch_waiters.h"
#include "kafka/server/group_coordinator.h"
#include "kafka/server/handler_util.h"
#include "log/file_names.h"
#include "log/record_batch.h"

namespace evert::kafka {

int16_t kafka_error_for(const Status& status) {
  switch (status.code()) {
    case ErrorCode::kOk: return err::kNone;
    case ErrorCode::kCorruption: return err::kCorruptMessage;
    case ErrorCode::kTooLarge: return err::kMessageTooLarge;
    case ErrorCode::kUnsupported: return err::kUnsupportedForMessageFormat;
    case ErrorCode::kOutOfRange: return err::kOffsetOutOfRange;
    case ErrorCode::kNotFound: return err::kUnknownTopicOrPartition;
    case ErrorCode::kClosed: return err::kUnknownTopicOrPartition;
    case ErrorCode::kIoError:
    case ErrorCode::kNoSpace: return err::kKafkaStorageError;
    case ErrorCode::kInvalidArgument: return err::kInvalidRequest;
    case ErrorCode::kAlreadyExists: return err::kTopicAlreadyExists;
    case ErrorCode::kTimeout: return err::kRequestTimedOut;
    case ErrorCode::kSequenceError: return err::kOutOfOrderSequenceNumber;
    case ErrorCode::kFenced: return err::kInvalidProducerEpoch;
    default: return err::kUnknownServerError;
  }
}

Broker::Broker(const BrokerConfig& config, log::LogManager* log, net::NetServer* net, GroupCoordinator* groups)
    : config_(config),
      log_(log),
      net_(net),
      coordinator_(groups),
      producer_ids_(std::make_unique<ProducerIdAllocator>(log->options().env,
                                                          io::join_path(log->options().data_dir, "producer.ids"))),
      waiters_(std::make_shared<FetchWaiters>(this)) {
  log_->set_append_listener([w = std::weak_ptr<FetchWaiters>(waiters_)](const std::string& topic, int32_t partition,
                                                                          int64_t) {
    if (auto waiters = w.lock()) waiters->notify(topic, partition);
  });
  schedule_group_tick();
}

Broker::~Broker() {
  log_->set_append_listener(nullptr);
  waiters_->shutdown();
}

void Broker::on_close(const net::ConnectionInfo& conn) { waiters_->cancel_connection(conn.id); }

void Broker::fail_request(Request& req, const std::string& why) {
  ++stats_.bad_requests;
  log_warn("connection {} from {}: {} request v{} (correlation id {}): {}; closing the connection", req.conn.id,
           req.conn.peer, req.header.api_key, req.header.api_version, req.header.correlation_id, why);
  req.reply.close();
}

void Broker::on_frame(const net::ConnectionInfo& conn, net::FrameBuffer frame, net::Reply reply) {
  ++stats_.requests;
  auto req = std::make_shared<Request>();
  req->frame = std::move(frame);
  req->reply = std::move(reply);
  req->conn = conn;
  Decoder d(MutableByteSpan(req->frame.data(), req->frame.size()));
  auto prefix = decode_request_header_prefix(d);
  if (!prefix.is_ok()) return fail_request(*req, "frame shorter than a request header");
  req->header = *prefix;
  const ApiInfo* api = serves(req->header.api_key) ? find_api(req->header.api_key) : nullptr;
  int16_t v = req->header.api_version;
  if (req->header.api_key == api_key::kApiVersions && (v < 0 || v > api->max_version)) {
    // KIP-511: answer in v0 with UNSUPPORTED_VERSION and our range, so the
    // client retries with a version we speak.
    ApiVersionsResponse resp;
    resp.error_code = err::kUnsupportedVersion;
    auto& k = resp.api_keys.emplace_back();
    k.api_key = api->key;
    k.min_version = api->min_version;
    k.max_version = api->max_version;
    Encoder body;
    resp.encode(body, 0);
    req->reply.send(frame_response(api_key::kApiVersions, 0, req->header.correlation_id, std::move(body)));
    return;
  }
  if (api == nullptr || v < api->min_version || v > api->max_version) {
    // There is no response layout for an api/version we do not speak: send
    // the correlation id and UNSUPPORTED_VERSION, then close, so the client
    // fails fast instead of waiting.
    ++stats_.bad_requests;
    log_warn("connection {} from {}: unsupported api {} v{}; closing", conn.id, conn.peer, req->header.api_key, v);
    Encoder e;
    e.write_int32(6);
    e.write_int32(req->header.correlation_id);
    e.write_int16(err::kUnsupportedVersion);
    req->reply.send_then_close(std::move(e.parts()));
    return;
  }
  bool flexible = is_flexible(req->header.api_key, v);
  if (Status s = decode_request_header_rest(d, flexible, &req->header); !s.is_ok())
    return fail_request(*req, "malformed request header: " + s.message());
  req->body_offset = d.position();
  dispatch(std::move(req));
}

// The apis evert serves. ApiVersions advertises exactly these, with the
// version ranges messages.spec declares for them.
const std::map<int16_t, Broker::Handler>& Broker::handlers() {
  static const std::map<int16_t, Handler> table = {
      {api_key::kApiVersions, &Broker::handle_api_versions},
      {api_key::kMetadata, &Broker::handle_metadata},
      {api_key::kProduce, &Broker::handle_produce},
      {api_key::kFetch, &Broker::handle_fetch},
      {api_key::kListOffsets, &Broker::handle_list_offsets},
      {api_key::kCreateTopics, &Broker::handle_create_topics},
      {api_key::kDeleteTopics, &Broker::handle_delete_topics},
      {api_key::kCreatePartitions, &Broker::handle_create_partitions},
      {api_key::kDescribeConfigs, &Broker::handle_describe_configs},
      {api_key::kAlterConfigs, &Broker::handle_alter_configs},
      {api_key::kIncrementalAlterConfigs, &Broker::handle_incremental_alter_configs},
      {api_key::kFindCoordinator, &Broker::handle_find_coordinator},
      {api_key::kJoinGroup, &Broker::handle_join_group},
      {api_key::kSyncGroup, &Broker::handle_sync_group},
      {api_key::kHeartbeat, &Broker::handle_heartbeat},
      {api_key::kLeaveGroup, &Broker::handle_leave_group},
      {api_key::kOffsetCommit, &Broker::handle_offset_commit},
      {api_key::kOffsetFetch, &Broker::handle_offset_fetch},
      {api_key::kDescribeGroups, &Broker::handle_describe_groups},
      {api_key::kListGroups, &Broker::handle_list_groups},
      {api_key::kDeleteGroups, &Broker::handle_delete_groups},
      {api_key::kInitProducerId, &Broker::handle_init_producer_id},
  };
  return table;
}

namespace {
bool is_group_api(int16_t key) {
  switch (key) {
    case api_key::kFindCoordinator:
    case api_key::kJoinGroup:
    case api_key::kSyncGroup:
    case api_key::kHeartbeat:
    case api_key::kLeaveGroup:
    case api_key::kOffsetCommit:
    case api_key::kOffsetFetch:
    case api_key::kDescribeGroups:
    case api_key::kListGroups:
    case api_key::kDeleteGroups: return true;
    default: return false;
  }
}
}  // namespace

bool Broker::serves(int16_t key) const {
  if (!handlers().count(key)) return false;
  return coordinator_ != nullptr || !is_group_api(key);
}

void Broker::schedule_group_tick() {
  if (!coordinator_) return;
  net_->run_after(std::chrono::milliseconds(100), [this] {
    coordinator_->tick();
    schedule_group_tick();
  });
}

void Broker::dispatch(std::shared_ptr<Request> req) {
  Handler fn = handlers().at(req->header.api_key);
  (this->*fn)(std::move(req));
}

void Broker::handle_api_versions(std::shared_ptr<Request> req) {
  ApiVersionsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  ApiVersionsResponse resp;
  for (const ApiInfo& a : kApis) {
    if (!serves(a.key)) continue;
    auto& k = resp.api_keys.emplace_back();
    k.api_key = a.key;
    k.min_version = a.min_version;
    k.max_version = a.max_version;
    // librdkafka before 2.10 (confluentinc/librdkafka#4956) sends gzip,
    // snappy and lz4 batches uncompressed unless Produce v0 is advertised.
    // Like Kafka 4 (KAFKA-18659) we advertise it; on_frame still refuses
    // versions below the spec's minimum.
    if (a.key == api_key::kProduce) k.min_version = 0;
  }
  respond(*req, resp);
}

bool Broker::maybe_auto_create(const std::string& topic) {
  if (!config_.auto_create_topics) return false;
  auto created = log_->create_topic(topic, config_.default_partitions, {});
  if (created.is_ok()) return true;
  // Lost a race with another creator: fine.
  return created.status().code() == ErrorCode::kAlreadyExists;
}

void Broker::handle_metadata(std::shared_ptr<Request> req) {
  MetadataRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  int16_t v = req->header.api_version;
  MetadataResponse resp;
  auto& broker = resp.brokers.emplace_back();
  broker.node_id = config_.node_id;
  broker.host = config_.advertised_host;
  broker.port = config_.advertised_port;
  resp.cluster_id = config_.cluster_id;
  resp.controller_id = config_.node_id;

  std::vector<std::string> names;
  bool all = !request.topics.has_value() || (v == 0 && request.topics->empty());
  if (all) {
    names = log_->topic_names();
  } else {
    for (const auto& t : *request.topics) names.push_back(t.name);
  }
  bool may_create = v < 4 || request.allow_auto_topic_creation;
  for (const auto& name : names) {
    auto& topic = resp.topics.emplace_back();
    topic.name = name;
    auto info = log_->describe_topic(name);
    if (!info && !all) {
      if (!log::is_valid_topic_name(name)) {
        topic.error_code = err::kInvalidTopic;
        continue;
      }
      if (may_create && maybe_auto_create(name)) info = log_->describe_topic(name);
    }
    if (!info) {
      topic.error_code = err::kUnknownTopicOrPartition;
      continue;
    }
    topic.is_internal = name == kOffsetsTopic;
    for (int32_t p = 0; p < info->partitions; ++p) {
      auto& part = topic.partitions.emplace_back();
      part.partition_index = p;
      part.leader_id = config_.node_id;
      part.replica_nodes = {config_.node_id};
      part.isr_nodes = {config_.node_id};
    }
  }
  respond(*req, resp);
}

namespace {

// Collects the partition answers of one produce request; answers once every
// acks=all sync has come back.
struct ProduceState {
  std::mutex mu;
  ProduceResponse resp;
  int pending = 0;
  std::shared_ptr<Broker::Request> req;
};

}  // namespace

void Broker::handle_produce(std::shared_ptr<Request> req) {
  auto state = std::make_shared<ProduceState>();
  ProduceRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  int16_t acks = request.acks;
  struct ToSync {
    std::shared_ptr<log::Partition> partition;
    int64_t end_offset;
    size_t topic_index;
    size_t partition_index;
  };
  std::vector<ToSync> to_sync;
  auto& resp = state->resp;
  for (auto& topic_data : request.topic_data) {
    auto& topic = resp.responses.emplace_back();
    topic.name = topic_data.name;
    for (auto& pd : topic_data.partition_data) {
      auto& part = topic.partition_responses.emplace_back();
      part.index = pd.index;
      part.base_offset = -1;
      part.log_append_time_ms = -1;
      part.log_start_offset = -1;
      if (acks != 0 && acks != 1 && acks != -1) {
        part.error_code = err::kInvalidRequiredAcks;
        continue;
      }
      if (request.transactional_id) {
        part.error_code = err::kInvalidTxnState;  // transactions are not implemented
        continue;
      }
      auto partition = log_->partition(topic_data.name, pd.index);
      if (!partition) {
        part.error_code = err::kUnknownTopicOrPartition;
        continue;
      }
      if (pd.records.is_null || pd.records.data.empty()) {
        part.error_code = err::kInvalidRecord;
        continue;
      }
      auto appended = partition->append(pd.records.data);
      if (!appended.is_ok()) {
        part.error_code = kafka_error_for(appended.status());
        log_debug("produce to {}-{}: {}", topic_data.name, pd.index, appended.status().to_string());
        continue;
      }
      if (!appended->duplicate) ++stats_.produced_batches;
      part.base_offset = appended->base_offset;
      part.log_append_time_ms = appended->log_append_time_ms;
      part.log_start_offset = partition->log_start_offset();
      if (acks == -1)
        to_sync.push_back(ToSync{partition, appended->last_offset + 1, resp.responses.size() - 1,
                                 topic.partition_responses.size() - 1});
    }
  }
  if (acks == 0) {
    req->reply.skip();
    return;
  }
  if (to_sync.empty()) return respond(*req, resp);
  state->req = req;
  state->pending = int(to_sync.size());
  for (auto& s : to_sync) {
    s.partition->sync_async(s.end_offset, [this, state, t = s.topic_index, p = s.partition_index](Status st) {
      bool last;
      {
        std::lock_guard lock(state->mu);
        if (!st.is_ok()) {
          state->resp.responses[t].partition_responses[p].error_code = err::kKafkaStorageError;
          log_error("acks=all sync failed: {}", st.to_string());
        }
        last = --state->pending == 0;
      }
      if (last) respond(*state->req, state->resp);
    });
  }
}

void Broker::handle_init_producer_id(std::shared_ptr<Request> req) {
  InitProducerIdRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  InitProducerIdResponse resp;
  resp.producer_epoch = -1;
  if (request.transactional_id) {
    resp.error_code = err::kInvalidRequest;  // transactions are not implemented
  } else if (request.producer_id >= 0 && request.producer_epoch >= 0 && request.producer_epoch < INT16_MAX) {
    // An idempotent producer bumping its epoch (KIP-360) keeps its id.
    resp.producer_id = request.producer_id;
    resp.producer_epoch = int16_t(request.producer_epoch + 1);
  } else {
    auto id = producer_ids_->next();
    if (!id.is_ok()) {
      resp.error_code = kafka_error_for(id.status());
      log_error("allocating a producer id: {}", id.status().to_string());
    } else {
      resp.producer_id = *id;
      resp.producer_epoch = 0;
    }
  }
  respond(*req, resp);
}

void Broker::handle_fetch(std::shared_ptr<Request> req) {
  auto fetch = std::make_shared<FetchState>();
  EVERT_DECODE_OR_CLOSE(req, fetch->request);
  fetch->req = req;
  waiters_->start(std::move(fetch));
}

void Broker::handle_list_offsets(std::shared_ptr<Request> req) {
  ListOffsetsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  ListOffsetsResponse resp;
  for (const auto& t : request.topics) {
    auto& topic = resp.topics.emplace_back();
    topic.name = t.name;
    for (const auto& p : t.partitions) {
      auto& part = topic.partitions.emplace_back();
      part.partition_index = p.partition_index;
      part.timestamp = -1;
      part.offset = -1;
      auto partition = log_->partition(t.name, p.partition_index);
      if (!partition) {
        part.error_code = err::kUnknownTopicOrPartition;
        continue;
      }
      if (p.timestamp == -1) {  // latest
        part.offset = partition->high_watermark();
      } else if (p.timestamp == -2) {  // earliest
        part.offset = partition->log_start_offset();
      } else if (p.timestamp < 0) {
        part.error_code = err::kInvalidRequest;
      } else {
        auto found = partition->offset_for_timestamp(p.timestamp);
        if (!found.is_ok()) {
          part.error_code = kafka_error_for(found.status());
        } else if (*found) {
          part.offset = **found;
          part.timestamp = p.timestamp;
          // The timestamp of the record found, when it can be read cheaply.
          auto read = partition->read(part.offset, 1);
          if (read.is_ok() && read->slice) {
            std::string batch(read->slice->size_bytes, '\0');
            auto n = read->slice->file->read_at(read->slice->position,
                                                MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()), batch.size()));
            if (n.is_ok()) {
              std::string inflated;
              auto records = log::decode_records(as_bytes(std::string_view(batch.data(), *n)), &inflated);
              if (records.is_ok())
                for (const auto& r : *records)
                  if (r.offset == part.offset) part.timestamp = r.timestamp;
            }
          }
        }
      }
    }
  }
  respond(*req, resp);
}

}  // namespace evert::kafka
