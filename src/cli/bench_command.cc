// `evert bench produce|consume|e2e`: a load generator on librdkafka, in the
// manner of Kafka's producer/consumer performance tools.
//
// Each run prints a progress line on stderr every second (overwritten in
// place on a terminal) and one summary line on stdout whose shape scripts
// may rely on:
//   produce: 1000000 records, 100 B, 912345.6 records/s, 91.2 MB/s, latency ms p50 1.200 p99 4.500 p999 8.900 max 12.000
//   consume: 1000000 records, 100 B, 2345678.9 records/s, 234.6 MB/s
//   e2e: 100000 records, 100 B, 49999.8 records/s, 5.0 MB/s, latency ms p50 0.800 p99 2.100 p999 4.000 max 6.300
// MB is 10^6 bytes of record values. produce latency is send -> delivery
// report; e2e latency is send -> received by a consumer in the same process,
// from a send time carried in the value.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "cli/kafka_client.h"
#include "cli/latency_histogram.h"
#include "cli/raw_producer.h"

namespace evert::cli {
namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;
constexpr uint64_t kReportIntervalNs = kNsPerSecond;
constexpr uint64_t kFirstRecordMs = 10'000;  // consume: the longest wait for the first record
// Produce calls between two polls for delivery reports.
constexpr int64_t kProducesPerPoll = 1024;
// e2e values start with a run id and the send time.
constexpr int32_t kE2eHeaderBytes = 16;
// A paced producer may run this far ahead of its schedule, so that at high
// rates it sends short bursts and sleeps between them instead of spinning a
// core away from the server and the consumer (2-core machines).
constexpr uint64_t kPaceAheadMaxNs = 200'000;
// Longest pause of a paced producer before it checks the schedule again.
constexpr uint64_t kPaceSleepMaxNs = 1'000'000;

uint64_t now_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

struct BenchOptions {
  ClientOptions client;
  std::string topic;
  int64_t records = 1'000'000;
  int32_t record_size = 100;
  int32_t partitions = 1;
  std::string acks = "1";
  int64_t throughput = -1;  // produce: records/s cap, -1 = as fast as possible
  int64_t rate = 0;         // e2e: records/s
  int32_t batch_size = 1'000'000;
  double linger_ms = 5;
  std::string compression = "none";
  int timeout_ms = 30'000;  // delivery timeout, and how long consumers wait without progress
  bool raw = false;        // produce: pre-built batches without librdkafka (raw_producer.h)
  int32_t in_flight = 5;   // produce --raw: requests awaiting an answer
};

int bench_fail(const char* what, const Status& s) {
  fmt::print(stderr, "evert bench {}: {}\n", what, s.message());
  return s.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

// The progress line: rewritten in place on a terminal, one line per report
// otherwise (logs, CI).
class Progress {
 public:
  Progress() : tty_(isatty(STDERR_FILENO) != 0) {}
  ~Progress() {
    if (tty_ && printed_) fmt::print(stderr, "\n");
  }
  void print(const std::string& line) {
    printed_ = true;
    if (tty_) {
      fmt::print(stderr, "\r{}\x1b[K", line);
    } else {
      fmt::print(stderr, "{}\n", line);
    }
  }

 private:
  bool tty_;
  bool printed_ = false;
};

double ms(uint64_t ns) { return double(ns) / 1e6; }

std::string latency_text(const LatencyHistogram& h, bool with_p999) {
  std::string out = fmt::format("latency ms p50 {:.3f} p99 {:.3f}", ms(h.quantile_ns(0.50)), ms(h.quantile_ns(0.99)));
  if (with_p999) out += fmt::format(" p999 {:.3f}", ms(h.quantile_ns(0.999)));
  return out + fmt::format(" max {:.3f}", ms(h.max_ns()));
}

std::string rate_text(int64_t records, int64_t bytes, uint64_t elapsed_ns) {
  double seconds = std::max(1e-9, double(elapsed_ns) / 1e9);
  return fmt::format("{:.1f} records/s, {:.1f} MB/s", double(records) / seconds, double(bytes) / seconds / 1e6);
}

// Makes sure `topic` exists, creating it with `partitions` when missing.
Status ensure_topic(const ClientOptions& opts, const std::string& topic, int32_t partitions) {
  EVERT_ASSIGN_OR_RETURN(auto admin, KafkaClient::create(ClientKind::kProducer, opts, {}));
  EVERT_RETURN_IF_ERROR(admin->connect());
  auto count = admin->partition_count(topic);
  if (count.is_ok()) return Status::ok();
  if (count.status().code() != ErrorCode::kNotFound) return count.status();
  Status s = admin->create_topic(topic, partitions, {});
  if (s.code() == ErrorCode::kAlreadyExists) return Status::ok();  // another bench won the race
  return s;
}

KafkaClient::Properties producer_properties(const BenchOptions& o) {
  return {
      {"request.required.acks", o.acks == "all" ? "-1" : o.acks},
      {"linger.ms", fmt::format("{}", o.linger_ms)},
      {"batch.size", std::to_string(o.batch_size)},
      // Let batch.size, not a message count, close a batch.
      {"batch.num.messages", "1000000"},
      {"queue.buffering.max.messages", "2000000"},
      {"compression.codec", o.compression},
      {"message.timeout.ms", std::to_string(o.timeout_ms)},
  };
}

KafkaClient::Properties consumer_properties() {
  return {
      {"auto.offset.reset", "error"},
      // Big fetches: one fetch per broker is in flight at a time, so its
      // size bounds the throughput.
      {"fetch.message.max.bytes", "4194304"},
      {"fetch.max.bytes", "67108864"},
      {"queued.min.messages", "1000000"},
      {"queued.max.messages.kbytes", "262144"},
      {"fetch.wait.max.ms", "100"},
  };
}

// A payload of pseudo-random printable bytes (a fixed seed: runs compare).
std::string make_payload(int32_t size) {
  std::string payload(size_t(size), '\0');
  std::mt19937 gen(42);
  for (char& c : payload) c = char('a' + gen() % 26);
  return payload;
}

// Sleeps until a record due at `due_ns` may be sent (kPaceAheadMaxNs early
// at most), serving `client`'s callbacks.
void wait_until(KafkaClient& client, uint64_t due_ns) {
  for (uint64_t t = now_ns(); t + kPaceAheadMaxNs < due_ns; t = now_ns()) {
    client.poll(0);
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(due_ns - t, kPaceSleepMaxNs)));
  }
}

// Hands one record to librdkafka; on a full queue serves deliveries and
// retries. Returns the error of a record librdkafka refuses. (A template:
// this runs per record, and a std::function of a capturing lambda would
// allocate.)
template <typename OnWait>
rd_kafka_resp_err_t produce_one(KafkaClient& client, rd_kafka_topic_t* topic, int flags, const std::string& value,
                                void* opaque, const OnWait& on_wait) {
  for (;;) {
    if (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, flags, const_cast<char*>(value.data()), value.size(), nullptr,
                         0, opaque) == 0)
      return RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return err;
    client.poll(1);
    on_wait();
  }
}

// Waits for every outstanding delivery report, up to timeout_ms.
template <typename OnWait>
bool drain(KafkaClient& client, int timeout_ms, const OnWait& on_wait) {
  uint64_t deadline = now_ns() + uint64_t(timeout_ms) * 1'000'000;
  while (rd_kafka_outq_len(client.get()) > 0 && now_ns() < deadline) {
    client.poll(100);
    on_wait();
  }
  return rd_kafka_outq_len(client.get()) == 0;
}

// ------------------------------------------------------------------ produce

struct ProduceTally {
  int64_t acked = 0;
  int64_t failed = 0;
  rd_kafka_resp_err_t first_error = RD_KAFKA_RESP_ERR_NO_ERROR;
  uint64_t last_ack_ns = 0;
  LatencyHistogram total;
  LatencyHistogram interval;
  int64_t interval_acked = 0;
};

// The first server of a bootstrap list: "host:port", "[v6 address]:port".
Result<std::pair<std::string, std::string>> first_server(const std::string& bootstrap) {
  std::string first = bootstrap.substr(0, bootstrap.find(','));
  size_t colon = first.rfind(':');
  if (colon == std::string::npos || colon + 1 == first.size())
    return error(ErrorCode::kInvalidArgument, fmt::format("bootstrap server \"{}\" has no port", first));
  std::string host = first.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, first.substr(colon + 1));
}

int run_bench_produce_raw(const BenchOptions& o) {
  if (o.acks == "0")
    return bench_fail("produce", error(ErrorCode::kInvalidArgument,
                                       "--raw needs --acks 1 or all (with acks 0 nothing answers)"));
  if (Status s = ensure_topic(o.client, o.topic, o.partitions); !s.is_ok()) return bench_fail("produce", s);
  auto server = first_server(o.client.bootstrap);
  if (!server.is_ok()) return bench_fail("produce", server.status());
  int32_t partitions = o.partitions;
  {
    auto admin = KafkaClient::create(ClientKind::kProducer, o.client, {});
    if (!admin.is_ok()) return bench_fail("produce", admin.status());
    if (Status s = (*admin)->connect(); !s.is_ok()) return bench_fail("produce", s);
    auto count = (*admin)->partition_count(o.topic);
    if (!count.is_ok()) return bench_fail("produce", count.status());
    partitions = *count;
  }
  RawProduceOptions ro;
  ro.host = server->first;
  ro.port = server->second;
  ro.topic = o.topic;
  ro.partitions = partitions;
  ro.records = o.records;
  ro.acks = o.acks == "1" ? int16_t(1) : o.acks == "0" ? int16_t(0) : int16_t(-1);
  // --batch-size keeps its meaning: the bytes of values in one batch.
  ro.batch_records = std::max<int32_t>(1, o.batch_size / std::max<int32_t>(1, o.record_size));
  ro.in_flight = o.in_flight;
  ro.timeout_ms = o.timeout_ms;
  Progress progress;
  const uint64_t start_ns = now_ns();
  auto result = raw_produce(ro, make_payload(o.record_size), [&](int64_t acked) {
    progress.print(fmt::format("produce: {:.0f} s, {} records acked", double(now_ns() - start_ns) / 1e9, acked));
  });
  if (!result.is_ok()) return bench_fail("produce", result.status());
  const RawProduceResult& r = *result;
  // Latency is per request (one batch of batch_records records) here.
  fmt::print("produce: {} records, {} B, {}, {}\n", r.records, o.record_size,
             rate_text(r.records, r.records * o.record_size, r.elapsed_ns), latency_text(r.latency, true));
  return 0;
}

int run_bench_produce(const BenchOptions& o) {
  if (o.raw) return run_bench_produce_raw(o);
  if (Status s = ensure_topic(o.client, o.topic, o.partitions); !s.is_ok()) return bench_fail("produce", s);
  auto tally = std::make_unique<ProduceTally>();  // two histograms: too big for the stack
  auto on_delivery = [t = tally.get()](const rd_kafka_message_t& m) {
    uint64_t now = now_ns();
    if (m.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (t->failed++ == 0) t->first_error = m.err;
      return;
    }
    uint64_t latency = now - uint64_t(reinterpret_cast<uintptr_t>(m._private));
    t->total.record(latency);
    t->interval.record(latency);
    ++t->acked;
    ++t->interval_acked;
    t->last_ack_ns = now;
  };
  // Sent without a copy, so declared before the client that may hold it.
  const std::string payload = make_payload(o.record_size);
  auto client = KafkaClient::create(ClientKind::kProducer, o.client, producer_properties(o), on_delivery);
  if (!client.is_ok()) return bench_fail("produce", client.status());
  KafkaClient& c = **client;
  if (Status s = c.connect(); !s.is_ok()) return bench_fail("produce", s);
  TopicPtr topic(rd_kafka_topic_new(c.get(), o.topic.c_str(), nullptr));

  Progress progress;
  const uint64_t start_ns = now_ns();
  uint64_t next_report_ns = start_ns + kReportIntervalNs;
  uint64_t interval_start_ns = start_ns;
  auto maybe_report = [&] {
    uint64_t now = now_ns();
    if (now < next_report_ns) return;
    ProduceTally& t = *tally;
    progress.print(fmt::format("produce: {:.0f} s, {} records acked, {}, {}", double(now - start_ns) / 1e9, t.acked,
                               rate_text(t.interval_acked, t.interval_acked * o.record_size, now - interval_start_ns),
                               latency_text(t.interval, false)));
    t.interval.reset();
    t.interval_acked = 0;
    interval_start_ns = now;
    next_report_ns = now + kReportIntervalNs;
  };

  for (int64_t i = 0; i < o.records; ++i) {
    if (o.throughput > 0) wait_until(c, start_ns + uint64_t(double(i) * 1e9 / double(o.throughput)));
    rd_kafka_resp_err_t err =
        produce_one(c, topic.get(), 0, payload, reinterpret_cast<void*>(uintptr_t(now_ns())), maybe_report);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return bench_fail("produce", kafka_status(err, "producing"));
    if (i % kProducesPerPoll == 0) {
      c.poll(0);
      maybe_report();
    }
  }
  if (!drain(c, o.timeout_ms + 5000, maybe_report))
    return bench_fail("produce", error(ErrorCode::kTimeout, "records still unacknowledged after the timeout"));
  const ProduceTally& t = *tally;
  if (t.failed > 0)
    return bench_fail("produce", kafka_status(t.first_error, fmt::format("{} of {} records failed", t.failed,
                                                                         o.records)));
  fmt::print("produce: {} records, {} B, {}, {}\n", t.acked, o.record_size,
             rate_text(t.acked, t.acked * o.record_size, t.last_ack_ns - start_ns), latency_text(t.total, true));
  return 0;
}

// ------------------------------------------------------------------ consume


struct ConsumeTally {
  rd_kafka_t* rk = nullptr;
  int64_t wanted = 0;
  int64_t records = 0;
  int64_t bytes = 0;
  int64_t interval_records = 0;
  int64_t interval_bytes = 0;
  uint64_t last_ns = 0;
  std::string error;
};

void on_consumed(rd_kafka_message_t* m, void* opaque) {
  auto* t = static_cast<ConsumeTally*>(opaque);
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && t->error.empty())
      t->error = fmt::format("partition {} offset {}: {}", m->partition, m->offset, rd_kafka_message_errstr(m));
    return;
  }
  if (t->records >= t->wanted) return;
  ++t->records;
  ++t->interval_records;
  t->bytes += int64_t(m->len);
  t->interval_bytes += int64_t(m->len);
  if (t->records == t->wanted) {
    t->last_ns = now_ns();
    rd_kafka_yield(t->rk);
  }
}

int run_bench_consume(const BenchOptions& o) {
  auto client = KafkaClient::create(ClientKind::kConsumer, o.client, consumer_properties());
  if (!client.is_ok()) return bench_fail("consume", client.status());
  KafkaClient& c = **client;
  if (Status s = c.connect(); !s.is_ok()) return bench_fail("consume", s);
  auto partitions = c.partition_count(o.topic);
  if (!partitions.is_ok()) return bench_fail("consume", partitions.status());
  TopicPtr topic(rd_kafka_topic_new(c.get(), o.topic.c_str(), nullptr));
  QueuePtr queue(rd_kafka_queue_new(c.get()));
  ConsumeTally t;
  t.rk = c.get();
  t.wanted = o.records;
  Progress progress;
  PartitionReaders readers(topic.get(), queue.get());
  const uint64_t start_ns = now_ns();
  for (int32_t p = 0; p < *partitions; ++p)
    if (Status s = readers.start(p, RD_KAFKA_OFFSET_BEGINNING); !s.is_ok()) return bench_fail("consume", s);
  uint64_t next_report_ns = start_ns + kReportIntervalNs;
  uint64_t interval_start_ns = start_ns;
  uint64_t last_progress_ns = start_ns;
  while (t.records < t.wanted) {
    c.poll(0);
    int64_t before = t.records;
    rd_kafka_consume_callback_queue(queue.get(), 100, on_consumed, &t);
    if (!t.error.empty()) return bench_fail("consume", error(ErrorCode::kIoError, t.error));
    uint64_t now = now_ns();
    if (t.records > before) last_progress_ns = now;
    // Before the first record, connecting and the first fetch are not idleness.
    uint64_t idle_ms = t.records > 0 ? uint64_t(o.timeout_ms) : std::max<uint64_t>(uint64_t(o.timeout_ms), kFirstRecordMs);
    if (now - last_progress_ns > idle_ms * 1'000'000)
      return bench_fail("consume", error(ErrorCode::kTimeout,
                                         fmt::format("only {} of {} records in topic '{}' after {} ms without new ones",
                                                     t.records, t.wanted, o.topic, o.timeout_ms)));
    if (now >= next_report_ns) {
      progress.print(fmt::format("consume: {:.0f} s, {} records, {}", double(now - start_ns) / 1e9, t.records,
                                 rate_text(t.interval_records, t.interval_bytes, now - interval_start_ns)));
      t.interval_records = 0;
      t.interval_bytes = 0;
      interval_start_ns = now;
      next_report_ns = now + kReportIntervalNs;
    }
  }
  fmt::print("consume: {} records, {} B, {}\n", t.records, t.records > 0 ? t.bytes / t.records : 0,
             rate_text(t.records, t.bytes, t.last_ns - start_ns));
  return 0;
}

// ------------------------------------------------------------------ e2e

// Shared between the producing thread and the consuming (main) thread.
struct E2eShared {
  std::atomic<int64_t> sent{0};
  std::atomic<int64_t> failed{0};
  std::atomic<bool> producer_done{false};
  std::atomic<bool> stop{false};  // the consumer gave up
  std::atomic<uint64_t> first_send_ns{0};
  std::string producer_error;  // written before producer_done is set
};

void e2e_produce(const BenchOptions& o, KafkaClient& c, uint64_t run_id, E2eShared& shared) {
  TopicPtr topic(rd_kafka_topic_new(c.get(), o.topic.c_str(), nullptr));
  std::string value = make_payload(o.record_size);
  std::memcpy(value.data(), &run_id, sizeof(run_id));
  const uint64_t start_ns = now_ns();
  shared.first_send_ns = start_ns;
  auto nothing = [] {};
  for (int64_t i = 0; i < o.records && !shared.stop; ++i) {
    wait_until(c, start_ns + uint64_t(double(i) * 1e9 / double(o.rate)));
    uint64_t sent_ns = now_ns();
    std::memcpy(value.data() + sizeof(run_id), &sent_ns, sizeof(sent_ns));
    rd_kafka_resp_err_t err = produce_one(c, topic.get(), RD_KAFKA_MSG_F_COPY, value, nullptr, nothing);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      shared.producer_error = kafka_status(err, "producing").message();
      break;
    }
    ++shared.sent;
    if (i % kProducesPerPoll == 0) c.poll(0);
  }
  if (shared.producer_error.empty() && !drain(c, o.timeout_ms + 5000, nothing))
    shared.producer_error = "records still unacknowledged after the timeout";
  shared.producer_done = true;
}

struct E2eTally {
  uint64_t run_id = 0;
  int64_t received = 0;
  int64_t interval_received = 0;
  uint64_t last_ns = 0;
  LatencyHistogram total;
  LatencyHistogram interval;
  std::string error;
};

void on_e2e_consumed(rd_kafka_message_t* m, void* opaque) {
  auto* t = static_cast<E2eTally*>(opaque);
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && t->error.empty())
      t->error = fmt::format("partition {} offset {}: {}", m->partition, m->offset, rd_kafka_message_errstr(m));
    return;
  }
  uint64_t now = now_ns();
  if (m->len < size_t(kE2eHeaderBytes)) return;
  uint64_t run_id;
  uint64_t sent_ns;
  std::memcpy(&run_id, m->payload, sizeof(run_id));
  std::memcpy(&sent_ns, static_cast<const char*>(m->payload) + sizeof(run_id), sizeof(sent_ns));
  if (run_id != t->run_id) return;  // another run's record
  t->total.record(now - sent_ns);
  t->interval.record(now - sent_ns);
  ++t->received;
  ++t->interval_received;
  t->last_ns = now;
}

// Starts reading every partition of the topic at its current end.
Status start_at_end(KafkaClient& c, const std::string& topic_name, int32_t partitions, PartitionReaders& readers) {
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(c.get(), topic_name.c_str(), p, &low, &high, kRequestTimeoutMs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_status(err, fmt::format("end of partition {}", p));
    EVERT_RETURN_IF_ERROR(readers.start(p, high));
  }
  return Status::ok();
}

int run_bench_e2e(const BenchOptions& o) {
  if (o.record_size < kE2eHeaderBytes)
    return bench_fail("e2e", error(ErrorCode::kInvalidArgument,
                                   fmt::format("--record-size must be at least {} (run id and send time)",
                                               kE2eHeaderBytes)));
  if (Status s = ensure_topic(o.client, o.topic, o.partitions); !s.is_ok()) return bench_fail("e2e", s);
  auto consumer = KafkaClient::create(ClientKind::kConsumer, o.client, consumer_properties());
  if (!consumer.is_ok()) return bench_fail("e2e", consumer.status());
  auto producer = KafkaClient::create(ClientKind::kProducer, o.client, producer_properties(o));
  if (!producer.is_ok()) return bench_fail("e2e", producer.status());
  KafkaClient& c = **consumer;
  if (Status s = c.connect(); !s.is_ok()) return bench_fail("e2e", s);
  if (Status s = (*producer)->connect(); !s.is_ok()) return bench_fail("e2e", s);
  auto partitions = c.partition_count(o.topic);
  if (!partitions.is_ok()) return bench_fail("e2e", partitions.status());

  TopicPtr topic(rd_kafka_topic_new(c.get(), o.topic.c_str(), nullptr));
  QueuePtr queue(rd_kafka_queue_new(c.get()));
  PartitionReaders readers(topic.get(), queue.get());
  if (Status s = start_at_end(c, o.topic, *partitions, readers); !s.is_ok()) return bench_fail("e2e", s);

  auto tally = std::make_unique<E2eTally>();
  tally->run_id = std::random_device{}() | (uint64_t(std::random_device{}()) << 32);
  E2eShared shared;
  std::thread producing([&] { e2e_produce(o, **producer, tally->run_id, shared); });

  Progress progress;
  const uint64_t start_ns = now_ns();
  uint64_t next_report_ns = start_ns + kReportIntervalNs;
  uint64_t interval_start_ns = start_ns;
  uint64_t last_progress_ns = start_ns;
  E2eTally& t = *tally;
  Status failure;
  while (t.received < o.records) {
    c.poll(0);
    int64_t before = t.received;
    rd_kafka_consume_callback_queue(queue.get(), 10, on_e2e_consumed, &t);
    uint64_t now = now_ns();
    if (!t.error.empty()) {
      failure = error(ErrorCode::kIoError, t.error);
      break;
    }
    if (shared.producer_done && !shared.producer_error.empty()) {
      failure = error(ErrorCode::kIoError, shared.producer_error);
      break;
    }
    if (t.received > before || !shared.producer_done) last_progress_ns = now;
    if (now - last_progress_ns > uint64_t(o.timeout_ms) * 1'000'000) {
      failure = error(ErrorCode::kTimeout, fmt::format("received {} of {} records; nothing new for {} ms", t.received,
                                                       o.records, o.timeout_ms));
      break;
    }
    if (now >= next_report_ns) {
      progress.print(fmt::format("e2e: {:.0f} s, {} sent, {} received, {}, {}", double(now - start_ns) / 1e9,
                                 shared.sent.load(), t.received,
                                 rate_text(t.interval_received, t.interval_received * o.record_size,
                                           now - interval_start_ns),
                                 latency_text(t.interval, false)));
      t.interval.reset();
      t.interval_received = 0;
      interval_start_ns = now;
      next_report_ns = now + kReportIntervalNs;
    }
  }
  shared.stop = true;
  producing.join();
  if (!failure.is_ok()) return bench_fail("e2e", failure);
  fmt::print("e2e: {} records, {} B, {}, {}\n", t.received, o.record_size,
             rate_text(t.received, t.received * o.record_size, t.last_ns - shared.first_send_ns),
             latency_text(t.total, true));
  return 0;
}

// ------------------------------------------------------------------ flags

void add_common(CLI::App* cmd, BenchOptions& o) {
  add_client_options(cmd, o.client);
  cmd->add_option("--topic", o.topic, "Topic to use")->required();
  cmd->add_option("--records", o.records, "Records to send or read")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40))
      ->capture_default_str();
  cmd->add_option("--timeout-ms", o.timeout_ms, "Delivery timeout, and the longest wait without progress")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
}

void add_producer_flags(CLI::App* cmd, BenchOptions& o) {
  cmd->add_option("--record-size", o.record_size, "Value bytes per record")
      ->check(CLI::Range(0, 10'000'000))
      ->capture_default_str();
  cmd->add_option("--partitions", o.partitions, "Partitions when the topic is created")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--acks", o.acks, "1, all or 0")->check(CLI::IsMember({"0", "1", "all", "-1"}))->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size, "librdkafka batch.size: largest batch in bytes")
      ->check(CLI::Range(1, 100'000'000))
      ->capture_default_str();
  cmd->add_option("--linger-ms", o.linger_ms, "librdkafka linger.ms: how long a batch may wait to fill")
      ->check(CLI::Range(0.0, 900'000.0))
      ->capture_default_str();
  cmd->add_option("--compression", o.compression, "none, gzip, snappy, lz4 or zstd")
      ->check(CLI::IsMember({"none", "gzip", "snappy", "lz4", "zstd"}))
      ->capture_default_str();
}

}  // namespace

void add_bench_commands(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "Load generators: produce, consume and end-to-end latency");
  bench->require_subcommand(1);

  auto produce = std::make_shared<BenchOptions>();
  CLI::App* p = bench->add_subcommand("produce", "Send records as fast as allowed; report rate and ack latency");
  add_common(p, *produce);
  add_producer_flags(p, *produce);
  p->add_option("--throughput", produce->throughput, "Cap in records/s (-1: no cap)")
      ->check(CLI::Range(int64_t(-1), int64_t(1) << 40))
      ->capture_default_str();
  p->add_flag("--raw", produce->raw,
              "Send pre-built batches of --batch-size bytes as Produce requests, without librdkafka: "
              "measures the broker and its disk rather than the client (one broker; acks 1 or all)");
  p->add_option("--in-flight", produce->in_flight, "--raw: requests sent and not yet answered")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  p->callback([produce] { std::exit(run_bench_produce(*produce)); });

  auto consume = std::make_shared<BenchOptions>();
  CLI::App* c = bench->add_subcommand("consume", "Read records from the beginning of every partition; report rate");
  add_common(c, *consume);
  c->callback([consume] { std::exit(run_bench_consume(*consume)); });

  auto e2e = std::make_shared<BenchOptions>();
  e2e->records = 100'000;
  e2e->linger_ms = 0;  // latency first: a batch leaves as soon as the connection is free
  CLI::App* e = bench->add_subcommand("e2e", "Produce at a fixed rate and consume in the same process; "
                                             "report produce -> consume latency");
  add_common(e, *e2e);
  add_producer_flags(e, *e2e);
  e->add_option("--rate", e2e->rate, "Records/s to send")->required()->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  e->callback([e2e] { std::exit(run_bench_e2e(*e2e)); });
}

}  // namespace evert::cli
