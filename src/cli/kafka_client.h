// A thin RAII layer over librdkafka's C API, shared by the subcommands that
// talk to a running server: `topic`, `produce`, `consume` and `bench`.
//
// Every librdkafka object is owned by a unique_ptr with its destroy function;
// KafkaClient owns an rd_kafka_t and turns librdkafka's callbacks (errors,
// logs, delivery reports) into values. Every blocking call takes a timeout:
// a CLI command must fail with one clear line, never hang.
//
// Threading: a KafkaClient is used from one thread at a time; its callbacks
// run inside poll()/flush() on that thread.
#pragma once

#include <librdkafka/rdkafka.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace evert::cli {

template <typename T, void (*Destroy)(T*)>
struct RdDeleter {
  void operator()(T* p) const {
    if (p != nullptr) Destroy(p);
  }
};
template <typename T, void (*Destroy)(T*)>
using RdPtr = std::unique_ptr<T, RdDeleter<T, Destroy>>;

using ConfPtr = RdPtr<rd_kafka_conf_t, rd_kafka_conf_destroy>;
using TopicPtr = RdPtr<rd_kafka_topic_t, rd_kafka_topic_destroy>;
using QueuePtr = RdPtr<rd_kafka_queue_t, rd_kafka_queue_destroy>;
using EventPtr = RdPtr<rd_kafka_event_t, rd_kafka_event_destroy>;
using MetadataPtr = RdPtr<const rd_kafka_metadata_t, rd_kafka_metadata_destroy>;
using AdminOptionsPtr = RdPtr<rd_kafka_AdminOptions_t, rd_kafka_AdminOptions_destroy>;
using NewTopicPtr = RdPtr<rd_kafka_NewTopic_t, rd_kafka_NewTopic_destroy>;
using DeleteTopicPtr = RdPtr<rd_kafka_DeleteTopic_t, rd_kafka_DeleteTopic_destroy>;
using ConfigResourcePtr = RdPtr<rd_kafka_ConfigResource_t, rd_kafka_ConfigResource_destroy>;

constexpr const char* kDefaultBootstrap = "127.0.0.1:9092";
// Bounds on the calls that wait for the server.
constexpr int kConnectTimeoutMs = 10'000;
constexpr int kRequestTimeoutMs = 10'000;

// Flags every client subcommand takes: where the server is, and raw
// librdkafka properties (`-X linger.ms=1`) applied after evert's defaults.
struct ClientOptions {
  std::string bootstrap = kDefaultBootstrap;
  std::vector<std::string> properties;  // "key=value"
};
void add_client_options(CLI::App* cmd, ClientOptions& opts);

// Splits "key=value" at the first '='; fails on a missing '=' or empty key.
Result<std::pair<std::string, std::string>> parse_key_value(const std::string& kv);

enum class ClientKind { kProducer, kConsumer };

class KafkaClient {
 public:
  // Runs for each delivery report (producers), inside poll()/flush().
  using DeliveryFn = std::function<void(const rd_kafka_message_t&)>;
  using Properties = std::vector<std::pair<std::string, std::string>>;

  // `defaults` are applied first, then opts.properties, so a user's -X wins.
  static Result<std::unique_ptr<KafkaClient>> create(ClientKind kind, const ClientOptions& opts,
                                                     const Properties& defaults, DeliveryFn on_delivery = {});
  ~KafkaClient();
  KafkaClient(const KafkaClient&) = delete;
  KafkaClient& operator=(const KafkaClient&) = delete;

  rd_kafka_t* get() const { return rk_; }
  const std::string& bootstrap() const { return bootstrap_; }

  // Serves queued callbacks, waiting up to timeout_ms for the first one.
  int poll(int timeout_ms) { return rd_kafka_poll(rk_, timeout_ms); }

  // Waits until the server answers a metadata request. Fails within
  // timeout_ms, and at once when every broker refuses the connection.
  Status connect(int timeout_ms = kConnectTimeoutMs);

  // Metadata of every topic (never creates one).
  Result<MetadataPtr> metadata(int timeout_ms = kRequestTimeoutMs);
  // The partition count of `topic`; kNotFound when it does not exist.
  Result<int32_t> partition_count(const std::string& topic, int timeout_ms = kRequestTimeoutMs);

  // Runs one admin request whose result event has type `result_type`:
  // `start` issues it on the given queue with the given options.
  Result<EventPtr> admin(const std::function<void(const rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& start,
                         rd_kafka_admin_op_t op, int result_type, int timeout_ms = kRequestTimeoutMs);

  // kAlreadyExists when the topic exists; the server's message otherwise.
  Status create_topic(const std::string& name, int32_t partitions, const std::map<std::string, std::string>& configs,
                      int timeout_ms = kRequestTimeoutMs);

  // The latest error librdkafka reported through its error callback.
  std::string last_error() const;
  bool all_brokers_down() const { return all_brokers_down_.load(); }

 private:
  KafkaClient() = default;
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* message);
  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);

  rd_kafka_t* rk_ = nullptr;
  std::string bootstrap_;
  DeliveryFn delivery_fn_;
  mutable std::mutex mu_;  // guards last_error_ (librdkafka may call on_error from its threads)
  std::string last_error_;
  std::atomic<bool> all_brokers_down_{false};
};

// Reads partitions of one topic into one queue with librdkafka's simple
// consumer (no group: the assignment is ours). Stops every started partition
// when destroyed, before the topic handle may go away.
class PartitionReaders {
 public:
  PartitionReaders(rd_kafka_topic_t* topic, rd_kafka_queue_t* queue) : topic_(topic), queue_(queue) {}
  ~PartitionReaders();
  PartitionReaders(const PartitionReaders&) = delete;
  PartitionReaders& operator=(const PartitionReaders&) = delete;

  // `offset` is absolute or RD_KAFKA_OFFSET_BEGINNING / _END.
  Status start(int32_t partition, int64_t offset);

 private:
  rd_kafka_topic_t* topic_;
  rd_kafka_queue_t* queue_;
  std::vector<int32_t> started_;
};

// A Status for a librdkafka error code, "what: librdkafka's words".
Status kafka_status(rd_kafka_resp_err_t err, const std::string& what);

}  // namespace evert::cli
