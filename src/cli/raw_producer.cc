#include "cli/raw_producer.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "base/assert.h"
#include "base/bytes.h"
#include "kafka/protocol/messages.h"
#include "log/record_batch.h"

namespace evert::cli {
namespace {

constexpr int16_t kProduceVersion = 7;  // the newest non-flexible Produce
constexpr const char* kClientId = "evert-bench-raw";
// Where the correlation id sits in a request frame: after the frame's size,
// the api key and the api version.
constexpr size_t kCorrelationIdAt = 4 + 2 + 2;

uint64_t now_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

Status errno_status(const std::string& what) { return error(ErrorCode::kIoError, what + ": " + std::strerror(errno)); }

// A connected TCP socket, closed on destruction.
class Socket {
 public:
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status connect(const std::string& host, const std::string& port, int timeout_ms) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0) return error(ErrorCode::kInvalidArgument, fmt::format("{}:{}: {}", host, port, gai_strerror(rc)));
    Status last = error(ErrorCode::kIoError, fmt::format("{}:{}: no address", host, port));
    for (addrinfo* a = found; a; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
        break;
      }
      last = errno_status(fmt::format("connecting to {}:{}", host, port));
      ::close(fd);
    }
    ::freeaddrinfo(found);
    if (fd_ < 0) return last;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // A broker that stops answering fails the run instead of hanging it.
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return Status::ok();
  }
  Status write_all(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN ? error(ErrorCode::kTimeout, "the broker stopped reading requests")
                               : errno_status("sending");
      }
      p += w;
      n -= size_t(w);
    }
    return Status::ok();
  }
  Status read_all(char* p, size_t n) {
    while (n > 0) {
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r == 0) return error(ErrorCode::kClosed, "the broker closed the connection");
      if (r < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN ? error(ErrorCode::kTimeout, "no answer from the broker within the timeout")
                               : errno_status("receiving");
      }
      p += r;
      n -= size_t(r);
    }
    return Status::ok();
  }
  void shutdown() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  int fd_ = -1;
};

// A whole Produce request frame carrying `batch` to `partition`; its
// correlation id is patched in before each send.
std::string produce_frame(const RawProduceOptions& o, int32_t partition, const std::string& batch) {
  kafka::ProduceRequest req;
  req.acks = o.acks;
  req.timeout_ms = o.timeout_ms;
  auto& topic = req.topic_data.emplace_back();
  topic.name = o.topic;
  auto& part = topic.partition_data.emplace_back();
  part.index = partition;
  part.records.owned = batch;
  kafka::Encoder e;
  e.write_int16(kafka::ProduceRequest::kApiKey);
  e.write_int16(kProduceVersion);
  e.write_int32(0);  // correlation id
  e.write_nullable_string(std::string(kClientId), false);
  req.encode(e, kProduceVersion);
  auto body = e.flatten();
  EVERT_CHECK(body.is_ok());
  std::string frame(4, '\0');
  store_be32(reinterpret_cast<uint8_t*>(frame.data()), uint32_t(body->size()));
  return frame + *body;
}

std::string build_batch(int32_t records, const std::string& payload) {
  int64_t ts = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  log::BatchBuilder b(ts);
  for (int32_t i = 0; i < records; ++i) b.add(std::nullopt, payload, ts);
  return b.finish();
}

// Reads one Produce response; fails on a broker error for any partition.
Status read_response(Socket& s, int32_t want_id, std::string* buf) {
  char size_bytes[4];
  EVERT_RETURN_IF_ERROR(s.read_all(size_bytes, 4));
  uint32_t size = load_be32(reinterpret_cast<const uint8_t*>(size_bytes));
  if (size < 4 || size > (64u << 20)) return error(ErrorCode::kCorruption, fmt::format("answer of {} bytes", size));
  buf->resize(size);
  EVERT_RETURN_IF_ERROR(s.read_all(buf->data(), size));
  kafka::Decoder d(MutableByteSpan(reinterpret_cast<uint8_t*>(buf->data()), buf->size()));
  int32_t id = d.read_int32();
  if (id != want_id)
    return error(ErrorCode::kCorruption, fmt::format("answer to request {} while {} was expected", id, want_id));
  kafka::ProduceResponse resp;
  resp.decode(d, kProduceVersion);
  if (!d.ok()) return d.status().with_context("reading a Produce answer");
  for (const auto& t : resp.responses) {
    for (const auto& p : t.partition_responses) {
      if (p.error_code != 0)
        return error(ErrorCode::kIoError,
                     fmt::format("{}/{}: the broker answered error code {}", t.name, p.index, p.error_code));
    }
  }
  return Status::ok();
}

}  // namespace

Result<RawProduceResult> raw_produce(const RawProduceOptions& o, const std::string& payload,
                                     const std::function<void(int64_t)>& progress) {
  if (o.acks != 1 && o.acks != -1)
    return error(ErrorCode::kInvalidArgument, "--raw needs --acks 1 or all (with acks 0 nothing answers)");
  if (o.records <= 0 || o.batch_records <= 0 || o.in_flight <= 0 || o.partitions <= 0)
    return error(ErrorCode::kInvalidArgument, "records, batch records, in-flight requests and partitions must be positive");
  Socket sock;
  EVERT_RETURN_IF_ERROR(sock.connect(o.host, o.port, o.timeout_ms + 5000));

  // One frame per partition for whole batches, and one for the remainder.
  const int64_t requests = (o.records + o.batch_records - 1) / o.batch_records;
  const int32_t last_records = int32_t(o.records - (requests - 1) * o.batch_records);
  const std::string full = build_batch(o.batch_records, payload);
  const std::string tail = build_batch(last_records, payload);
  std::vector<std::string> frames;
  for (int32_t p = 0; p < o.partitions; ++p) frames.push_back(produce_frame(o, p, full));
  std::string tail_frame = produce_frame(o, int32_t((requests - 1) % o.partitions), tail);

  RawProduceResult result;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<uint64_t> sent_at;  // send times of the requests in flight, oldest first
  Status failure;
  bool failed = false;

  std::thread reader([&] {
    std::string buf;
    for (int64_t i = 0; i < requests; ++i) {
      Status s = read_response(sock, int32_t(i & 0x7fffffff), &buf);
      uint64_t now = now_ns();
      std::lock_guard lock(mu);
      if (!s) {
        failure = s;
        failed = true;
        cv.notify_all();
        return;
      }
      result.latency.record(now - sent_at.front());
      sent_at.pop_front();
      result.records += i + 1 == requests ? last_records : o.batch_records;
      result.elapsed_ns = now;
      cv.notify_all();
    }
  });

  const uint64_t start = now_ns();
  uint64_t next_progress = start + 1'000'000'000;
  Status send_error;
  for (int64_t i = 0; i < requests; ++i) {
    int64_t acked = -1;
    {
      std::unique_lock lock(mu);
      while (!failed && int64_t(sent_at.size()) >= o.in_flight) cv.wait_for(lock, std::chrono::milliseconds(100));
      if (failed) break;
      sent_at.push_back(now_ns());
      if (sent_at.back() >= next_progress) {
        acked = result.records;
        next_progress = sent_at.back() + 1'000'000'000;
      }
    }
    if (acked >= 0) progress(acked);
    std::string& frame = i + 1 == requests ? tail_frame : frames[size_t(i % o.partitions)];
    store_be32(reinterpret_cast<uint8_t*>(frame.data()) + kCorrelationIdAt, uint32_t(i & 0x7fffffff));
    send_error = sock.write_all(frame.data(), frame.size());
    if (!send_error) break;
  }
  if (!send_error) sock.shutdown();  // the reader stops at once
  reader.join();
  if (!send_error) return send_error;
  if (failed) return failure;
  result.elapsed_ns -= start;
  return result;
}

}  // namespace evert::cli
