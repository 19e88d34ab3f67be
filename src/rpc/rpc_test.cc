// The RPC layer over real loopback sockets: round trips, streamed reads, the cluster secret,
// malformed and oversized frames, clients that vanish mid-stream, and pooled reconnects; and
// the hostile ones: frames announcing huge sizes before and after HELLO, silent and idle
// connections, too many connections, running out of file descriptors (in a child process
// with a low limit), and clients that never read their replies.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "rpc/client.h"
#include "rpc/server.h"
#include "support/test_support.h"

namespace sluice::rpc {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

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

// ---- Hostile and careless clients ----

RpcServerOptions HardenedOptions() {
  RpcServerOptions o;
  o.secret = "s3cret";
  o.worker_id = "w-test";
  o.handler_threads = 4;
  return o;
}

int64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

std::string HelloFrame(const std::string& secret) {
  HelloRequest hello;
  hello.set_secret(secret);
  FrameHeader h;
  h.type = FrameType::kHello;
  return EncodeFrame(h, hello.SerializeAsString(), "");
}

void SendAll(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
}

// Reads the HELLO answer (one frame) from a raw connection.
bool ReadHelloAnswer(int fd) {
  char fixed[kFrameHeaderSize];
  if (::recv(fd, fixed, sizeof(fixed), MSG_WAITALL) != static_cast<ssize_t>(sizeof(fixed))) return false;
  auto h = DecodeFrameHeader(fixed);
  if (!h.ok()) return false;
  std::string rest(h->header_len + h->payload_len, '\0');
  return rest.empty() || ::recv(fd, rest.data(), rest.size(), MSG_WAITALL) == static_cast<ssize_t>(rest.size());
}

std::string AnnouncingHeader(FrameType type, uint32_t header_len, uint32_t payload_len) {
  FrameHeader h;
  h.type = type;
  h.header_len = header_len;
  h.payload_len = payload_len;
  char raw[kFrameHeaderSize];
  EncodeFrameHeader(h, raw);
  return std::string(raw, sizeof(raw));
}

TEST(RpcHardeningTest, FramesBeforeHelloPinNoMemory) {
  auto server = RpcServer::Start(HardenedOptions(), EchoHandler);
  ASSERT_TRUE(server.ok());
  const int64_t before = RssBytes();
  std::vector<int> fds;
  for (int i = 0; i < 50; ++i) {
    int fd = RawConnect((*server)->port());
    // The largest frame the protocol allows, announced by a client that has not said HELLO.
    SendAll(fd, AnnouncingHeader(i % 2 ? FrameType::kHello : FrameType::kStat, kMaxHeaderBytes, kMaxPayloadBytes));
    fds.push_back(fd);
  }
  EXPECT_TRUE(WaitFor([&] { return (*server)->Stats().auth_failures >= 50; }, 10s)) << "refused at the header";
  EXPECT_LT(RssBytes() - before, 50ll << 20);
  for (int fd : fds) {
    EXPECT_TRUE(ServerCloses(fd));
    ::close(fd);
  }
}

TEST(RpcHardeningTest, AnnouncedBytesAreHeldOnlyAsTheyArrive) {
  auto server = RpcServer::Start(HardenedOptions(), EchoHandler);
  ASSERT_TRUE(server.ok());
  const int64_t before = RssBytes();
  std::vector<int> fds;
  for (int i = 0; i < 50; ++i) {
    int fd = RawConnect((*server)->port());
    SendAll(fd, HelloFrame("s3cret"));
    ASSERT_TRUE(ReadHelloAnswer(fd));
    // Authenticated, it announces 65 MiB and sends 1 KiB of it.
    SendAll(fd, AnnouncingHeader(FrameType::kStat, kMaxHeaderBytes, kMaxPayloadBytes) + std::string(1024, 'a'));
    fds.push_back(fd);
  }
  EXPECT_FALSE(WaitFor([&] { return RssBytes() - before > (50ll << 20); }, 2s)) << RssBytes() - before;
  for (int fd : fds) ::close(fd);
  RpcClient client(ClientFor(**server));
  PathRequest req;
  req.set_path("/x");
  StatResponse resp;
  EXPECT_TRUE(client.Call(FrameType::kStat, req, &resp).ok());
}

TEST(RpcHardeningTest, SilentAndIdleConnectionsAreClosedAndPooledClientsReconnect) {
  RpcServerOptions o = HardenedOptions();
  o.handshake_timeout = 300ms;
  o.idle_timeout = 500ms;
  auto server = RpcServer::Start(o, EchoHandler);
  ASSERT_TRUE(server.ok());
  int silent = RawConnect((*server)->port());
  EXPECT_TRUE(ServerCloses(silent));
  ::close(silent);

  RpcClient client(ClientFor(**server));
  PathRequest req;
  req.set_path("/a");
  StatResponse resp;
  ASSERT_TRUE(client.Call(FrameType::kStat, req, &resp).ok());
  ASSERT_TRUE(WaitFor([&] { return (*server)->Stats().timeouts >= 2; }, 5s));  // the pooled one, idle
  EXPECT_TRUE(client.Call(FrameType::kStat, req, &resp).ok());
}

TEST(RpcHardeningTest, ConnectionsBeyondTheLimitAreRefusedWithAReason) {
  RpcServerOptions o = HardenedOptions();
  o.max_connections = 3;
  auto server = RpcServer::Start(o, EchoHandler);
  ASSERT_TRUE(server.ok());
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) fds.push_back(RawConnect((*server)->port()));
  ASSERT_TRUE(WaitFor([&] { return (*server)->Stats().connections >= 3; }, 5s));
  RpcClient client(ClientFor(**server));
  PathRequest req;
  StatResponse resp;
  Status st = client.Call(FrameType::kStat, req, &resp);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("rpc.max_connections"), std::string::npos) << st.message();
  ::close(fds.back());
  fds.pop_back();
  EXPECT_TRUE(WaitFor([&] { return client.Call(FrameType::kStat, req, &resp).ok(); }, 5s));
  for (int fd : fds) ::close(fd);
}

TEST(RpcHardeningTest, AResponseFrameTypeAsARequestClosesTheConnection) {
  auto server = RpcServer::Start(HardenedOptions(), EchoHandler);
  ASSERT_TRUE(server.ok());
  int fd = RawConnect((*server)->port());
  SendAll(fd, HelloFrame("s3cret"));
  ASSERT_TRUE(ReadHelloAnswer(fd));
  FrameHeader h;
  h.type = FrameType::kReadData;
  SendAll(fd, EncodeFrame(h, "", "data"));
  EXPECT_TRUE(ServerCloses(fd));  // not answered with a READ_DATA frame
  ::close(fd);
  EXPECT_EQ((*server)->Stats().malformed_frames, 1u);
}

TEST(RpcHardeningTest, ClientsThatDoNotReadTheirRepliesStallNobody) {
  RpcServerOptions o = HardenedOptions();
  o.handler_threads = 16;
  o.io_timeout = 3s;
  auto server = RpcServer::Start(o, EchoHandler);
  ASSERT_TRUE(server.ok());
  // As many clients as handler threads pipeline 4 MiB reads and never read a byte back.
  std::vector<int> stuck;
  for (int i = 0; i < 16; ++i) {
    int fd = RawConnect((*server)->port());
    int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    std::string frames = HelloFrame("s3cret");
    ReadRequest read;
    read.set_length(4 << 20);
    FrameHeader h;
    h.type = FrameType::kRead;
    for (int r = 0; r < 8; ++r) frames += EncodeFrame(h, read.SerializeAsString(), "");
    SendAll(fd, frames);
    stuck.push_back(fd);
  }
  ASSERT_TRUE(WaitFor([&] { return (*server)->Stats().requests >= 16; }, 10s));
  RpcClient client(ClientFor(**server));
  PathRequest req;
  req.set_path("/anyone/else");
  StatResponse resp;
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(client.Call(FrameType::kStat, req, &resp).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  }
  // Past the I/O timeout each stuck client is cut off.
  EXPECT_TRUE(WaitFor([&] { return (*server)->Stats().timeouts >= 16; }, 15s)) << (*server)->Stats().timeouts;
  for (int fd : stuck) ::close(fd);
}

// ---- Out of file descriptors, in a child process of this test binary with a low limit ----

constexpr const char* kChildEnv = "SLUICE_RPC_TEST_CHILD_DIR";

// The child: a server under RLIMIT_NOFILE 64 that writes its port to DIR/port and runs until
// DIR/stop appears. Skipped when run as a test of its own.
TEST(RpcServerChild, ServeUnderALowDescriptorLimit) {
  const char* dir = std::getenv(kChildEnv);
  if (dir == nullptr) GTEST_SKIP() << "runs only as the child of RunningOutOfDescriptorsNeitherSpinsNorSticks";
  rlimit limit{64, 64};
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
  RpcServerOptions o = HardenedOptions();
  o.handshake_timeout = 1500ms;
  auto server = RpcServer::Start(o, EchoHandler);
  ASSERT_TRUE(server.ok());
  testing::WriteFile(std::string(dir) + "/port.tmp", std::to_string((*server)->port()));
  ASSERT_EQ(::rename((std::string(dir) + "/port.tmp").c_str(), (std::string(dir) + "/port").c_str()), 0);
  EXPECT_TRUE(WaitFor([&] { return ::access((std::string(dir) + "/stop").c_str(), F_OK) == 0; }, 120s));
}

// User plus system CPU time of a process, from /proc/PID/stat.
std::chrono::milliseconds CpuTime(pid_t pid) {
  std::string stat = testing::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt
  long utime = 0, stime = 0;
  fields >> utime >> stime;
  return std::chrono::milliseconds((utime + stime) * 1000 / ::sysconf(_SC_CLK_TCK));
}

TEST(RpcHardeningTest, RunningOutOfDescriptorsNeitherSpinsNorSticks) {
  testing::TempDir dir;
  auto child = testing::Subprocess::Start(
      {"/proc/self/exe", "--gtest_filter=RpcServerChild.ServeUnderALowDescriptorLimit"}, {{kChildEnv, dir.path()}},
      dir.path() + "/child.log");
  ASSERT_TRUE(child.ok());
  const std::string port_file = dir.path() + "/port";
  ASSERT_TRUE(WaitFor([&] { return !testing::ReadFile(port_file).empty(); }, 60s));
  const int port = std::stoi(testing::ReadFile(port_file));
  // Twice as many silent connections as the child has descriptors.
  std::vector<int> squatters;
  for (int i = 0; i < 128; ++i) squatters.push_back(RawConnect(port));
  const auto cpu_before = CpuTime((*child)->pid());
  EXPECT_FALSE(WaitFor([&] { return CpuTime((*child)->pid()) - cpu_before > 300ms; }, 2s)) << "accept loop spins";
  // With the squatters still connected, a real client gets through once the handshake
  // timeout has closed the ones in its way.
  RpcClientOptions co;
  co.port = port;
  co.secret = "s3cret";
  co.io_timeout = 5s;
  RpcClient client(co);
  PathRequest req;
  req.set_path("/after");
  StatResponse resp;
  EXPECT_TRUE(WaitFor([&] { return client.Call(FrameType::kStat, req, &resp).ok(); }, 30s));
  EXPECT_LT(CpuTime((*child)->pid()) - cpu_before, 3s);
  for (int fd : squatters) ::close(fd);
  testing::WriteFile(dir.path() + "/stop", "");
  int wait_status = 0;
  EXPECT_TRUE((*child)->WaitExit(30s, &wait_status));
  EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) << testing::ReadFile(dir.path() + "/child.log");
}

}  // namespace
}  // namespace sluice::rpc
