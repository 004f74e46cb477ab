#include "cli/kafka_client.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>

namespace evert::cli {
namespace {

// librdkafka logs to stderr by default; a CLI wants one clear line instead,
// so its logs are shown only when EVERT_CLIENT_DEBUG names debug contexts
// (e.g. EVERT_CLIENT_DEBUG=broker,protocol).
const char* client_debug_contexts() { return std::getenv("EVERT_CLIENT_DEBUG"); }

constexpr int kConnectPollSliceMs = 200;

}  // namespace

void add_client_options(CLI::App* cmd, ClientOptions& opts) {
  cmd->add_option("--bootstrap-server", opts.bootstrap, "The evert server, HOST:PORT")
      ->envname("EVERT_BOOTSTRAP_SERVER")
      ->capture_default_str();
  cmd->add_option("-X,--property", opts.properties, "A librdkafka property key=value (repeatable)")
      ->allow_extra_args(false);
}

Result<std::pair<std::string, std::string>> parse_key_value(const std::string& kv) {
  auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0)
    return error(ErrorCode::kInvalidArgument, fmt::format("'{}' is not of the form key=value", kv));
  return std::make_pair(kv.substr(0, eq), kv.substr(eq + 1));
}

Status kafka_status(rd_kafka_resp_err_t err, const std::string& what) {
  ErrorCode code = ErrorCode::kInternal;
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return Status::ok();
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: code = ErrorCode::kAlreadyExists; break;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: code = ErrorCode::kNotFound; break;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: code = ErrorCode::kTimeout; break;
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR__INVALID_ARG: code = ErrorCode::kInvalidArgument; break;
    default: break;
  }
  return error(code, fmt::format("{}: {}", what, rd_kafka_err2str(err)));
}

Result<std::unique_ptr<KafkaClient>> KafkaClient::create(ClientKind kind, const ClientOptions& opts,
                                                         const Properties& defaults, DeliveryFn on_delivery) {
  std::unique_ptr<KafkaClient> client(new KafkaClient());
  client->bootstrap_ = opts.bootstrap;
  client->delivery_fn_ = std::move(on_delivery);
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  auto set = [&](const std::string& key, const std::string& value) -> Status {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
      return error(ErrorCode::kInvalidArgument, fmt::format("property {}={}: {}", key, value, errstr));
    return Status::ok();
  };
  EVERT_RETURN_IF_ERROR(set("bootstrap.servers", opts.bootstrap));
  EVERT_RETURN_IF_ERROR(set("client.id", "evert-cli"));
  // Only the admin and producer paths name topics; none of them should
  // create a topic by asking about it.
  EVERT_RETURN_IF_ERROR(set("allow.auto.create.topics", "false"));
  if (const char* debug = client_debug_contexts(); debug != nullptr && *debug != '\0')
    EVERT_RETURN_IF_ERROR(set("debug", debug));
  for (const auto& [k, v] : defaults) EVERT_RETURN_IF_ERROR(set(k, v));
  for (const auto& kv : opts.properties) {
    EVERT_ASSIGN_OR_RETURN(auto parsed, parse_key_value(kv));
    EVERT_RETURN_IF_ERROR(set(parsed.first, parsed.second));
  }
  rd_kafka_conf_set_opaque(conf.get(), client.get());
  rd_kafka_conf_set_error_cb(conf.get(), &KafkaClient::on_error);
  rd_kafka_conf_set_log_cb(conf.get(), &KafkaClient::on_log);
  if (client->delivery_fn_) rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaClient::on_delivery);
  rd_kafka_type_t type = kind == ClientKind::kProducer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER;
  // rd_kafka_new takes ownership of conf only when it succeeds.
  client->rk_ = rd_kafka_new(type, conf.get(), errstr, sizeof(errstr));
  if (client->rk_ == nullptr) return error(ErrorCode::kInvalidArgument, fmt::format("librdkafka: {}", errstr));
  (void)conf.release();
  return client;
}

KafkaClient::~KafkaClient() {
  if (rk_ != nullptr) rd_kafka_destroy(rk_);
}

void KafkaClient::on_error(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaClient*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    self->all_brokers_down_ = true;
    return;  // "1/1 brokers are down" says less than the transport error before it
  }
  std::lock_guard lock(self->mu_);
  self->last_error_ = reason;
}

void KafkaClient::on_log(const rd_kafka_t* /*rk*/, int /*level*/, const char* facility, const char* message) {
  const char* debug = client_debug_contexts();
  if (debug != nullptr && *debug != '\0') fmt::print(stderr, "librdkafka {}: {}\n", facility, message);
}

void KafkaClient::on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<KafkaClient*>(opaque)->delivery_fn_(*msg);
}

std::string KafkaClient::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

Status KafkaClient::connect(int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
  while (Clock::now() < deadline) {
    poll(0);  // serves on_error
    if (all_brokers_down_) break;
    const rd_kafka_metadata_t* md = nullptr;
    err = rd_kafka_metadata(rk_, 1, nullptr, &md, kConnectPollSliceMs);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
      return Status::ok();
    }
  }
  std::string why = last_error();
  if (why.empty()) why = all_brokers_down_ ? "connection refused" : rd_kafka_err2str(err);
  return error(ErrorCode::kIoError, fmt::format("cannot reach an evert server at {}: {}", bootstrap_, why));
}

Result<MetadataPtr> KafkaClient::metadata(int timeout_ms) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 1, nullptr, &md, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_status(err, "metadata request");
  return MetadataPtr(md);
}

Result<int32_t> KafkaClient::partition_count(const std::string& topic, int timeout_ms) {
  EVERT_ASSIGN_OR_RETURN(MetadataPtr md, metadata(timeout_ms));
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_status(t.err, fmt::format("topic '{}'", topic));
    return int32_t(t.partition_cnt);
  }
  return error(ErrorCode::kNotFound, fmt::format("topic '{}' does not exist", topic));
}

Result<EventPtr> KafkaClient::admin(
    const std::function<void(const rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& start, rd_kafka_admin_op_t op,
    int result_type, int timeout_ms) {
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk_, op));
  char errstr[512];
  if (rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, errstr, sizeof(errstr)) !=
      RD_KAFKA_RESP_ERR_NO_ERROR)
    return error(ErrorCode::kInvalidArgument, errstr);
  QueuePtr queue(rd_kafka_queue_new(rk_));
  start(options.get(), queue.get());
  // librdkafka answers within the request timeout; the margin covers its
  // own bookkeeping, so this wait is bounded too.
  EventPtr ev(rd_kafka_queue_poll(queue.get(), timeout_ms + 2000));
  if (!ev) return error(ErrorCode::kTimeout, fmt::format("no answer from {} within {} ms", bootstrap_, timeout_ms));
  if (rd_kafka_event_type(ev.get()) != result_type)
    return error(ErrorCode::kInternal, fmt::format("unexpected librdkafka event {}", rd_kafka_event_name(ev.get())));
  if (rd_kafka_resp_err_t err = rd_kafka_event_error(ev.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* s = rd_kafka_event_error_string(ev.get());
    return error(kafka_status(err, "").code(), s != nullptr ? s : rd_kafka_err2str(err));
  }
  return ev;
}

Status KafkaClient::create_topic(const std::string& name, int32_t partitions,
                                 const std::map<std::string, std::string>& configs, int timeout_ms) {
  char errstr[512];
  NewTopicPtr topic(rd_kafka_NewTopic_new(name.c_str(), partitions, 1, errstr, sizeof(errstr)));
  if (!topic) return error(ErrorCode::kInvalidArgument, errstr);
  for (const auto& [k, v] : configs) {
    if (rd_kafka_NewTopic_set_config(topic.get(), k.c_str(), v.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR)
      return error(ErrorCode::kInvalidArgument, fmt::format("config {}={} is not accepted", k, v));
  }
  rd_kafka_NewTopic_t* topics[] = {topic.get()};
  EVERT_ASSIGN_OR_RETURN(
      EventPtr ev, admin([&](const rd_kafka_AdminOptions_t* o,
                             rd_kafka_queue_t* q) { rd_kafka_CreateTopics(rk_, topics, 1, o, q); },
                         RD_KAFKA_ADMIN_OP_CREATETOPICS, RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout_ms));
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    const char* msg = rd_kafka_topic_result_error_string(results[i]);
    Status s = kafka_status(err, "");
    return error(s.code(), msg != nullptr && *msg != '\0' ? msg : rd_kafka_err2str(err));
  }
  return Status::ok();
}

PartitionReaders::~PartitionReaders() {
  for (int32_t p : started_) rd_kafka_consume_stop(topic_, p);
}

Status PartitionReaders::start(int32_t partition, int64_t offset) {
  if (rd_kafka_consume_start_queue(topic_, partition, offset, queue_) != 0)
    return kafka_status(rd_kafka_last_error(), fmt::format("starting partition {}", partition));
  started_.push_back(partition);
  return Status::ok();
}

}  // namespace evert::cli
