// A minimal GET-only HTTP server on Asio coroutines.
#include "worker/http_endpoint.h"

#include <boost/asio.hpp>

#include <thread>

namespace sluice::worker {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

constexpr size_t kMaxRequestBytes = 16 << 10;

class AsioHttpEndpoint final : public HttpEndpoint {
 public:
  explicit AsioHttpEndpoint(PageFn page) : page_(std::move(page)) {}
  ~AsioHttpEndpoint() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Listen(const std::string& host, int port) {
    boost::system::error_code ec;
    tcp::endpoint endpoint(asio::ip::make_address(host, ec), static_cast<unsigned short>(port));
    if (ec) return InvalidArgument("bad HTTP listen address '" + host + "'");
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(64, ec);
    if (ec) return Status(StatusCode::kUnavailable, "cannot listen for HTTP on " + host + ":" + std::to_string(port) +
                                                        ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  int port() const override { return port_; }

 private:
  awaitable<void> Accept() {
    while (true) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted) co_return;
      if (!ec) asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
    }
  }

  awaitable<void> Serve(tcp::socket socket) {
    std::string request;
    boost::system::error_code ec;
    co_await asio::async_read_until(socket, asio::dynamic_buffer(request, kMaxRequestBytes), "\r\n\r\n",
                                    asio::redirect_error(use_awaitable, ec));
    std::string status = "200 OK", type = "text/plain; charset=utf-8", body;
    size_t sp1 = request.find(' '), sp2 = request.find(' ', sp1 + 1);
    if (ec || sp1 == std::string::npos || sp2 == std::string::npos) {
      status = "400 Bad Request";
      body = "malformed request\n";
    } else if (request.compare(0, sp1, "GET") != 0) {
      status = "405 Method Not Allowed";
      body = "only GET is served here\n";
    } else {
      auto page = page_(request.substr(sp1 + 1, sp2 - sp1 - 1), &type);
      if (page.ok()) {
        body = std::move(page).value();
      } else {
        status = page.status().code() == StatusCode::kNotFound ? "404 Not Found" : "500 Internal Server Error";
        body = page.status().message() + "\n";
        type = "text/plain; charset=utf-8";
      }
    }
    std::string head = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(body)};
    co_await asio::async_write(socket, out, asio::redirect_error(use_awaitable, ec));
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  PageFn page_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  int port_ = 0;
};

}  // namespace

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& host, int port, PageFn page) {
  auto endpoint = std::make_unique<AsioHttpEndpoint>(std::move(page));
  SLUICE_RETURN_IF_ERROR(endpoint->Listen(host, port));
  return std::unique_ptr<HttpEndpoint>(std::move(endpoint));
}

}  // namespace sluice::worker
