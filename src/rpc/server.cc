// The Asio coroutine server. Each connection is a coroutine on its own strand with a watchdog
// coroutine that closes the socket when the connection's deadline passes (handshake, idle,
// frame and reply deadlines all move that one deadline). Handlers run on a thread pool; their
// frames go straight to the socket when it takes them, else into the connection's outbox,
// which the connection's coroutine drains once the handler is done.
#include "rpc/server.h"

#include <poll.h>

#include <boost/asio.hpp>
#include <openssl/crypto.h>

#include <array>
#include <mutex>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "rpc/accept_loop.h"
#include "rpc/client.h"
#include "rpc/sluice_rpc.pb.h"

namespace sluice::rpc {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// A HELLO is a secret and little else; nothing larger is read before it is checked.
constexpr uint32_t kMaxHelloBytes = 4096;
// Request buffers grow by at most this much per read, as the bytes arrive.
constexpr size_t kReadChunk = 256 << 10;
// Buffers bigger than this are freed after their request rather than kept for the next.
constexpr size_t kKeptBufferBytes = 64 << 10;

// Bytes held by all connections together: request bodies being read and replies not yet taken.
class ByteBudget {
 public:
  explicit ByteBudget(uint64_t max) : max_(max) {}
  bool TryTake(uint64_t n) {
    uint64_t used = used_.load();
    do {
      if (used + n > max_) return false;
    } while (!used_.compare_exchange_weak(used, used + n));
    return true;
  }
  void Give(uint64_t n) { used_ -= n; }

 private:
  const uint64_t max_;
  std::atomic<uint64_t> used_{0};
};

std::string Peer(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  return ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::string EncodeReply(FrameType type, uint64_t request_id, const google::protobuf::MessageLite& header) {
  FrameHeader h;
  h.type = type;
  h.request_id = request_id;
  return EncodeFrame(h, header.SerializeAsString(), "");
}

struct Connection {
  Connection(tcp::socket s, asio::strand<asio::io_context::executor_type> strand, ConnectionCount::Slot slot)
      : socket(std::move(s)), timer(strand), peer(Peer(socket)), slot(std::move(slot)) {}

  tcp::socket socket;
  asio::steady_timer timer;  // the watchdog's
  const std::string peer;
  ConnectionCount::Slot slot;
  // Used on the connection's strand only:
  Clock::time_point deadline = Clock::now();
  bool closed = false, timed_out = false;
  uint64_t request_bytes_held = 0;  // budget taken for the request being read or handled

  // The outbox, shared with the handler thread:
  std::mutex mu;
  std::string pending;            // GUARDED_BY(mu): reply bytes the socket has not taken yet
  uint64_t pending_held = 0;      // GUARDED_BY(mu): budget taken for them
  bool failed = false;            // GUARDED_BY(mu): the socket failed; the client is gone
};

// Writes as much of `buffers` (after skipping `skip` bytes) as the socket takes without
// waiting; returns the count, or an error other than would_block.
size_t WriteSome(tcp::socket& socket, const std::array<asio::const_buffer, 3>& buffers, size_t skip,
                 boost::system::error_code* ec) {
  size_t written = 0;
  while (true) {
    std::array<asio::const_buffer, 3> rest;  // unused entries stay empty
    size_t at = skip + written, n = 0;
    for (const auto& b : buffers) {
      if (at >= b.size()) {
        at -= b.size();
        continue;
      }
      rest[n++] = b + at;
      at = 0;
    }
    if (n == 0) return written;
    size_t w = socket.write_some(rest, *ec);
    if (*ec) {
      if (*ec == asio::error::would_block || *ec == asio::error::try_again) ec->clear();
      return written;
    }
    written += w;
  }
}

// A handler's way out: straight to the socket when it takes the bytes, else into the outbox.
class ConnectionResponder final : public Responder {
 public:
  ConnectionResponder(Connection* c, ByteBudget* budget, std::chrono::milliseconds io_timeout)
      : c_(c), budget_(budget), io_timeout_(io_timeout) {}

  Status Send(FrameType type, uint64_t request_id, const google::protobuf::MessageLite& header,
              std::string_view payload) override {
    std::string header_bytes = header.SerializeAsString();
    FrameHeader h;
    h.type = type;
    h.request_id = request_id;
    h.header_len = static_cast<uint32_t>(header_bytes.size());
    h.payload_len = static_cast<uint32_t>(payload.size());
    char fixed[kFrameHeaderSize];
    EncodeFrameHeader(h, fixed);
    const std::array<asio::const_buffer, 3> buffers{asio::buffer(fixed, sizeof(fixed)), asio::buffer(header_bytes),
                                                    asio::buffer(payload.data(), payload.size())};
    const size_t total = asio::buffer_size(buffers);
    std::lock_guard<std::mutex> lock(c_->mu);
    if (c_->failed) return Gone("client went away");
    size_t written = 0;
    if (c_->pending.empty()) {
      boost::system::error_code ec;
      written = WriteSome(c_->socket, buffers, 0, &ec);
      if (ec) {
        c_->failed = true;
        return Gone("client went away: " + ec.message());
      }
    }
    if (written == total) return Status::Ok();
    const size_t rest = total - written;
    if (budget_->TryTake(rest)) {
      Append(buffers, written, &c_->pending);
      c_->pending_held += rest;
      return Status::Ok();
    }
    // The worker holds as many unsent bytes as it may: this handler waits for its client,
    // up to the I/O timeout, rather than queue more.
    Append(buffers, written, &c_->pending);
    if (!WriteAllBlocking(c_->pending)) {
      c_->failed = true;
      return Gone("client did not take its reply within " + std::to_string(io_timeout_.count()) + " ms");
    }
    c_->pending.clear();
    budget_->Give(c_->pending_held);
    c_->pending_held = 0;
    return Status::Ok();
  }

 private:
  static Status Gone(const std::string& why) { return Status(StatusCode::kUnavailable, why); }

  static void Append(const std::array<asio::const_buffer, 3>& buffers, size_t skip, std::string* out) {
    for (const auto& b : buffers) {
      if (skip >= b.size()) {
        skip -= b.size();
        continue;
      }
      out->append(static_cast<const char*>(b.data()) + skip, b.size() - skip);
      skip = 0;
    }
  }

  bool WriteAllBlocking(const std::string& bytes) {
    const auto deadline = Clock::now() + io_timeout_;
    size_t done = 0;
    while (done < bytes.size()) {
      boost::system::error_code ec;
      std::array<asio::const_buffer, 3> one{asio::buffer(bytes), asio::const_buffer(), asio::const_buffer()};
      done += WriteSome(c_->socket, one, done, &ec);
      if (ec) return false;
      if (done == bytes.size()) break;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{c_->socket.native_handle(), POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) return false;
    }
    return true;
  }

  Connection* const c_;
  ByteBudget* const budget_;
  const std::chrono::milliseconds io_timeout_;
};

class AsioRpcServer final : public RpcServer {
 public:
  AsioRpcServer(RpcServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        budget_(options_.max_buffered_bytes),
        count_(options_.max_connections),
        pool_(options_.handler_threads) {}

  ~AsioRpcServer() override {
    io_.stop();
    for (auto& t : io_threads_) t.join();
    pool_.join();
  }

  Status Listen() {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.host, ec);
    if (ec) return InvalidArgument("bad RPC listen address '" + options_.host + "'");
    tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(StatusCode::kUnavailable, "cannot listen on " + options_.host + ":" +
                                                  std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(
        io_,
        AcceptLoop(
            acceptor_, count_, "RPC",
            [this](tcp::socket socket, ConnectionCount::Slot slot) {
              ++connections_;
              boost::system::error_code ignored;
              socket.set_option(tcp::no_delay(true), ignored);
              socket.non_blocking(true, ignored);
              auto strand = asio::make_strand(io_);
              auto c = std::make_shared<Connection>(std::move(socket), strand, std::move(slot));
              asio::co_spawn(strand, Session(c), asio::detached);
            },
            [this](tcp::socket socket) { Refuse(std::move(socket)); }),
        asio::detached);
    for (int i = 0; i < 2; ++i) io_threads_.emplace_back([this] { io_.run(); });
    return Status::Ok();
  }

  int port() const override { return port_; }

  RpcServerStats Stats() const override {
    return RpcServerStats{connections_.load(), auth_failures_.load(), malformed_.load(),
                          requests_.load(),    refused_.load(),       timeouts_.load()};
  }

 private:
  // Over the connection limit: say so in a HELLO answer (it fits the socket buffer) and close.
  void Refuse(tcp::socket socket) {
    ++refused_;
    HelloResponse busy;
    ToProto(Status(StatusCode::kResourceExhausted,
                   "the sluice worker has " + std::to_string(count_.max()) +
                       " RPC connections open, its limit (rpc.max_connections); try again later",
                   true),
            busy.mutable_status());
    const std::string frame = EncodeReply(FrameType::kHello, 0, busy);
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(frame), ec);
    socket.close(ec);
  }

  static void SetDeadline(Connection& c, Clock::duration from_now) {
    c.deadline = Clock::now() + from_now;
    if (c.deadline < c.timer.expiry()) c.timer.expires_at(c.deadline);  // wakes the watchdog
  }

  awaitable<void> Watchdog(std::shared_ptr<Connection> c) {
    while (!c->closed) {
      if (Clock::now() >= c->deadline) {
        c->timed_out = true;
        ++timeouts_;
        boost::system::error_code ec;
        c->socket.shutdown(tcp::socket::shutdown_both, ec);
        c->socket.close(ec);
        co_return;
      }
      c->timer.expires_at(c->deadline);
      boost::system::error_code ec;
      co_await c->timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  // Reads `n` bytes into `buf`, growing it as they arrive, each piece under the byte budget.
  awaitable<bool> ReadGrowing(Connection& c, std::string* buf, size_t n) {
    buf->clear();
    asio::steady_timer wait(c.timer.get_executor());
    while (buf->size() < n) {
      const size_t piece = std::min(kReadChunk, n - buf->size());
      while (!budget_.TryTake(piece)) {  // the worker holds all it may: wait for bytes to go
        if (Clock::now() >= c.deadline || c.closed) co_return false;
        wait.expires_after(std::chrono::milliseconds(5));
        boost::system::error_code ec;
        co_await wait.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      c.request_bytes_held += piece;
      const size_t at = buf->size();
      buf->resize(at + piece);
      boost::system::error_code ec;
      co_await asio::async_read(c.socket, asio::buffer(buf->data() + at, piece), asio::redirect_error(use_awaitable, ec));
      if (ec) co_return false;
    }
    co_return true;
  }

  // Reads one frame; false (after logging) when the peer closed, timed out or sent garbage.
  // Before authentication only a small HELLO is accepted.
  awaitable<bool> ReadFrame(Connection& c, Request* req, bool authenticated) {
    char fixed[kFrameHeaderSize];
    boost::system::error_code ec;
    co_await asio::async_read(c.socket, asio::buffer(fixed), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (c.timed_out) {
        SLUICE_LOG_DEBUG("closed RPC connection from {}: {}", c.peer,
                         authenticated ? "idle past rpc.idle_timeout" : "no HELLO within rpc.handshake_timeout");
      }
      co_return false;
    }
    auto h = DecodeFrameHeader(fixed);
    if (!h.ok()) {
      ++malformed_;
      SLUICE_LOG_WARN("closing RPC connection from {}: {}", c.peer, h.status().message());
      co_return false;
    }
    if (!authenticated && (h->type != FrameType::kHello || h->header_len > kMaxHelloBytes || h->payload_len != 0)) {
      ++auth_failures_;
      SLUICE_LOG_WARN("refusing RPC connection from {}: its first frame must be a HELLO of at most {} bytes", c.peer,
                      kMaxHelloBytes);
      co_return false;
    }
    if (authenticated && (h->type == FrameType::kHello || h->type == FrameType::kReadData)) {
      ++malformed_;
      SLUICE_LOG_WARN("closing RPC connection from {}: frame type {} is not a request", c.peer,
                      static_cast<int>(h->type));
      co_return false;
    }
    if (authenticated) SetDeadline(c, options_.io_timeout);  // the rest of a started frame
    req->frame = *h;
    if (!co_await ReadGrowing(c, &req->header, h->header_len)) co_return false;
    if (!co_await ReadGrowing(c, &req->payload, h->payload_len)) co_return false;
    co_return true;
  }

  // Gives back what a handled request held, and frees big buffers rather than keep them.
  void ReleaseRequest(Connection& c, Request* req) {
    budget_.Give(c.request_bytes_held);
    c.request_bytes_held = 0;
    if (req->header.capacity() > kKeptBufferBytes) std::string().swap(req->header);
    if (req->payload.capacity() > kKeptBufferBytes) std::string().swap(req->payload);
  }

  // Writes the outbox; false when the client is gone or took none of it in time.
  awaitable<bool> Flush(Connection& c) {
    std::string out;
    uint64_t held = 0;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      if (c.failed) co_return false;
      out.swap(c.pending);
      std::swap(held, c.pending_held);
    }
    if (out.empty()) co_return true;
    boost::system::error_code ec;
    co_await asio::async_write(c.socket, asio::buffer(out), WholeBuffers, asio::redirect_error(use_awaitable, ec));
    budget_.Give(held);
    if (ec && c.timed_out) {
      SLUICE_LOG_WARN("cut off RPC client {}: it did not read its replies for {} ms (rpc.io_timeout)", c.peer,
                      options_.io_timeout.count());
    }
    co_return !ec;
  }

  bool SecretMatches(const std::string& given) const {
    const std::string& want = options_.secret;
    if (given.size() != want.size()) return false;
    return CRYPTO_memcmp(given.data(), want.data(), want.size()) == 0;
  }

  awaitable<void> Session(std::shared_ptr<Connection> c) {
    SetDeadline(*c, options_.handshake_timeout);
    asio::co_spawn(c->timer.get_executor(), Watchdog(c), asio::detached);
    co_await Serve(*c);
    c->closed = true;
    boost::system::error_code ec;
    c->timer.cancel();
    c->socket.close(ec);
    budget_.Give(c->request_bytes_held);
    std::lock_guard<std::mutex> lock(c->mu);
    budget_.Give(c->pending_held);
  }

  awaitable<void> Serve(Connection& c) {
    ConnectionResponder socket_responder(&c, &budget_, options_.io_timeout);
    Responder& responder = socket_responder;
    Request req;
    // The first frame must be HELLO with the right secret (the handshake deadline runs).
    if (!co_await ReadFrame(c, &req, /*authenticated=*/false)) co_return;
    HelloRequest hello;
    HelloResponse welcome;
    if (!hello.ParseFromString(req.header) || !SecretMatches(hello.secret())) {
      ++auth_failures_;
      SLUICE_LOG_WARN("refusing RPC connection from {}: wrong cluster secret", c.peer);
      welcome.mutable_status()->set_code(static_cast<int>(StatusCode::kPermissionDenied));
      welcome.mutable_status()->set_message("wrong cluster secret (check cluster.secret in the config)");
      (void)responder.Send(FrameType::kHello, req.frame.request_id, welcome);
      co_await Flush(c);
      co_return;
    }
    welcome.set_worker_id(options_.worker_id);
    ReleaseRequest(c, &req);
    if (!responder.Send(FrameType::kHello, req.frame.request_id, welcome).ok()) co_return;
    if (!co_await Flush(c)) co_return;

    while (true) {
      SetDeadline(c, options_.idle_timeout);
      if (!co_await ReadFrame(c, &req, /*authenticated=*/true)) co_return;
      ++requests_;
      // The (blocking) handler runs on the pool; this coroutine waits, so the socket has one
      // user at a time, and no deadline runs while the handler works.
      SetDeadline(c, std::chrono::hours(24 * 365));
      if (!options_.answer_inline || !options_.answer_inline(req, responder)) {
        co_await asio::co_spawn(
            pool_.get_executor(),
            [&]() -> awaitable<void> {
              handler_(req, responder);
              co_return;
            },
            use_awaitable);
      }
      ReleaseRequest(c, &req);
      SetDeadline(c, options_.io_timeout);
      if (!co_await Flush(c)) co_return;
    }
  }

  const RpcServerOptions options_;
  const Handler handler_;
  ByteBudget budget_;
  ConnectionCount count_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  asio::thread_pool pool_;
  std::vector<std::thread> io_threads_;
  int port_ = 0;
  std::atomic<uint64_t> connections_{0}, auth_failures_{0}, malformed_{0}, requests_{0}, refused_{0}, timeouts_{0};
};

}  // namespace

Result<std::unique_ptr<RpcServer>> RpcServer::Start(RpcServerOptions options, Handler handler) {
  auto server = std::make_unique<AsioRpcServer>(std::move(options), std::move(handler));
  SLUICE_RETURN_IF_ERROR(server->Listen());
  return std::unique_ptr<RpcServer>(std::move(server));
}

}  // namespace sluice::rpc
