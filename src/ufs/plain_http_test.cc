// The plain-http GET path against a scripted server on loopback: chunked, end-of-connection
// and Content-Length bodies, interim 100 responses, error bodies, a kept connection the
// server has closed, a body cut short, a stalled server, and bodies received in place.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "ufs/http_client.h"
#include "ufs/plain_http.h"

namespace sluice::ufs {
namespace {

// Accepts connections on 127.0.0.1 and answers each request with respond(request index,
// request head); respond returns the raw response and whether to close the connection after.
class ScriptedServer {
 public:
  using Respond = std::function<std::pair<std::string, bool>(int index, const std::string& head)>;
  explicit ScriptedServer(Respond respond) : respond_(std::move(respond)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(listener_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~ScriptedServer() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int connections() const { return connections_; }

 private:
  void Loop() {
    for (;;) {
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      ++connections_;
      std::string pending;
      char buf[4096];
      for (bool open = true; open;) {
        size_t end;
        while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
          ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
          if (n <= 0) {
            open = false;
            break;
          }
          pending.append(buf, static_cast<size_t>(n));
        }
        if (!open) break;
        std::string head = pending.substr(0, end);
        pending.erase(0, end + 4);
        auto [reply, close] = respond_(requests_++, head);
        if (!reply.empty()) ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        open = !close;
      }
      ::close(fd);
    }
  }

  Respond respond_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0}, requests_{0};
  std::thread thread_;
};

HttpClientOptions FastOptions() {
  HttpClientOptions o;
  o.connect_timeout = std::chrono::seconds(2);
  o.stall_timeout = std::chrono::milliseconds(300);
  return o;
}

HttpRequest Get(const std::string& url) {
  HttpRequest r;
  r.url = url;
  return r;
}

TEST(PlainHttpTest, HandlesPlainGetsOnly) {
  EXPECT_TRUE(PlainHttp::Handles(Get("http://127.0.0.1:9/x")));
  EXPECT_FALSE(PlainHttp::Handles(Get("https://127.0.0.1:9/x")));
  HttpRequest head = Get("http://127.0.0.1:9/x");
  head.method = "HEAD";
  EXPECT_FALSE(PlainHttp::Handles(head));
  EXPECT_FALSE(PlainHttp::Handles(Get("http://user@127.0.0.1:9/x")));
}

TEST(PlainHttpTest, ChunkedEndOfConnectionAndInterimResponses) {
  ScriptedServer server([](int index, const std::string&) -> std::pair<std::string, bool> {
    if (index == 0) {
      return {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n", false};
    }
    if (index == 1) return {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false};
    return {"HTTP/1.0 200 OK\r\n\r\nto the end", true};
  });
  PlainHttp http(FastOptions());
  for (const std::string want : {"hello world", "abc", "to the end"}) {
    std::string got;
    ByteSink sink = [&](std::string_view chunk) {
      got.append(chunk);
      return Status::Ok();
    };
    HttpResponse response;
    ASSERT_TRUE(http.Get(Get(server.url("/o")), &response, &sink).ok()) << want;
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(got, want);
  }
  EXPECT_EQ(server.connections(), 1);  // the first two kept it open; the HTTP/1.0 reply closed it
}

TEST(PlainHttpTest, ErrorBodiesGoToTheResponseNotTheSink) {
  ScriptedServer server([](int, const std::string&) -> std::pair<std::string, bool> {
    return {"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nX-Amz-Request-Id: r1\r\n\r\nNoSuchKey", false};
  });
  PlainHttp http(FastOptions());
  bool called = false;
  ByteSink sink = [&](std::string_view) {
    called = true;
    return Status::Ok();
  };
  HttpResponse response;
  ASSERT_TRUE(http.Get(Get(server.url("/missing")), &response, &sink).ok());
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body, "NoSuchKey");
  EXPECT_EQ(response.Header("x-amz-request-id"), "r1");
  EXPECT_FALSE(called);
}

TEST(PlainHttpTest, AKeptConnectionTheServerClosedIsReplaced) {
  ScriptedServer server([](int, const std::string&) -> std::pair<std::string, bool> {
    return {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true};  // closes without saying so
  });
  PlainHttp http(FastOptions());
  for (int i = 0; i < 3; ++i) {
    HttpResponse response;
    ASSERT_TRUE(http.Get(Get(server.url("/o")), &response, nullptr).ok()) << i;
    EXPECT_EQ(response.body, "ok");
  }
  EXPECT_EQ(server.connections(), 3);
}

TEST(PlainHttpTest, CutAndStalledBodiesAreRetryableErrors) {
  ScriptedServer server([](int index, const std::string&) -> std::pair<std::string, bool> {
    if (index == 0) return {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true};  // then closes
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // longer than the stall timeout
    return {"", true};
  });
  PlainHttp http(FastOptions());
  ByteSink sink = [](std::string_view) { return Status::Ok(); };
  HttpResponse response;
  Status cut = http.Get(Get(server.url("/o")), &response, &sink);
  EXPECT_EQ(cut.code(), StatusCode::kUnavailable) << cut.ToString();
  EXPECT_TRUE(cut.retryable());
  EXPECT_NE(cut.message().find("ended early"), std::string::npos) << cut.message();
  Status stalled = http.Get(Get(server.url("/o")), &response, &sink);
  EXPECT_EQ(stalled.code(), StatusCode::kTimeout) << stalled.ToString();
  EXPECT_TRUE(stalled.retryable());
}

TEST(PlainHttpTest, BodiesLandInTheReceiveTargetInPlace) {
  const std::string body(300000, 'x');
  ScriptedServer server([&](int, const std::string&) -> std::pair<std::string, bool> {
    return {"HTTP/1.1 206 Partial Content\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body,
            false};
  });
  std::vector<char> buffer(body.size());
  size_t filled = 0, in_place = 0;
  ReceiveTarget target([&](uint64_t) -> std::pair<char*, size_t> { return {buffer.data() + filled, buffer.size() - filled}; });
  ByteSink sink = [&](std::string_view chunk) {
    if (chunk.data() == buffer.data() + filled) {
      in_place += chunk.size();
    } else {
      std::copy(chunk.begin(), chunk.end(), buffer.begin() + static_cast<std::ptrdiff_t>(filled));
    }
    filled += chunk.size();
    return Status::Ok();
  };
  PlainHttp http(FastOptions());
  HttpResponse response;
  ASSERT_TRUE(http.Get(Get(server.url("/big")), &response, &sink).ok());
  EXPECT_EQ(std::string(buffer.begin(), buffer.end()), body);
  EXPECT_GT(in_place, body.size() / 2);  // all but what arrived with the response head
}

TEST(PlainHttpTest, RefusedConnectionsNameTheServer) {
  int port;
  {
    ScriptedServer gone([](int, const std::string&) -> std::pair<std::string, bool> { return {"", true}; });
    port = std::stoi(gone.url("").substr(17));
  }
  HttpClient http(FastOptions());
  HttpResponse response;
  Status st = http.Send(Get("http://127.0.0.1:" + std::to_string(port) + "/x"), &response);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(st.retryable());
  EXPECT_NE(st.message().find("cannot reach the server"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace sluice::ufs
