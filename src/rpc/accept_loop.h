// AcceptLoop: the accept side both of the worker's ports (RPC and HTTP) share. It keeps at most
// `max_connections` connections open (one beyond is handed to `refuse`, which answers politely
// and closes), and survives running out of file descriptors: on EMFILE/ENFILE it gives up a
// reserved descriptor to accept and close the waiting connection (so the client gets an answer
// instead of hanging in the backlog), then backs off before accepting again, instead of
// retrying at once and spinning. Runs on the acceptor's executor; ends when it is closed.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

#include <boost/asio.hpp>

namespace sluice::rpc {

// A completion condition for asio::async_write that hands the socket as much as it will take in
// one sendmsg. asio's default (transfer_all) caps each write at 64 KiB, which on a fast stream
// costs a sendmsg, an epoll_wait and a timer reset per 64 KiB.
inline size_t WholeBuffers(const boost::system::error_code& ec, size_t /*written*/) {
  return ec ? 0 : (size_t{1} << 30);
}

// Counts the open connections of one port. A Slot is held for a connection's lifetime.
class ConnectionCount {
 public:
  explicit ConnectionCount(size_t max) : max_(max) {}
  class Slot {
   public:
    explicit Slot(ConnectionCount* count) : count_(count) {}
    Slot(Slot&& other) noexcept : count_(other.count_) { other.count_ = nullptr; }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      if (count_) --count_->open_;
    }

   private:
    ConnectionCount* count_;
  };
  size_t open() const { return open_.load(); }
  size_t max() const { return max_; }

 private:
  friend boost::asio::awaitable<void> AcceptLoop(boost::asio::ip::tcp::acceptor&, ConnectionCount&,
                                                 std::string,
                                                 std::function<void(boost::asio::ip::tcp::socket, Slot)>,
                                                 std::function<void(boost::asio::ip::tcp::socket)>);
  const size_t max_;
  std::atomic<size_t> open_{0};
};

// `what` names the port in log lines ("RPC", "HTTP"). `serve` gets each accepted connection
// with its slot; `refuse` gets those over the limit (it must not block).
boost::asio::awaitable<void> AcceptLoop(boost::asio::ip::tcp::acceptor& acceptor, ConnectionCount& count,
                                        std::string what,
                                        std::function<void(boost::asio::ip::tcp::socket, ConnectionCount::Slot)> serve,
                                        std::function<void(boost::asio::ip::tcp::socket)> refuse);

}  // namespace sluice::rpc
