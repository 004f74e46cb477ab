// TCP serving for length-prefixed protocols (Kafka's framing: a 4-byte
// big-endian size, then that many bytes).
//
// NetServer owns the I/O threads (Boost.Asio, kept out of this header). A
// FrameHandler receives each complete frame with a Reply; replies may come
// from any thread, in any order, and are written strictly in request order
// per connection. Responses are lists of parts: memory, or file ranges sent
// with sendfile(2) without copying.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "base/status.h"
#include "io/file_range.h"

namespace evert::net {

using OutPart = std::variant<std::string, io::FileRange>;

// An allocator whose resize() leaves new bytes uninitialized: a frame's
// buffer is always overwritten by the socket read, and zero-filling it first
// cost 10-15% of the server's CPU on produce.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// The bytes of one request frame (after its size prefix).
using FrameBuffer = std::vector<uint8_t, UninitializedAllocator<uint8_t>>;

struct ConnectionInfo {
  uint64_t id = 0;
  std::string peer;  // "127.0.0.1:53422"
};

class Connection;

// The right to answer one request. Exactly one of send/skip/close should be
// called; a Reply destroyed unanswered closes the connection (a handler bug
// must not leave a client waiting forever). Thread-safe, move-only.
class Reply {
 public:
  Reply() = default;  // answers nothing (for default-constructed holders)
  Reply(std::weak_ptr<Connection> conn, uint64_t seq);
  Reply(Reply&& other) noexcept;
  Reply& operator=(Reply&& other) noexcept;
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  ~Reply();

  // Sends a whole frame (size prefix included) made of `parts`.
  void send(std::vector<OutPart> parts);
  // Sends the frame, then closes the connection.
  void send_then_close(std::vector<OutPart> parts);
  // Sends nothing for this request (Kafka produce with acks=0).
  void skip();
  // Closes the connection once earlier responses are written.
  void close();

 private:
  void finish(int kind, std::vector<OutPart> parts);
  std::weak_ptr<Connection> conn_;
  uint64_t seq_ = 0;
  bool done_ = true;
};

class FrameHandler {
 public:
  virtual ~FrameHandler() = default;
  // `frame` holds the bytes after the size prefix. Runs on an I/O thread.
  virtual void on_frame(const ConnectionInfo& conn, FrameBuffer frame, Reply reply) = 0;
  virtual void on_close(const ConnectionInfo& /*conn*/) {}
};

struct ListenerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                                   // 0 = any free port
  uint32_t max_frame_bytes = 100u << 20;          // larger frames close the connection
  uint32_t max_in_flight_per_connection = 1000;   // reading pauses beyond this
  uint32_t max_connections = 4096;                // further connections are closed at once
};

struct NetStats {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> frames_received{0};
  std::atomic<uint64_t> frames_rejected{0};  // oversize or malformed size
  std::atomic<int64_t> connections_open{0};
};

class NetServer {
 public:
  explicit NetServer(int io_threads);
  ~NetServer();

  // Binds and starts accepting; returns the bound port. `handler` must
  // outlive the server.
  Result<int> listen(const ListenerOptions& options, FrameHandler* handler);
  void start();
  // Stops accepting, closes every connection and joins the I/O threads.
  void stop();

  // Runs `fn` on an I/O thread after `delay` (timers for long polls).
  void run_after(std::chrono::milliseconds delay, std::function<void()> fn);
  // Runs `fn` on an I/O thread soon.
  void post(std::function<void()> fn);

  const NetStats& stats() const;

 private:
  friend class Connection;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evert::net
