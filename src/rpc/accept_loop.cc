// The shared accept loop: connection cap, reserve descriptor and back-off on EMFILE.
#include "rpc/accept_loop.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "common/logging.h"

namespace sluice::rpc {
namespace {

namespace asio = boost::asio;
using asio::use_awaitable;
using asio::ip::tcp;

int OpenReserve() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

uint64_t FdLimit() {
  rlimit r{};
  return ::getrlimit(RLIMIT_NOFILE, &r) == 0 ? static_cast<uint64_t>(r.rlim_cur) : 0;
}

}  // namespace

asio::awaitable<void> AcceptLoop(tcp::acceptor& acceptor, ConnectionCount& count, std::string what,
                                 std::function<void(tcp::socket, ConnectionCount::Slot)> serve,
                                 std::function<void(tcp::socket)> refuse) {
  int reserve = OpenReserve();
  asio::steady_timer backoff(acceptor.get_executor());
  auto pause = std::chrono::milliseconds(50);
  LogLimiter fd_warnings, cap_warnings;
  while (true) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
    if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
      // Out of descriptors: spend the reserve on the connection at the head of the backlog
      // (accepted and closed, so its client is told at once), then wait before trying again.
      if (reserve >= 0) {
        ::close(reserve);
        int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) ::close(fd);
        reserve = OpenReserve();
      }
      uint64_t held_back = 0;
      if (fd_warnings.Allow(&held_back)) {
        SLUICE_LOG_WARN("{} port: out of file descriptors (limit {}, {} connections open); refusing connections "
                        "for {} ms ({} more such waits since the last line)",
                        what, FdLimit(), count.open(), pause.count(), held_back);
      }
      backoff.expires_after(pause);
      co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      pause = std::min(pause * 2, std::chrono::milliseconds(1000));
      continue;
    }
    if (ec) continue;  // the peer went away while queued, and the like
    pause = std::chrono::milliseconds(50);
    if (reserve < 0) reserve = OpenReserve();
    if (count.open_.load() >= count.max_) {
      uint64_t held_back = 0;
      if (cap_warnings.Allow(&held_back)) {
        SLUICE_LOG_WARN("{} port: {} connections open, the limit; refusing new ones ({} more refused since the last "
                        "line)",
                        what, count.max_, held_back);
      }
      refuse(std::move(socket));
      continue;
    }
    ++count.open_;
    serve(std::move(socket), ConnectionCount::Slot(&count));
  }
  if (reserve >= 0) ::close(reserve);
}

}  // namespace sluice::rpc
