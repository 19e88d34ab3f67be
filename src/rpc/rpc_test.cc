// The RPC layer over real loopback sockets: round trips, streamed reads, the cluster secret,
// malformed and oversized frames, clients that vanish mid-stream, and pooled reconnects.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "rpc/client.h"
#include "rpc/server.h"
#include "support/test_support.h"

namespace sluice::rpc {
namespace {

using namespace std::chrono_literals;

// Answers STAT with the path's length as size; READ streams `length` bytes of 'x' in 1 MiB frames.
void EchoHandler(const Request& req, Responder& out) {
  if (req.frame.type == FrameType::kStat) {
    PathRequest in;
    in.ParseFromString(req.header);
    StatResponse resp;
    if (in.path() == "/missing") {
      ToProto(NotFound("/missing: no such file"), resp.mutable_status());
    } else {
      resp.mutable_info()->set_path(in.path());
      resp.mutable_info()->set_size(in.path().size());
    }
    (void)out.Send(FrameType::kStat, req.frame.request_id, resp);
    return;
  }
  if (req.frame.type == FrameType::kRead) {
    ReadRequest in;
    in.ParseFromString(req.header);
    ReadResponse done;
    std::string chunk(1 << 20, 'x');
    uint64_t left = in.length();
    while (left > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
      if (!out.Send(FrameType::kReadData, req.frame.request_id, ReadResponse(), std::string_view(chunk).substr(0, n))
               .ok()) {
        return;  // the client went away
      }
      left -= n;
    }
    done.set_bytes(in.length());
    (void)out.Send(FrameType::kRead, req.frame.request_id, done);
  }
}

std::unique_ptr<RpcServer> StartServer(const std::string& secret = "s3cret") {
  auto server = RpcServer::Start({"127.0.0.1", 0, secret, "w-test", 4}, EchoHandler);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return std::move(server).value();
}

RpcClientOptions ClientFor(const RpcServer& server, const std::string& secret = "s3cret") {
  RpcClientOptions o;
  o.port = server.port();
  o.secret = secret;
  o.io_timeout = 10s;
  return o;
}

int RawConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

// True when the server closes `fd` within 5 s.
bool ServerCloses(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

TEST(FrameTest, RoundTripAndLimits) {
  FrameHeader h;
  h.type = FrameType::kRead;
  h.request_id = 77;
  std::string f = EncodeFrame(h, "hdr", "payload");
  auto back = DecodeFrameHeader(f.data());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->type, FrameType::kRead);
  EXPECT_EQ(back->request_id, 77u);
  EXPECT_EQ(back->header_len, 3u);
  EXPECT_EQ(back->payload_len, 7u);
  std::string bad = f;
  bad[0] = 'X';
  EXPECT_NE(DecodeFrameHeader(bad.data()).status().message().find("magic"), std::string::npos);
  h.payload_len = kMaxPayloadBytes + 1;
  char raw[kFrameHeaderSize];
  EncodeFrameHeader(h, raw);
  EXPECT_NE(DecodeFrameHeader(raw).status().message().find("over the limit"), std::string::npos);
  bad = f;
  bad[6] = 99;  // type
  EXPECT_NE(DecodeFrameHeader(bad.data()).status().message().find("unknown frame type"), std::string::npos);
}

// A STAT that succeeds, one that fails, and a READ of `length` bytes streamed in frames.
void ExpectCallsAndStreamedRead(RpcClient& client, uint64_t length) {
  PathRequest req;
  req.set_path("/a/b");
  StatResponse resp;
  ASSERT_TRUE(client.Call(FrameType::kStat, req, &resp).ok());
  EXPECT_EQ(resp.info().size(), 4u);
  req.set_path("/missing");
  Status st = client.Call(FrameType::kStat, req, &resp);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "/missing: no such file");

  ReadRequest read;
  read.set_length(length);
  uint64_t got = 0;
  ufs::ByteSink sink = [&](std::string_view c) {
    got += c.size();
    return Status::Ok();
  };
  ReadResponse done;
  ASSERT_TRUE(client.Call(FrameType::kRead, read, &done, &sink).ok());
  EXPECT_EQ(got, length);
  EXPECT_EQ(done.bytes(), got);
}

TEST(RpcTest, CallsAndStreamedReads) {
  auto server = StartServer();
  RpcClient client(ClientFor(*server));
  ExpectCallsAndStreamedRead(client, (5 << 20) + 3);
  EXPECT_EQ(server->Stats().connections, 1u);  // one pooled connection did it all
}

TEST(RpcTest, InProcessCallsReachTheHandlerDirectly) {
  RpcClientOptions o;
  o.port = 1;  // nothing listens there: every call must stay in this process
  o.in_process = EchoHandler;
  RpcClient client(o);
  ExpectCallsAndStreamedRead(client, (3 << 20) + 7);
  // A sink that refuses stops the handler's stream and its error comes back.
  ReadRequest read;
  read.set_length(3 << 20);
  ReadResponse done;
  ufs::ByteSink refuse = [](std::string_view) { return Corruption("no room"); };
  EXPECT_EQ(client.Call(FrameType::kRead, read, &done, &refuse).code(), StatusCode::kCorruption);
}

TEST(RpcTest, ConcurrentClientsShareThePool) {
  auto server = StartServer();
  RpcClient client(ClientFor(*server));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        PathRequest req;
        req.set_path("/" + std::string(static_cast<size_t>(i), 'p'));
        StatResponse resp;
        if (!client.Call(FrameType::kStat, req, &resp).ok() || resp.info().size() != static_cast<uint64_t>(i) + 1) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_LE(server->Stats().connections, 8u);
}

TEST(RpcTest, WrongSecretIsRefused) {
  auto server = StartServer();
  RpcClient client(ClientFor(*server, "guess"));
  PathRequest req;
  StatResponse resp;
  Status st = client.Call(FrameType::kStat, req, &resp);
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("wrong cluster secret"), std::string::npos) << st.message();
  EXPECT_EQ(server->Stats().auth_failures, 1u);
}

TEST(RpcTest, MalformedAndOversizedFramesCloseOnlyThatConnection) {
  auto server = StartServer();
  RpcClient good(ClientFor(*server));
  PathRequest req;
  req.set_path("/x");
  StatResponse resp;
  ASSERT_TRUE(good.Call(FrameType::kStat, req, &resp).ok());

  int garbage = RawConnect(server->port());
  std::string junk(64, 'Z');
  ASSERT_EQ(::send(garbage, junk.data(), junk.size(), 0), 64);
  EXPECT_TRUE(ServerCloses(garbage));
  ::close(garbage);

  int huge = RawConnect(server->port());
  FrameHeader h;
  h.type = FrameType::kHello;
  h.payload_len = kMaxPayloadBytes + 1;
  char raw[kFrameHeaderSize];
  EncodeFrameHeader(h, raw);
  ASSERT_EQ(::send(huge, raw, sizeof(raw), 0), static_cast<ssize_t>(sizeof(raw)));
  EXPECT_TRUE(ServerCloses(huge));
  ::close(huge);

  int truncated = RawConnect(server->port());
  std::string half = EncodeFrame(FrameHeader{}, "abc", "").substr(0, 10);
  ASSERT_EQ(::send(truncated, half.data(), half.size(), 0), 10);
  ::close(truncated);  // mid-frame

  EXPECT_EQ(server->Stats().malformed_frames, 2u);
  ASSERT_TRUE(good.Call(FrameType::kStat, req, &resp).ok());  // the good connection never noticed
}

TEST(RpcTest, ClientVanishingMidStreamLeavesServerHealthy) {
  auto server = StartServer();
  for (int round = 0; round < 3; ++round) {
    int fd = RawConnect(server->port());
    HelloRequest hello;
    hello.set_secret("s3cret");
    FrameHeader h;
    h.type = FrameType::kHello;
    std::string frames = EncodeFrame(h, hello.SerializeAsString(), "");
    ReadRequest read;
    read.set_length(64 << 20);
    h.type = FrameType::kRead;
    frames += EncodeFrame(h, read.SerializeAsString(), "");
    ASSERT_EQ(::send(fd, frames.data(), frames.size(), 0), static_cast<ssize_t>(frames.size()));
    char buf[4096];
    ASSERT_GT(::recv(fd, buf, sizeof(buf), MSG_WAITALL), 0);  // the stream has started
    ::close(fd);                                             // and the client is gone
  }
  RpcClient client(ClientFor(*server));
  PathRequest req;
  req.set_path("/still/here");
  StatResponse resp;
  ASSERT_TRUE(client.Call(FrameType::kStat, req, &resp).ok());
  EXPECT_EQ(resp.info().size(), 11u);
}

TEST(RpcTest, PooledConnectionsSurviveAServerRestart) {
  auto server = StartServer();
  int port = server->port();
  RpcClient client(ClientFor(*server));
  PathRequest req;
  req.set_path("/a");
  StatResponse resp;
  ASSERT_TRUE(client.Call(FrameType::kStat, req, &resp).ok());
  server.reset();
  EXPECT_EQ(client.Call(FrameType::kStat, req, &resp).code(), StatusCode::kUnavailable);
  auto again = RpcServer::Start({"127.0.0.1", port, "s3cret", "w-test", 4}, EchoHandler);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(client.Call(FrameType::kStat, req, &resp).ok());
}

TEST(RpcTest, UnreachableWorkerIsAClearError) {
  RpcClientOptions o;
  o.port = testing::UnusedPort();
  RpcClient client(o);
  PathRequest req;
  StatResponse resp;
  Status st = client.Call(FrameType::kStat, req, &resp);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(st.retryable());
  EXPECT_NE(st.message().find("cannot reach sluice worker at 127.0.0.1:" + std::to_string(o.port)), std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace sluice::rpc
