// The S3 gateway over a real worker (file:// under-store, page cache on disk), spoken to by
// sluice's own S3 client (SigV4-signed, as every S3 client signs) and by hand-written HTTP for
// what a client library would never send.
#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <thread>

#include "client/file_system.h"
#include "cluster/cluster_store.h"
#include "support/test_support.h"
#include "ufs/sigv4.h"
#include "ufs/stores.h"
#include "worker/worker.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

constexpr uint64_t kPage = 256 << 10;
constexpr const char* kAccess = "GATEWAYTESTKEY";
constexpr const char* kSecret = "gateway-test-secret";

// One HTTP exchange on a fresh connection: sends `raw`, returns everything until the server
// closes (or `timeout`).
std::string Exchange(int port, const std::string& raw, std::chrono::milliseconds timeout = 60s) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ufs_dir_ = dir_.path() + "/ufs";
    WriteFile(ufs_dir_ + "/data/big.bin", big_ = TestBytes(9 * kPage + 123, 1));
    WriteFile(ufs_dir_ + "/data/dir/a.txt", "alpha");
    WriteFile(ufs_dir_ + "/data/dir/sub/b.txt", "bravo!");
    WriteFile(ufs_dir_ + "/data/odd name+plus=eq~.txt", "odd");
    WriteFile(ufs_dir_ + "/data/empty", "");
    WriteFile(ufs_dir_ + "/other/x", "x");
    store_ = *cluster::OpenFileClusterStore(dir_.path() + "/cluster");
    ASSERT_TRUE(store_->UpdateMounts([&](cluster::MountTable* t) {
      return t->Add(cluster::MountPoint{"/", "file://" + ufs_dir_, {}});
    }).ok());
    Config c;
    c.cluster.secret = "test-secret";
    c.worker.rpc_port = 0;
    c.worker.http_port = 0;
    c.worker.page_size = kPage;
    c.worker.memory_quota = 4 * kPage;
    c.worker.disks = {{dir_.path() + "/cache", 1ull << 30}};
    auto w = worker::Worker::Start(c, store_.get(), "w1");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    worker_ = std::move(w).value();
    client::ClientOptions o;
    o.worker.port = worker_->rpc_port();
    o.worker.secret = "test-secret";
    o.cluster = store_.get();
    fs_ = std::make_unique<client::FileSystem>(o);
    StartGateway();
  }

  void StartGateway(std::function<void(GatewayOptions*)> configure = nullptr) {
    gateway_.reset();
    GatewayOptions g;
    g.auth.credentials = {{kAccess, kSecret, {}}, {"LIMITEDKEY", "limited-secret", {"other"}}};
    g.io_timeout = 2s;
    g.idle_timeout = 2s;
    if (configure) configure(&g);
    auto started = Gateway::Start(g, fs_.get());
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    gateway_ = std::move(started).value();
  }

  // sluice's own S3 client, on bucket `bucket` of the gateway.
  std::unique_ptr<ufs::UnderStore> S3(const std::string& bucket, const std::string& access = kAccess,
                                      const std::string& secret = kSecret) {
    ufs::UnderStoreOptions o;
    o.options = {{"endpoint", "http://127.0.0.1:" + std::to_string(gateway_->port())},
                 {"access_key", access},
                 {"secret_key", secret},
                 {"region", "us-east-1"},
                 {"path_style", "true"}};
    o.max_attempts = 1;
    auto s = ufs::NewS3Store(bucket, "", o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // A signed GET of `target` (path and query, raw) with extra headers.
  std::string SignedRequest(const std::string& method, const std::string& path,
                            const std::vector<std::pair<std::string, std::string>>& query,
                            std::vector<std::pair<std::string, std::string>> headers, const std::string& secret = kSecret,
                            std::chrono::system_clock::time_point when = std::chrono::system_clock::now(),
                            const std::string& payload_hash = "UNSIGNED-PAYLOAD") {
    const std::string host = "127.0.0.1:" + std::to_string(gateway_->port());
    const std::string date = ufs::AmzDate(when);
    headers.emplace_back("host", host);
    headers.emplace_back("x-amz-date", date);
    headers.emplace_back("x-amz-content-sha256", payload_hash);
    ufs::SigV4Request req{method, path, query, headers, payload_hash, false};
    auto sig = ufs::SignV4(req, ufs::AwsCredentials{kAccess, secret, ""}, "us-east-1", "s3", date);
    std::string target = ufs::UriEncode(path, true);
    for (size_t i = 0; i < query.size(); ++i) {
      target += (i ? "&" : "?") + ufs::UriEncode(query[i].first, false) + "=" + ufs::UriEncode(query[i].second, false);
    }
    std::string raw = method + " " + target + " HTTP/1.1\r\n";
    for (const auto& [k, v] : headers) raw += k + ": " + v + "\r\n";
    raw += "Authorization: " + sig.authorization + "\r\nConnection: close\r\n\r\n";
    return raw;
  }

  // The root mount takes writes (through).
  void MakeWritable() {
    ASSERT_TRUE(store_->UpdateMounts([&](cluster::MountTable* t) {
      SLUICE_RETURN_IF_ERROR(t->Remove("/"));
      cluster::MountPoint m{"/", "file://" + ufs_dir_, {}};
      m.options.write_mode = cluster::WriteMode::kThrough;
      return t->Add(m);
    }).ok());
  }

  std::string Get(const std::string& path, const std::vector<std::pair<std::string, std::string>>& query = {},
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return Exchange(gateway_->port(), SignedRequest("GET", path, query, headers));
  }

  TempDir dir_;
  std::string ufs_dir_, big_;
  std::unique_ptr<cluster::ClusterStore> store_;
  std::unique_ptr<worker::Worker> worker_;
  std::unique_ptr<client::FileSystem> fs_;
  std::unique_ptr<Gateway> gateway_;
};

std::string StatusLine(const std::string& response) { return response.substr(0, response.find("\r\n")); }
std::string Body(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

TEST_F(GatewayTest, AnS3ClientListsStatsAndReadsTheNamespaceByteExact) {
  auto s3 = S3("data");
  ASSERT_TRUE(s3);
  auto all = s3->ListAll("", true);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> keys;
  for (const auto& e : *all) keys.push_back(e.path);
  EXPECT_EQ(keys, (std::vector<std::string>{"big.bin", "dir/a.txt", "dir/sub/b.txt", "empty", "odd name+plus=eq~.txt"}));
  auto top = s3->ListAll("", false);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->size(), 4u);
  EXPECT_TRUE((*top)[1].is_dir);
  EXPECT_EQ((*top)[1].path, "dir");

  auto info = s3->Stat("big.bin");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, big_.size());
  EXPECT_FALSE(info->etag.empty());
  auto whole = s3->ReadToString("big.bin", 0, big_.size());
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_TRUE(*whole == big_);
  auto middle = s3->ReadToString("big.bin", kPage - 10, 3 * kPage);
  ASSERT_TRUE(middle.ok());
  EXPECT_TRUE(*middle == big_.substr(kPage - 10, 3 * kPage));
  // Pinned to the version the listing gave: If-Match holds.
  auto pinned = s3->ReadVersion("dir/sub/b.txt", 0, 100, (*all)[2].Version(), [](std::string_view) { return Status::Ok(); });
  EXPECT_TRUE(pinned.ok()) << pinned.status().ToString();
  EXPECT_EQ(*s3->ReadToString("odd name+plus=eq~.txt", 0, 10), "odd");
  EXPECT_EQ(*s3->ReadToString("empty", 0, 10), "");
  EXPECT_EQ(s3->Stat("nope").status().code(), StatusCode::kNotFound);
  // The second read came from the cache: the worker fetched big.bin's pages once.
  EXPECT_EQ(*s3->ReadToString("big.bin", 0, big_.size()), big_);
  EXPECT_LE(worker_->Report().mounts(0).ufs_bytes_read(), big_.size() + 2 * kPage);
}

TEST_F(GatewayTest, ListObjectsPagesWithTokensMarkersAndDelimiters) {
  for (int i = 0; i < 25; ++i) WriteFile(ufs_dir_ + "/data/many/f" + std::to_string(100 + i), "x");
  std::vector<std::string> seen;
  std::string token;
  for (int pages = 0; pages < 10; ++pages) {
    std::vector<std::pair<std::string, std::string>> q{{"list-type", "2"}, {"max-keys", "10"}, {"prefix", "many/"}};
    if (!token.empty()) q.emplace_back("continuation-token", token);
    std::string body = Body(Get("/data", q));
    for (size_t at = 0; (at = body.find("<Key>", at)) != std::string::npos; at += 5) {
      seen.push_back(body.substr(at + 5, body.find("</Key>", at) - at - 5));
    }
    size_t t = body.find("<NextContinuationToken>");
    if (t == std::string::npos) {
      EXPECT_NE(body.find("<IsTruncated>false</IsTruncated>"), std::string::npos) << body;
      break;
    }
    EXPECT_NE(body.find("<KeyCount>10</KeyCount>"), std::string::npos) << body;
    token = body.substr(t + 23, body.find("</NextContinuationToken>") - t - 23);
  }
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "many/f100");
  EXPECT_EQ(seen.back(), "many/f124");

  // v1 with a marker, a delimiter and url encoding.
  std::string v1 = Body(Get("/data", {{"delimiter", "/"}, {"marker", "dir/"}, {"encoding-type", "url"}}));
  EXPECT_NE(v1.find("<Key>empty</Key>"), std::string::npos) << v1;
  EXPECT_NE(v1.find("<CommonPrefixes><Prefix>many/</Prefix></CommonPrefixes>"), std::string::npos) << v1;
  EXPECT_EQ(v1.find("<Prefix>dir/</Prefix></CommonPrefixes>"), std::string::npos) << v1;  // at the marker
  EXPECT_NE(v1.find("<Key>odd%20name%2Bplus%3Deq~.txt</Key>"), std::string::npos) << v1;
  EXPECT_NE(v1.find("<Owner><ID>sluice</ID>"), std::string::npos) << v1;
  // start-after, and a token that was never given out.
  std::string after = Body(Get("/data", {{"list-type", "2"}, {"start-after", "many/f122"}, {"prefix", "many/"}}));
  EXPECT_NE(after.find("<KeyCount>2</KeyCount>"), std::string::npos) << after;
  EXPECT_NE(StatusLine(Get("/data", {{"list-type", "2"}, {"continuation-token", "zz"}})).find("400"), std::string::npos);
  EXPECT_NE(StatusLine(Get("/data", {{"max-keys", "-1"}})).find("400"), std::string::npos);
}

TEST_F(GatewayTest, BucketsAreTopLevelDirectoriesOrTheRootBucket) {
  std::string buckets = Body(Get("/"));
  EXPECT_NE(buckets.find("<Name>data</Name>"), std::string::npos) << buckets;
  EXPECT_NE(buckets.find("<Name>other</Name>"), std::string::npos) << buckets;
  EXPECT_NE(StatusLine(Get("/nobucket", {{"list-type", "2"}})).find("404"), std::string::npos);
  EXPECT_NE(Body(Get("/nobucket/x")).find("<Code>NoSuchBucket</Code>"), std::string::npos);
  std::string location = Body(Get("/data", {{"location", ""}}));
  EXPECT_NE(location.find("<LocationConstraint"), std::string::npos) << location;

  StartGateway([](GatewayOptions* g) { g->root_bucket = "sluice"; });
  buckets = Body(Get("/"));
  EXPECT_NE(buckets.find("<Name>sluice</Name>"), std::string::npos) << buckets;
  EXPECT_EQ(buckets.find("<Name>data</Name>"), std::string::npos) << buckets;
  auto s3 = S3("sluice");
  ASSERT_TRUE(s3);
  EXPECT_EQ(*s3->ReadToString("data/dir/a.txt", 0, 100), "alpha");
  EXPECT_EQ(S3("data")->Stat("dir/a.txt").status().code(), StatusCode::kNotFound);
}

TEST_F(GatewayTest, RangesAndConditionsAnswerAsS3Does) {
  std::string r = Get("/data/big.bin", {}, {{"range", "bytes=10-19"}});
  EXPECT_NE(StatusLine(r).find("206"), std::string::npos) << StatusLine(r);
  EXPECT_NE(r.find("Content-Range: bytes 10-19/" + std::to_string(big_.size())), std::string::npos) << r.substr(0, 500);
  EXPECT_TRUE(Body(r) == big_.substr(10, 10));
  r = Get("/data/big.bin", {}, {{"range", "bytes=-5"}});
  EXPECT_TRUE(Body(r) == big_.substr(big_.size() - 5));
  r = Get("/data/big.bin", {}, {{"range", "bytes=" + std::to_string(big_.size()) + "-"}});
  EXPECT_NE(StatusLine(r).find("416"), std::string::npos) << StatusLine(r);
  EXPECT_NE(Body(r).find("<Code>InvalidRange</Code>"), std::string::npos);
  EXPECT_NE(r.find("Content-Range: bytes */" + std::to_string(big_.size())), std::string::npos);

  r = Get("/data/dir/a.txt");
  size_t at = r.find("ETag: ");
  ASSERT_NE(at, std::string::npos) << r;
  std::string etag = r.substr(at + 6, r.find("\r\n", at) - at - 6);
  EXPECT_NE(StatusLine(Get("/data/dir/a.txt", {}, {{"if-none-match", etag}})).find("304"), std::string::npos);
  EXPECT_NE(StatusLine(Get("/data/dir/a.txt", {}, {{"if-match", "\"other\""}})).find("412"), std::string::npos);
  EXPECT_NE(StatusLine(Get("/data/dir/a.txt", {}, {{"if-match", etag}})).find("200"), std::string::npos);
  EXPECT_NE(StatusLine(Get("/data/dir/a.txt", {}, {{"if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT"}}))
                .find("304"),
            std::string::npos);
  EXPECT_NE(StatusLine(Get("/data/dir/a.txt", {}, {{"if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT"}}))
                .find("412"),
            std::string::npos);
  r = Get("/data/dir/a.txt", {{"response-content-type", "text/x-test"}, {"response-content-disposition", "inline"}});
  EXPECT_NE(r.find("Content-Type: text/x-test"), std::string::npos) << r;
  EXPECT_NE(r.find("Content-Disposition: inline"), std::string::npos) << r;
  EXPECT_NE(StatusLine(Get("/data/dir/a.txt", {{"partNumber", "1"}})).find("501"), std::string::npos);
  // HEAD: the headers of a GET, no body.
  r = Exchange(gateway_->port(), SignedRequest("HEAD", "/data/dir/a.txt", {}, {}));
  EXPECT_NE(StatusLine(r).find("200"), std::string::npos);
  EXPECT_NE(r.find("Content-Length: 5"), std::string::npos) << r;
  EXPECT_EQ(Body(r), "");
  r = Exchange(gateway_->port(), SignedRequest("HEAD", "/data/nope", {}, {}));
  EXPECT_NE(StatusLine(r).find("404"), std::string::npos);
  EXPECT_EQ(Body(r), "");
  // A directory is no object.
  EXPECT_NE(Body(Get("/data/dir")).find("<Code>NoSuchKey</Code>"), std::string::npos);
}

TEST_F(GatewayTest, WrongKeysSkewedClocksAndLimitedKeysAreRefusedWithS3Codes) {
  std::string r = Exchange(gateway_->port(), SignedRequest("GET", "/data/dir/a.txt", {}, {}, "wrong-secret"));
  EXPECT_NE(StatusLine(r).find("403"), std::string::npos);
  EXPECT_NE(Body(r).find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos) << r;
  r = Exchange(gateway_->port(),
               SignedRequest("GET", "/data/dir/a.txt", {}, {}, kSecret, std::chrono::system_clock::now() - 1h));
  EXPECT_NE(Body(r).find("<Code>RequestTimeTooSkewed</Code>"), std::string::npos) << r;
  EXPECT_EQ(S3("data", "UNKNOWNKEY", "x")->Stat("dir/a.txt").status().code(), StatusCode::kPermissionDenied);
  r = Exchange(gateway_->port(), "GET /data/dir/a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(Body(r).find("<Code>AccessDenied</Code>"), std::string::npos) << r;
  // A key limited to bucket "other" reads it and nothing else.
  auto limited_other = S3("other", "LIMITEDKEY", "limited-secret");
  EXPECT_EQ(*limited_other->ReadToString("x", 0, 10), "x");
  EXPECT_EQ(S3("data", "LIMITEDKEY", "limited-secret")->Stat("dir/a.txt").status().code(),
            StatusCode::kPermissionDenied);
  // Anonymous reads only when configured.
  StartGateway([](GatewayOptions* g) { g->auth.allow_anonymous = true; });
  r = Exchange(gateway_->port(), "GET /data/dir/a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Body(r), "alpha");
}

TEST_F(GatewayTest, HostileRequestsGetS3ErrorsAndHarmNobody) {
  const int port = gateway_->port();
  for (const std::string target : {"/data/..%2Fother/x", "/data/%2e%2e/other/x", "/data/a%00b", "/data/%zz",
                                   "/data/dir//a.txt"}) {
    std::string r = Exchange(port, SignedRequest("GET", "/data", {}, {}).replace(4, 5, target));
    EXPECT_NE(StatusLine(r).find("400"), std::string::npos) << target << ": " << StatusLine(r);
    EXPECT_NE(Body(r).find("<Code>InvalidArgument</Code>"), std::string::npos) << target << ": " << Body(r);
  }
  std::string r = Exchange(port, "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(StatusLine(r).find("400"), std::string::npos) << StatusLine(r);
  r = Exchange(port, "NONSENSE\r\n\r\n");
  EXPECT_NE(StatusLine(r).find("400"), std::string::npos) << StatusLine(r);
  // A PutObject to a read-only mount is refused as S3 refuses a write it does not allow.
  r = Exchange(port, SignedRequest("PUT", "/data/new.txt", {}, {{"content-length", "5"}}, kSecret,
                                   std::chrono::system_clock::now(),
                                   "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824") +
                         "hello");
  EXPECT_NE(StatusLine(r).find("403"), std::string::npos) << StatusLine(r);
  EXPECT_NE(Body(r).find("<Code>AccessDenied</Code>"), std::string::npos) << Body(r);
  EXPECT_NE(Body(r).find("read-only"), std::string::npos) << Body(r);
  r = Exchange(port, SignedRequest("PUT", "/data/new.txt", {}, {{"content-length", "0"}, {"x-amz-copy-source", "/data/dir/a.txt"}}));
  EXPECT_NE(Body(r).find("<Code>NotImplemented</Code>"), std::string::npos) << Body(r);
  EXPECT_FALSE(std::filesystem::exists(ufs_dir_ + "/data/new.txt"));
  // A client that sends half a head is cut off after the I/O timeout, and others are served.
  int slow = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(slow, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_GT(::send(slow, "GET /data/dir/a.txt HTTP/1.1\r\n", 30, MSG_NOSIGNAL), 0);
  EXPECT_EQ(Body(Get("/data/dir/a.txt")), "alpha");
  char c;
  timeval tv{10, 0};
  ::setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_LE(::recv(slow, &c, 1, 0), 0);  // closed by the gateway, not by our 10 s
  EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);
  ::close(slow);
}

// On a mount that takes writes: PutObject (its body checked against the signed hash, and
// nothing left when it does not match), GetObject of it, DeleteObject.
TEST_F(GatewayTest, PutAndDeleteObjectsGoThroughTheWritePath) {
  MakeWritable();
  const int port = gateway_->port();
  const std::string body = TestBytes((3 << 20) + 17, 4);
  std::string r = Exchange(port, SignedRequest("PUT", "/data/up/new.bin", {},
                                               {{"content-length", std::to_string(body.size())}}, kSecret,
                                               std::chrono::system_clock::now(), ufs::Sha256Hex(body)) +
                                     body);
  ASSERT_NE(StatusLine(r).find("200"), std::string::npos) << r;
  EXPECT_NE(r.find("ETag: \""), std::string::npos) << r;
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/data/up/new.bin"), body);
  EXPECT_EQ(Body(Get("/data/up/new.bin")), body);
  // An unsigned payload, sent after the client asked to continue.
  r = Exchange(port, SignedRequest("PUT", "/data/up/plain.txt", {}, {{"content-length", "5"}, {"expect", "100-continue"}}) +
                         "plain");
  EXPECT_NE(r.find("HTTP/1.1 100 Continue"), std::string::npos) << r;
  EXPECT_NE(r.find("HTTP/1.1 200"), std::string::npos) << r;
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/data/up/plain.txt"), "plain");
  // A body that is not what was signed: refused, and no object.
  r = Exchange(port, SignedRequest("PUT", "/data/up/forged.txt", {}, {{"content-length", "6"}}, kSecret,
                                   std::chrono::system_clock::now(), ufs::Sha256Hex("honest")) +
                         "forged");
  EXPECT_NE(Body(r).find("<Code>XAmzContentSHA256Mismatch</Code>"), std::string::npos) << r;
  EXPECT_FALSE(std::filesystem::exists(ufs_dir_ + "/data/up/forged.txt"));
  // Streaming (aws-chunked) uploads are refused, saying what to send instead.
  r = Exchange(port, SignedRequest("PUT", "/data/up/chunked.txt", {}, {{"content-length", "0"}}, kSecret,
                                   std::chrono::system_clock::now(), "STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
  EXPECT_NE(Body(r).find("UNSIGNED-PAYLOAD"), std::string::npos) << r;
  r = Exchange(port, SignedRequest("DELETE", "/data/up/new.bin", {}, {}));
  EXPECT_NE(StatusLine(r).find("204"), std::string::npos) << r;
  EXPECT_FALSE(std::filesystem::exists(ufs_dir_ + "/data/up/new.bin"));
  EXPECT_NE(StatusLine(Get("/data/up/new.bin")).find("404"), std::string::npos);
}

// A multipart upload's parts, sent out of order, make the object in part order at completion;
// an aborted upload leaves nothing, and is then unknown.
TEST_F(GatewayTest, MultipartUploadsCompleteInOrderAndAbortedOnesLeaveNothing) {
  MakeWritable();
  const std::string uploads = dir_.path() + "/uploads";
  StartGateway([&](GatewayOptions* o) { o->upload_dir = uploads; });
  const int port = gateway_->port();
  auto create = [&](const std::string& path) {
    std::string r = Exchange(port, SignedRequest("POST", path, {{"uploads", ""}}, {{"content-length", "0"}}));
    std::smatch m;
    EXPECT_TRUE(std::regex_search(r, m, std::regex("<UploadId>([0-9a-f]+)</UploadId>"))) << r;
    return m.size() > 1 ? m[1].str() : std::string();
  };
  auto put_part = [&](const std::string& path, const std::string& id, int n, const std::string& data) {
    return Exchange(port, SignedRequest("PUT", path, {{"partNumber", std::to_string(n)}, {"uploadId", id}},
                                        {{"content-length", std::to_string(data.size())}}) + data);
  };
  const std::string id = create("/data/mp.bin");
  ASSERT_FALSE(id.empty());
  const std::string first = TestBytes(5 << 20, 1), second = "the tail";
  std::string r = put_part("/data/mp.bin", id, 2, second);
  ASSERT_NE(StatusLine(r).find("200"), std::string::npos) << r;
  EXPECT_NE(r.find("ETag: \"89afc5b231eb3bf386ffafd9ca840e73\""), std::string::npos) << r;  // MD5 of "the tail"
  r = put_part("/data/mp.bin", id, 1, first);
  ASSERT_NE(StatusLine(r).find("200"), std::string::npos) << r;
  EXPECT_FALSE(std::filesystem::exists(ufs_dir_ + "/data/mp.bin"));  // not before completion
  const std::string parts = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>"
                            "<Part><PartNumber>2</PartNumber><ETag>y</ETag></Part></CompleteMultipartUpload>";
  r = Exchange(port, SignedRequest("POST", "/data/mp.bin", {{"uploadId", id}},
                                   {{"content-length", std::to_string(parts.size())}}) + parts);
  ASSERT_NE(StatusLine(r).find("200"), std::string::npos) << r;
  EXPECT_NE(r.find("<CompleteMultipartUploadResult>"), std::string::npos) << r;
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/data/mp.bin"), first + second);
  EXPECT_FALSE(std::filesystem::exists(uploads + "/" + id));

  const std::string aborted = create("/data/gone.bin");
  ASSERT_NE(StatusLine(put_part("/data/gone.bin", aborted, 1, "data")).find("200"), std::string::npos);
  r = Exchange(port, SignedRequest("DELETE", "/data/gone.bin", {{"uploadId", aborted}}, {}));
  EXPECT_NE(StatusLine(r).find("204"), std::string::npos) << r;
  EXPECT_FALSE(std::filesystem::exists(uploads + "/" + aborted));
  r = put_part("/data/gone.bin", aborted, 2, "more");
  EXPECT_NE(Body(r).find("<Code>NoSuchUpload</Code>"), std::string::npos) << r;
  r = put_part("/data/gone.bin", "../../etc", 1, "x");
  EXPECT_NE(Body(r).find("<Code>NoSuchUpload</Code>"), std::string::npos) << r;
  EXPECT_FALSE(std::filesystem::exists(ufs_dir_ + "/data/gone.bin"));
}

TEST_F(GatewayTest, ConnectionsBeyondTheLimitGetSlowDown) {
  StartGateway([](GatewayOptions* g) { g->max_connections = 2; });
  const int port = gateway_->port();
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    held.push_back(fd);
  }
  std::string r;
  ASSERT_TRUE(testing::WaitFor([&] {
    r = Get("/data/dir/a.txt");
    return r.find("SlowDown") != std::string::npos;
  }, 5s)) << r;
  EXPECT_NE(StatusLine(r).find("503"), std::string::npos);
  for (int fd : held) ::close(fd);
  EXPECT_TRUE(testing::WaitFor([&] { return Body(Get("/data/dir/a.txt")) == "alpha"; }, 5s));
}

TEST_F(GatewayTest, KeepAliveAndPipelinedRequestsAreAnsweredInOrder) {
  std::string one = SignedRequest("GET", "/data/dir/a.txt", {}, {});
  std::string two = SignedRequest("GET", "/data/dir/sub/b.txt", {}, {});
  one.replace(one.find("Connection: close"), 17, "Connection: keep-alive");
  std::string r = Exchange(gateway_->port(), one + two);
  size_t first = r.find("alpha"), second = r.find("bravo!");
  ASSERT_NE(first, std::string::npos) << r;
  ASSERT_NE(second, std::string::npos) << r;
  EXPECT_LT(first, second);
  EXPECT_EQ(r.find("HTTP/1.1 200", r.find("HTTP/1.1 200") + 1) < second, true);
}

TEST_F(GatewayTest, MetricsCountRequestsByOperationAndStatus) {
  Get("/data/dir/a.txt");
  Get("/data/nope");
  Get("/data", {{"list-type", "2"}});
  std::string m = gateway_->Metrics();
  EXPECT_NE(m.find("sluice_gateway_requests_total{operation=\"GetObject\",status=\"200\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_gateway_requests_total{operation=\"GetObject\",status=\"404\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_gateway_requests_total{operation=\"ListObjectsV2\",status=\"200\"} 1"), std::string::npos);
  EXPECT_NE(m.find("sluice_gateway_request_seconds_count 3"), std::string::npos) << m;
  auto source = gateway_->MetricsSource();
  gateway_.reset();
  EXPECT_NE(source().find("sluice_gateway_sent_bytes_total"), std::string::npos);  // outlives the gateway
}

TEST_F(GatewayTest, AWorkerGoneMeansReadsFromTheUnderStore) {
  Get("/data/dir/a.txt");
  worker_.reset();  // the client falls back to reading file:// directly
  EXPECT_EQ(Body(Get("/data/dir/a.txt")), "alpha");
  auto s3 = S3("data");
  auto whole = s3->ReadToString("big.bin", 0, big_.size());
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_TRUE(*whole == big_);
}

}  // namespace
}  // namespace sluice::gateway
