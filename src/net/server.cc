#include "net/server.h"

#include <sys/sendfile.h>

#include <csignal>

#include <boost/asio.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/logging.h"

namespace evert::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
enum ReplyKind { kSend = 0, kSkip = 1, kClose = 2, kSendThenClose = 3 };
constexpr size_t kFramePrefixBytes = 4;
// Responses written with one gather-write at most.
constexpr size_t kCoalesceResponsesMax = 64;
constexpr size_t kSendfileChunkBytes = 1u << 30;
// A frame's buffer starts at this size and doubles as its bytes arrive, so a
// peer that declares a large frame and sends little of it cannot make the
// server reserve the declared size: a connection holds at most this much, or
// twice what it has sent. Frames up to this size (most produce requests) are
// read in one go, without the copies that growing costs.
constexpr size_t kFrameFirstReadBytes = 1u << 20;
}  // namespace

struct NetServer::Impl {
  explicit Impl(int threads) : io_threads(threads), work(asio::make_work_guard(io)) {}

  asio::io_context io;
  int io_threads;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::mutex conns_mu;
  std::set<std::shared_ptr<Connection>> conns;
  std::atomic<uint64_t> next_conn_id{1};
  NetStats stats;
  bool started = false;
  bool stopped = false;

  void accept(tcp::acceptor* acceptor, ListenerOptions options, FrameHandler* handler);
  void forget(const std::shared_ptr<Connection>& c) {
    std::lock_guard lock(conns_mu);
    conns.erase(c);
  }
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(NetServer::Impl* server, tcp::socket socket, FrameHandler* handler, const ListenerOptions& options,
             ConnectionInfo info)
      : server_(server),
        socket_(std::move(socket)),
        strand_(asio::make_strand(server->io)),
        handler_(handler),
        options_(options),
        info_(std::move(info)) {}

  void start() {
    boost::system::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    asio::dispatch(strand_, [self = shared_from_this()] { self->read_header(); });
  }

  // From any thread: records the answer to request `seq`.
  void deliver(uint64_t seq, int kind, std::vector<OutPart> parts) {
    asio::post(strand_, [self = shared_from_this(), seq, kind, parts = std::move(parts)]() mutable {
      self->ready_.emplace(seq, Pending{kind, std::move(parts)});
      self->maybe_write();
    });
  }

  void shutdown() {
    asio::post(strand_, [self = shared_from_this()] { self->close_now(); });
  }

 private:
  struct Pending {
    int kind;
    std::vector<OutPart> parts;
  };

  void read_header() {
    if (closed_) return;
    asio::async_read(socket_, asio::buffer(size_buf_, kFramePrefixBytes),
                     asio::bind_executor(strand_, [self = shared_from_this()](boost::system::error_code ec, size_t) {
                       self->on_header(ec);
                     }));
  }

  void on_header(boost::system::error_code ec) {
    if (ec) return close_now();
    int32_t size = int32_t(load_be32(size_buf_));
    if (size <= 0 || uint32_t(size) > options_.max_frame_bytes) {
      ++server_->stats.frames_rejected;
      log_warn("connection {} from {}: frame of {} bytes is outside [1, {}]; closing", info_.id, info_.peer, size,
               options_.max_frame_bytes);
      return close_now();
    }
    frame_bytes_ = size_t(size);
    body_.clear();
    read_body_part();
  }

  // Reads the next part of the frame body into a buffer grown by doubling.
  void read_body_part() {
    size_t have = body_.size();
    size_t want = std::min(frame_bytes_, std::max(kFrameFirstReadBytes, 2 * have));
    body_.resize(want);
    asio::async_read(socket_, asio::buffer(body_.data() + have, want - have),
                     asio::bind_executor(strand_, [self = shared_from_this()](boost::system::error_code ec, size_t) {
                       if (ec) return self->close_now();
                       if (self->body_.size() < self->frame_bytes_) return self->read_body_part();
                       self->on_body(ec);
                     }));
  }

  void on_body(boost::system::error_code ec) {
    if (ec) return close_now();
    ++server_->stats.frames_received;
    uint64_t seq = next_seq_++;
    ++in_flight_;
    FrameBuffer frame;
    frame.swap(body_);
    handler_->on_frame(info_, std::move(frame), Reply(weak_from_this(), seq));
    if (in_flight_ < options_.max_in_flight_per_connection) {
      read_header();
    } else {
      reading_paused_ = true;
    }
  }

  void maybe_write() {
    if (writing_ || closed_) return;
    std::vector<OutPart> batch;
    size_t responses = 0;
    bool close_after = false;
    for (;;) {
      auto it = ready_.find(next_write_seq_);
      if (it == ready_.end() || responses >= kCoalesceResponsesMax) break;
      Pending p = std::move(it->second);
      ready_.erase(it);
      ++next_write_seq_;
      --in_flight_;
      if (p.kind == kClose) {
        close_after = true;
        break;
      }
      if (p.kind == kSend || p.kind == kSendThenClose) {
        for (auto& part : p.parts) batch.push_back(std::move(part));
        ++responses;
      }
      if (p.kind == kSendThenClose) {
        close_after = true;
        break;
      }
    }
    if (reading_paused_ && in_flight_ < options_.max_in_flight_per_connection) {
      reading_paused_ = false;
      read_header();
    }
    if (batch.empty()) {
      if (close_after) close_now();
      return;
    }
    writing_ = true;
    close_after_write_ = close_after;
    out_ = std::move(batch);
    out_index_ = 0;
    write_next();
  }

  // Writes out_[out_index_..]: runs of memory parts as one gather-write, file
  // ranges with sendfile.
  void write_next() {
    if (closed_) return;
    if (out_index_ >= out_.size()) {
      writing_ = false;
      out_.clear();
      if (close_after_write_) return close_now();
      return maybe_write();
    }
    if (std::holds_alternative<std::string>(out_[out_index_])) {
      std::vector<asio::const_buffer> bufs;
      size_t end = out_index_;
      while (end < out_.size() && std::holds_alternative<std::string>(out_[end])) {
        const auto& s = std::get<std::string>(out_[end]);
        if (!s.empty()) bufs.emplace_back(s.data(), s.size());
        ++end;
      }
      asio::async_write(socket_, bufs,
                        asio::bind_executor(strand_, [self = shared_from_this(), end](boost::system::error_code ec, size_t) {
                          if (ec) return self->close_now();
                          self->out_index_ = end;
                          self->write_next();
                        }));
      return;
    }
    const io::FileRange& range = std::get<io::FileRange>(out_[out_index_]);
    if (range.file->native_handle() < 0) {
      // No descriptor to send from (an in-memory file): copy.
      std::string copy(range.size_bytes, '\0');
      auto n = range.file->read_at(range.position, MutableByteSpan(reinterpret_cast<uint8_t*>(copy.data()), copy.size()));
      if (!n.is_ok() || *n != copy.size()) return close_now();
      out_[out_index_] = std::move(copy);
      return write_next();
    }
    file_sent_ = 0;
    send_file_range();
  }

  void send_file_range() {
    const io::FileRange& range = std::get<io::FileRange>(out_[out_index_]);
    if (!socket_.native_non_blocking()) {
      boost::system::error_code ec;
      socket_.native_non_blocking(true, ec);
      if (ec) return close_now();
    }
    while (file_sent_ < range.size_bytes) {
      off_t offset = off_t(range.position + file_sent_);
      size_t want = size_t(std::min<uint64_t>(range.size_bytes - file_sent_, kSendfileChunkBytes));
      ssize_t n = ::sendfile(socket_.native_handle(), range.file->native_handle(), &offset, want);
      if (n > 0) {
        file_sent_ += uint64_t(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        socket_.async_wait(tcp::socket::wait_write,
                           asio::bind_executor(strand_, [self = shared_from_this()](boost::system::error_code ec) {
                             if (ec) return self->close_now();
                             self->send_file_range();
                           }));
        return;
      }
      // n == 0: the file is shorter than the range; the frame can't be completed.
      log_warn("connection {}: sendfile stopped after {} of {} bytes", info_.id, file_sent_, range.size_bytes);
      return close_now();
    }
    ++out_index_;
    write_next();
  }

  void close_now() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    --server_->stats.connections_open;
    handler_->on_close(info_);
    server_->forget(shared_from_this());
  }

  NetServer::Impl* server_;
  tcp::socket socket_;
  asio::strand<asio::io_context::executor_type> strand_;
  FrameHandler* handler_;
  ListenerOptions options_;
  ConnectionInfo info_;

  // Everything below is touched only on strand_.
  uint8_t size_buf_[kFramePrefixBytes] = {};
  FrameBuffer body_;
  size_t frame_bytes_ = 0;  // declared size of the frame being read
  uint64_t next_seq_ = 0;
  uint64_t next_write_seq_ = 0;
  uint32_t in_flight_ = 0;
  std::map<uint64_t, Pending> ready_;
  bool reading_paused_ = false;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
  std::vector<OutPart> out_;
  size_t out_index_ = 0;
  uint64_t file_sent_ = 0;
};

// ---------------------------------------------------------------- Reply

Reply::Reply(std::weak_ptr<Connection> conn, uint64_t seq) : conn_(std::move(conn)), seq_(seq), done_(false) {}

Reply::Reply(Reply&& other) noexcept : conn_(std::move(other.conn_)), seq_(other.seq_), done_(other.done_) {
  other.done_ = true;
}

Reply& Reply::operator=(Reply&& other) noexcept {
  if (this != &other) {
    if (!done_) finish(kClose, {});
    conn_ = std::move(other.conn_);
    seq_ = other.seq_;
    done_ = other.done_;
    other.done_ = true;
  }
  return *this;
}

Reply::~Reply() {
  if (!done_) {
    log_warn("a request was dropped without an answer; closing its connection");
    finish(kClose, {});
  }
}

void Reply::send(std::vector<OutPart> parts) { finish(kSend, std::move(parts)); }
void Reply::send_then_close(std::vector<OutPart> parts) { finish(kSendThenClose, std::move(parts)); }
void Reply::skip() { finish(kSkip, {}); }
void Reply::close() { finish(kClose, {}); }

void Reply::finish(int kind, std::vector<OutPart> parts) {
  EVERT_CHECK(!done_);
  done_ = true;
  if (auto c = conn_.lock()) c->deliver(seq_, kind, std::move(parts));
}

// ---------------------------------------------------------------- NetServer

void NetServer::Impl::accept(tcp::acceptor* acceptor, ListenerOptions options, FrameHandler* handler) {
  acceptor->async_accept(asio::make_strand(io), [this, acceptor, options, handler](boost::system::error_code ec,
                                                                                   tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      log_warn("accept: {}", ec.message());
      return accept(acceptor, options, handler);
    }
    if (uint64_t(stats.connections_open.load()) >= options.max_connections) {
      ++stats.connections_refused;
      boost::system::error_code ignored;
      socket.close(ignored);
      return accept(acceptor, options, handler);
    }
    ConnectionInfo info;
    info.id = next_conn_id++;
    boost::system::error_code pec;
    auto peer = socket.remote_endpoint(pec);
    info.peer = pec ? "?" : peer.address().to_string() + ":" + std::to_string(peer.port());
    auto conn = std::make_shared<Connection>(this, std::move(socket), handler, options, std::move(info));
    ++stats.connections_accepted;
    ++stats.connections_open;
    {
      std::lock_guard lock(conns_mu);
      conns.insert(conn);
    }
    conn->start();
    accept(acceptor, options, handler);
  });
}

NetServer::NetServer(int io_threads) : impl_(std::make_unique<Impl>(std::max(1, io_threads))) {
  // sendfile(2) to a socket whose peer has gone raises SIGPIPE (it has no
  // MSG_NOSIGNAL); the default action would kill the whole server. With the
  // signal ignored the call fails with EPIPE and only that connection closes.
  ::signal(SIGPIPE, SIG_IGN);
}

NetServer::~NetServer() { stop(); }

Result<int> NetServer::listen(const ListenerOptions& options, FrameHandler* handler) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) return error(ErrorCode::kInvalidArgument, "bad listen address '" + options.host + "': " + ec.message());
  auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
  tcp::endpoint endpoint(address, uint16_t(options.port));
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return error(ErrorCode::kIoError,
                 "cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " + ec.message());
  int port = acceptor->local_endpoint().port();
  impl_->accept(acceptor.get(), options, handler);
  impl_->acceptors.push_back(std::move(acceptor));
  return port;
}

void NetServer::start() {
  if (impl_->started) return;
  impl_->started = true;
  for (int i = 0; i < impl_->io_threads; ++i) impl_->threads.emplace_back([this] { impl_->io.run(); });
}

void NetServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->io, [this] {
    for (auto& a : impl_->acceptors) {
      boost::system::error_code ec;
      a->close(ec);
    }
  });
  std::vector<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard lock(impl_->conns_mu);
    conns.assign(impl_->conns.begin(), impl_->conns.end());
  }
  for (auto& c : conns) c->shutdown();
  impl_->work.reset();
  // Let the closes run; pending timers (long polls) are cut short after that.
  for (int i = 0; i < 50 && !impl_->io.stopped() && impl_->started; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  std::lock_guard lock(impl_->conns_mu);
  impl_->conns.clear();
}

void NetServer::run_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(impl_->io, delay);
  timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
    if (!ec) fn();
  });
}

void NetServer::post(std::function<void()> fn) { asio::post(impl_->io, std::move(fn)); }

const NetStats& NetServer::stats() const { return impl_->stats; }

}  // namespace evert::net
