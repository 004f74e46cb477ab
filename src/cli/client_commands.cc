// `evert produce` and `evert consume`: line-oriented clients for the shell.
// produce sends one record per stdin line; consume prints one record per
// line. consume reads assigned partitions (librdkafka's simple consumer API),
// with no consumer group.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cli/commands.h"
#include "cli/kafka_client.h"

namespace evert::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Failed records reported one by one; the rest are only counted.
constexpr int64_t kFailuresPrintedMax = 20;
// Messages taken from the consumer queue per call.
constexpr size_t kConsumeBatchMax = 1000;
constexpr int kConsumePollMs = 100;
constexpr int64_t kFirstAnswerMs = 10000;  // the longest wait for the server's first answer
// Extra time flush() gets beyond message.timeout.ms before we give up.
constexpr int kFlushMarginMs = 5000;

// ------------------------------------------------------------------ produce

struct ProduceOptions {
  ClientOptions client;
  std::string topic;
  std::string key_separator;  // empty: no keys
  int32_t partition = -1;     // -1: the partitioner decides
  std::string acks = "all";
  std::string compression = "none";
  int timeout_ms = 30'000;
};

int produce_fail(const Status& s) {
  fmt::print(stderr, "evert produce: {}\n", s.message());
  return s.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

struct ProduceCounts {
  int64_t sent = 0;
  int64_t acked = 0;
  int64_t failed = 0;
};

void report_failure(ProduceCounts& counts, int64_t line, const std::string& why) {
  if (++counts.failed <= kFailuresPrintedMax) fmt::print(stderr, "evert produce: line {}: {}\n", line, why);
}

// Hands one record to librdkafka, waiting for queue space when it is full.
rd_kafka_resp_err_t produce_line(KafkaClient& client, rd_kafka_topic_t* topic, int32_t partition,
                                 std::string_view line, const std::string& key_separator, int64_t line_no) {
  std::string_view key;
  bool has_key = false;
  std::string_view value = line;
  if (!key_separator.empty()) {
    if (size_t at = line.find(key_separator); at != std::string_view::npos) {
      key = line.substr(0, at);
      value = line.substr(at + key_separator.size());
      has_key = true;
    }
  }
  for (;;) {
    int rc = rd_kafka_produce(topic, partition, RD_KAFKA_MSG_F_COPY, const_cast<char*>(value.data()), value.size(),
                              has_key ? key.data() : nullptr, has_key ? key.size() : 0,
                              reinterpret_cast<void*>(static_cast<intptr_t>(line_no)));
    if (rc == 0) return RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return err;
    client.poll(10);  // deliveries free queue space
  }
}

int run_produce(const ProduceOptions& opts) {
  const std::map<std::string, std::string> acks_values = {{"all", "-1"}, {"-1", "-1"}, {"1", "1"}, {"0", "0"}};
  ProduceCounts counts;
  KafkaClient::Properties props = {
      {"request.required.acks", acks_values.at(opts.acks)},
      {"compression.codec", opts.compression},
      {"message.timeout.ms", std::to_string(opts.timeout_ms)},
      // One request in flight keeps stdin's order even when a request is
      // retried (evert has no idempotent producer yet).
      {"max.in.flight.requests.per.connection", "1"},
      // Producing is how the shell creates a topic, as with Kafka.
      {"allow.auto.create.topics", "true"},
  };
  auto on_delivery = [&counts](const rd_kafka_message_t& m) {
    if (m.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++counts.acked;
    } else {
      report_failure(counts, reinterpret_cast<intptr_t>(m._private), rd_kafka_err2str(m.err));
    }
  };
  auto client = KafkaClient::create(ClientKind::kProducer, opts.client, props, on_delivery);
  if (!client.is_ok()) return produce_fail(client.status());
  KafkaClient& c = **client;
  if (Status s = c.connect(); !s.is_ok()) return produce_fail(s);
  TopicPtr topic(rd_kafka_topic_new(c.get(), opts.topic.c_str(), nullptr));
  if (!topic) return produce_fail(kafka_status(rd_kafka_last_error(), opts.topic));
  int32_t partition = opts.partition >= 0 ? opts.partition : RD_KAFKA_PARTITION_UA;

  char* buf = nullptr;
  size_t cap = 0;
  int64_t line_no = 0;
  for (ssize_t n; (n = getline(&buf, &cap, stdin)) >= 0;) {
    ++line_no;
    std::string_view line(buf, size_t(n));
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    rd_kafka_resp_err_t err = produce_line(c, topic.get(), partition, line, opts.key_separator, line_no);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++counts.sent;
    } else {
      report_failure(counts, line_no, rd_kafka_err2str(err));
    }
    c.poll(0);
  }
  free(buf);
  if (ferror(stdin)) fmt::print(stderr, "evert produce: reading stdin: {}\n", std::strerror(errno));
  rd_kafka_flush(c.get(), opts.timeout_ms + kFlushMarginMs);
  if (int left = rd_kafka_outq_len(c.get()); left > 0) {
    rd_kafka_purge(c.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    c.poll(0);
    fmt::print(stderr, "evert produce: {} record(s) still unacknowledged after {} ms\n", left,
               opts.timeout_ms + kFlushMarginMs);
  }
  if (counts.failed > kFailuresPrintedMax)
    fmt::print(stderr, "evert produce: ... {} failed record(s) in all\n", counts.failed);
  bool ok = counts.failed == 0 && counts.acked == line_no && !ferror(stdin);
  if (!ok)
    fmt::print(stderr, "evert produce: {} of {} record(s) acknowledged by {}\n", counts.acked, line_no,
               c.bootstrap());
  return ok ? 0 : 1;
}

// ------------------------------------------------------------------ consume

struct ConsumeOptions {
  ClientOptions client;
  std::string topic;
  bool from_beginning = false;
  int64_t offset = -1;  // -1: not given
  int32_t partition = -1;
  int64_t max_messages = -1;
  int timeout_ms = 5'000;
  bool print_key = false;
  bool print_offset = false;
  std::string separator = "\t";
};

int consume_fail(const Status& s) {
  fmt::print(stderr, "evert consume: {}\n", s.message());
  return s.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

void print_message(const ConsumeOptions& opts, const rd_kafka_message_t& m) {
  if (opts.print_offset) fmt::print("{}{}{}{}", m.partition, opts.separator, m.offset, opts.separator);
  // A null key or value has a null pointer, which fwrite() must not be
  // given even for no bytes.
  if (opts.print_key) {
    if (m.key_len > 0) std::fwrite(m.key, 1, m.key_len, stdout);
    std::fwrite(opts.separator.data(), 1, opts.separator.size(), stdout);
  }
  if (m.len > 0) std::fwrite(m.payload, 1, m.len, stdout);
  std::fputc('\n', stdout);
}

int run_consume(const ConsumeOptions& opts) {
  if (opts.from_beginning && opts.offset >= 0)
    return consume_fail(error(ErrorCode::kInvalidArgument, "give --from-beginning or --offset, not both"));
  KafkaClient::Properties props = {
      // A wrong --offset is an error to report, not a reason to jump.
      {"auto.offset.reset", "error"},
      // End-of-partition events tell the idle timeout that the server has answered.
      {"enable.partition.eof", "true"},
  };
  auto client = KafkaClient::create(ClientKind::kConsumer, opts.client, props);
  if (!client.is_ok()) return consume_fail(client.status());
  KafkaClient& c = **client;
  if (Status s = c.connect(); !s.is_ok()) return consume_fail(s);
  auto partitions = c.partition_count(opts.topic);
  if (!partitions.is_ok()) return consume_fail(partitions.status());
  if (opts.partition >= *partitions)
    return consume_fail(error(ErrorCode::kNotFound, fmt::format("topic '{}' has no partition {} (it has {})",
                                                                opts.topic, opts.partition, *partitions)));
  int64_t start = opts.from_beginning ? RD_KAFKA_OFFSET_BEGINNING : opts.offset >= 0 ? opts.offset : RD_KAFKA_OFFSET_END;

  TopicPtr topic(rd_kafka_topic_new(c.get(), opts.topic.c_str(), nullptr));
  QueuePtr queue(rd_kafka_queue_new(c.get()));
  {
    PartitionReaders reader(topic.get(), queue.get());
    for (int32_t p = 0; p < *partitions; ++p) {
      if (opts.partition >= 0 && p != opts.partition) continue;
      if (Status s = reader.start(p, start); !s.is_ok()) return consume_fail(s);
    }
    std::vector<rd_kafka_message_t*> batch(kConsumeBatchMax);
    int64_t printed = 0;
    auto last_progress = Clock::now();
    // The idle timeout counts from the server's first answer (a message or
    // an end of partition): connecting and the first fetch can take longer
    // than a short timeout on a loaded machine, and are not idleness.
    bool answered = false;
    while (opts.max_messages < 0 || printed < opts.max_messages) {
      c.poll(0);
      size_t want = kConsumeBatchMax;
      if (opts.max_messages >= 0) want = size_t(std::min<int64_t>(int64_t(want), opts.max_messages - printed));
      ssize_t n = rd_kafka_consume_batch_queue(queue.get(), kConsumePollMs, batch.data(), want);
      if (n < 0) return consume_fail(kafka_status(rd_kafka_last_error(), "consuming"));
      Status failure;
      for (ssize_t i = 0; i < n; ++i) {
        const rd_kafka_message_t& m = *batch[size_t(i)];
        if (!answered && (m.err == RD_KAFKA_RESP_ERR_NO_ERROR || m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF)) {
          answered = true;
          last_progress = Clock::now();
        }
        if (m.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          print_message(opts, m);
          ++printed;
        } else if (m.err != RD_KAFKA_RESP_ERR__PARTITION_EOF && failure.is_ok()) {
          failure = error(ErrorCode::kIoError, fmt::format("partition {} offset {}: {}", m.partition, m.offset,
                                                           rd_kafka_message_errstr(&m)));
        }
        rd_kafka_message_destroy(batch[size_t(i)]);
      }
      std::fflush(stdout);
      if (!failure.is_ok()) return consume_fail(failure);
      if (n > 0) {
        last_progress = Clock::now();
        continue;
      }
      auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_progress).count();
      if (opts.timeout_ms >= 0 && idle >= (answered ? opts.timeout_ms : std::max<int64_t>(opts.timeout_ms, kFirstAnswerMs))) {
        if (c.all_brokers_down())
          return consume_fail(error(ErrorCode::kIoError, fmt::format("lost the server at {}: {}", c.bootstrap(),
                                                                     c.last_error())));
        if (opts.max_messages < 0) break;
        fmt::print(stderr, "evert consume: {} of {} message(s) after {} ms without new ones\n", printed,
                   opts.max_messages, opts.timeout_ms);
        return 1;
      }
    }
  }
  return 0;
}

}  // namespace

void add_produce_command(CLI::App& app) {
  auto opts = std::make_shared<ProduceOptions>();
  CLI::App* cmd = app.add_subcommand("produce", "Send each line of stdin as one record; exit 0 when all are acknowledged");
  cmd->add_option("TOPIC", opts->topic, "Topic name")->required();
  add_client_options(cmd, opts->client);
  cmd->add_option("--key-separator", opts->key_separator,
                  "Split each line at the first SEP into key and value (lines without SEP have no key)");
  cmd->add_option("--partition", opts->partition, "Send every record to this partition")->check(CLI::NonNegativeNumber);
  cmd->add_option("--acks", opts->acks, "all, 1 or 0")->check(CLI::IsMember({"all", "-1", "1", "0"}))->capture_default_str();
  cmd->add_option("--compression", opts->compression, "none, gzip, snappy, lz4 or zstd")
      ->check(CLI::IsMember({"none", "gzip", "snappy", "lz4", "zstd"}))
      ->capture_default_str();
  cmd->add_option("--timeout-ms", opts->timeout_ms, "Give up on a record not acknowledged within this time")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  cmd->callback([opts] { std::exit(run_produce(*opts)); });
}

void add_consume_command(CLI::App& app) {
  auto opts = std::make_shared<ConsumeOptions>();
  CLI::App* cmd = app.add_subcommand("consume", "Print the records of a topic, one value per line (no consumer group)");
  cmd->add_option("TOPIC", opts->topic, "Topic name")->required();
  add_client_options(cmd, opts->client);
  cmd->add_flag("--from-beginning", opts->from_beginning, "Start at the oldest record (default: only new records)");
  cmd->add_option("--offset", opts->offset, "Start at this offset")->check(CLI::NonNegativeNumber);
  cmd->add_option("--partition", opts->partition, "Read only this partition (default: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-messages", opts->max_messages, "Exit after this many records")->check(CLI::NonNegativeNumber);
  cmd->add_option("--timeout-ms", opts->timeout_ms,
                  "Exit after this long without a new record, counted from the server's first answer (-1: never); with --max-messages not reached, exit 1")
      ->check(CLI::Range(-1, 86'400'000))
      ->capture_default_str();
  cmd->add_flag("--print-key", opts->print_key, "Print the key and the separator before the value");
  cmd->add_flag("--print-offset", opts->print_offset, "Print partition, separator, offset, separator first");
  cmd->add_option("--separator", opts->separator, "Between the printed fields")->capture_default_str();
  cmd->callback([opts] { std::exit(run_consume(*opts)); });
}

}  // namespace evert::cli
