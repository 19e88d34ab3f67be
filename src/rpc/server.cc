// The Asio coroutine server: one coroutine per connection reads frames; handlers run on a
// thread pool and write their answers synchronously while the connection's coroutine waits.
#include "rpc/server.h"

#include <boost/asio.hpp>
#include <openssl/crypto.h>

#include <array>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "rpc/sluice_rpc.pb.h"

namespace sluice::rpc {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

class SocketResponder final : public Responder {
 public:
  explicit SocketResponder(tcp::socket* socket) : socket_(socket) {}

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
    std::array<asio::const_buffer, 3> buffers{asio::buffer(fixed, sizeof(fixed)), asio::buffer(header_bytes),
                                              asio::buffer(payload.data(), payload.size())};
    boost::system::error_code ec;
    asio::write(*socket_, buffers, ec);
    if (ec) return Status(StatusCode::kUnavailable, "client went away: " + ec.message());
    return Status::Ok();
  }

 private:
  tcp::socket* socket_;
};

class AsioRpcServer final : public RpcServer {
 public:
  AsioRpcServer(RpcServerOptions options, Handler handler)
      : options_(std::move(options)), handler_(std::move(handler)), pool_(options_.handler_threads) {}

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
    asio::co_spawn(io_, Accept(), asio::detached);
    for (int i = 0; i < 2; ++i) io_threads_.emplace_back([this] { io_.run(); });
    return Status::Ok();
  }

  int port() const override { return port_; }

  RpcServerStats Stats() const override {
    return RpcServerStats{connections_.load(), auth_failures_.load(), malformed_.load(), requests_.load()};
  }

 private:
  awaitable<void> Accept() {
    while (true) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;
      }
      ++connections_;
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io_, Session(std::move(socket)), asio::detached);
    }
  }

  // Reads one frame; returns false (after logging) when the peer closed or sent garbage.
  awaitable<bool> ReadFrame(tcp::socket& socket, Request* req) {
    char fixed[kFrameHeaderSize];
    boost::system::error_code ec;
    co_await asio::async_read(socket, asio::buffer(fixed), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return false;  // closed
    auto h = DecodeFrameHeader(fixed);
    if (!h.ok()) {
      ++malformed_;
      SLUICE_LOG_WARN("closing RPC connection from {}: {}", Peer(socket), h.status().message());
      co_return false;
    }
    req->frame = *h;
    req->header.resize(h->header_len);
    req->payload.resize(h->payload_len);
    std::array<asio::mutable_buffer, 2> buffers{asio::buffer(req->header), asio::buffer(req->payload)};
    co_await asio::async_read(socket, buffers, asio::redirect_error(use_awaitable, ec));
    co_return !ec;
  }

  static std::string Peer(tcp::socket& socket) {
    boost::system::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    return ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  bool SecretMatches(const std::string& given) const {
    const std::string& want = options_.secret;
    if (given.size() != want.size()) return false;
    return CRYPTO_memcmp(given.data(), want.data(), want.size()) == 0;
  }

  awaitable<void> Session(tcp::socket socket) {
    SocketResponder socket_responder(&socket);
    Responder& responder = socket_responder;
    Request req;
    // The first frame must be HELLO with the right secret.
    if (!co_await ReadFrame(socket, &req)) co_return;
    HelloRequest hello;
    HelloResponse welcome;
    if (req.frame.type != FrameType::kHello || !hello.ParseFromString(req.header) || !SecretMatches(hello.secret())) {
      ++auth_failures_;
      SLUICE_LOG_WARN("refusing RPC connection from {}: wrong cluster secret", Peer(socket));
      welcome.mutable_status()->set_code(static_cast<int>(StatusCode::kPermissionDenied));
      welcome.mutable_status()->set_message("wrong cluster secret (check cluster.secret in the config)");
      (void)responder.Send(FrameType::kHello, req.frame.request_id, welcome);
      co_return;
    }
    welcome.set_worker_id(options_.worker_id);
    if (!responder.Send(FrameType::kHello, req.frame.request_id, welcome).ok()) co_return;

    while (co_await ReadFrame(socket, &req)) {
      ++requests_;
      // Run the (blocking) handler on the pool; this coroutine waits, so the socket has
      // exactly one user at a time.
      co_await asio::co_spawn(
          pool_.get_executor(),
          [&]() -> awaitable<void> {
            handler_(req, responder);
            co_return;
          },
          use_awaitable);
    }
  }

  const RpcServerOptions options_;
  const Handler handler_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  asio::thread_pool pool_;
  std::vector<std::thread> io_threads_;
  int port_ = 0;
  std::atomic<uint64_t> connections_{0}, auth_failures_{0}, malformed_{0}, requests_{0};
};

}  // namespace

Result<std::unique_ptr<RpcServer>> RpcServer::Start(RpcServerOptions options, Handler handler) {
  auto server = std::make_unique<AsioRpcServer>(std::move(options), std::move(handler));
  SLUICE_RETURN_IF_ERROR(server->Listen());
  return std::unique_ptr<RpcServer>(std::move(server));
}

}  // namespace sluice::rpc
