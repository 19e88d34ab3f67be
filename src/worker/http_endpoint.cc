// A minimal GET-only HTTP server on Asio coroutines.
#include "worker/http_endpoint.h"

#include <boost/asio.hpp>

#include <thread>

#include "rpc/accept_loop.h"
#include "worker/http_request.h"

namespace sluice::worker {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

// The end of a request head: a blank line, ended by CRLF or (tolerated, as most servers do)
// a bare LF.
struct EndOfHead {
  template <typename Iterator>
  std::pair<Iterator, bool> operator()(Iterator begin, Iterator end) const {
    for (Iterator it = begin; it != end; ++it) {
      if (*it != '\n') continue;
      Iterator next = it;
      ++next;
      if (next != end && *next == '\r') ++next;
      if (next != end && *next == '\n') return {++next, true};
    }
    return {end, false};
  }
};

}  // namespace
}  // namespace sluice::worker

template <>
struct boost::asio::is_match_condition<sluice::worker::EndOfHead> : std::true_type {};

namespace sluice::worker {
namespace {

class AsioHttpEndpoint final : public HttpEndpoint {
 public:
  AsioHttpEndpoint(HttpEndpointOptions options, PageFn page)
      : options_(std::move(options)), page_(std::move(page)), count_(options_.max_connections) {}
  ~AsioHttpEndpoint() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Listen() {
    boost::system::error_code ec;
    const std::string& host = options_.host;
    tcp::endpoint endpoint(asio::ip::make_address(host, ec), static_cast<unsigned short>(options_.port));
    if (ec) return InvalidArgument("bad HTTP listen address '" + host + "'");
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(64, ec);
    if (ec) {
      return Status(StatusCode::kUnavailable,
                    "cannot listen for HTTP on " + host + ":" + std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(
        io_,
        rpc::AcceptLoop(
            acceptor_, count_, "HTTP",
            [this](tcp::socket socket, rpc::ConnectionCount::Slot slot) {
              asio::co_spawn(io_, Serve(std::move(socket), std::move(slot)), asio::detached);
            },
            [](tcp::socket socket) {
              static const std::string busy =
                  "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
              boost::system::error_code ec;
              socket.non_blocking(true, ec);
              socket.write_some(asio::buffer(busy), ec);
              socket.close(ec);
            }),
        asio::detached);
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  int port() const override { return port_; }

 private:
  awaitable<void> Serve(tcp::socket socket, rpc::ConnectionCount::Slot) {
    // The whole exchange has one deadline; past it the socket is closed under the reads.
    asio::steady_timer deadline(io_);
    deadline.expires_after(options_.io_timeout);
    deadline.async_wait([&socket](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: the exchange ended in time
      boost::system::error_code ignored;
      socket.close(ignored);
    });
    std::string request;
    boost::system::error_code ec;
    co_await asio::async_read_until(socket, asio::dynamic_buffer(request, kMaxHttpRequestHead), EndOfHead(),
                                    asio::redirect_error(use_awaitable, ec));
    if (!socket.is_open()) co_return;  // timed out
    std::string status = "200 OK", type = "text/plain; charset=utf-8", body, extra;
    auto parsed = ParseHttpRequest(request);
    if (ec || !parsed.ok()) {
      const bool other_method = !ec && parsed.status().code() == StatusCode::kNotSupported;
      status = other_method ? "405 Method Not Allowed" : "400 Bad Request";
      if (other_method) extra = "Allow: GET\r\n";
      body = (ec ? std::string("malformed or oversized request head") : parsed.status().message()) + "\n";
    } else {
      auto page = page_(parsed->target, &type);
      if (page.ok()) {
        body = std::move(page).value();
      } else {
        status = page.status().code() == StatusCode::kNotFound ? "404 Not Found" : "500 Internal Server Error";
        body = page.status().message() + "\n";
        type = "text/plain; charset=utf-8";
      }
    }
    std::string head = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "Connection: close\r\n\r\n";
    std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(body)};
    co_await asio::async_write(socket, out, rpc::WholeBuffers, asio::redirect_error(use_awaitable, ec));
    deadline.cancel();
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  const HttpEndpointOptions options_;
  PageFn page_;
  rpc::ConnectionCount count_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  int port_ = 0;
};

}  // namespace

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(HttpEndpointOptions options, PageFn page) {
  auto endpoint = std::make_unique<AsioHttpEndpoint>(std::move(options), std::move(page));
  SLUICE_RETURN_IF_ERROR(endpoint->Listen());
  return std::unique_ptr<HttpEndpoint>(std::move(endpoint));
}

}  // namespace sluice::worker
