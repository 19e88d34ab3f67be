// A real worker (page store on disk, RPC and HTTP on loopback) read through the client
// library, over a local directory and a real HTTP server as under-stores.
#include "worker/jobs.h"
#include "worker/worker.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#if defined(__SANITIZE_ADDRESS__)
extern "C" size_t __sanitizer_get_current_allocated_bytes();  // ASan's count of live heap bytes
#endif
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <malloc.h>
#include <fstream>
#include <thread>

#include "client/file_system.h"
#include "rpc/client.h"
#include "rpc/frame.h"
#include "support/test_support.h"
#include "ufs/http_client.h"

namespace sluice::worker {
namespace {

using namespace std::chrono_literals;
using testing::FaultyHttpServer;
using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

constexpr uint64_t kPage = 256 << 10;

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ufs_dir_ = dir_.path() + "/ufs";
    WriteFile(ufs_dir_ + "/big.bin", big_ = TestBytes(16 * kPage + 77, 1));
    WriteFile(ufs_dir_ + "/tree/a.txt", "alpha");
    WriteFile(ufs_dir_ + "/tree/sub/b.txt", "bravo!");
    store_ = *cluster::OpenFileClusterStore(dir_.path() + "/cluster");
    Mount("/", "file://" + ufs_dir_);
    StartWorker();
  }

  void Mount(const std::string& path, const std::string& uri) {
    ASSERT_TRUE(store_->UpdateMounts([&](cluster::MountTable* t) {
      return t->Add(cluster::MountPoint{path, uri, {}});
    }).ok());
  }

  // A worker on `port` (0: any); with `new_client`, fs_ becomes a client of it.
  void StartWorker(int port = 0, bool new_client = true) {
    Config c;
    c.cluster.secret = "test-secret";
    c.worker.rpc_port = static_cast<uint32_t>(port);
    c.worker.http_port = 0;
    c.worker.page_size = kPage;
    c.worker.memory_quota = 4 * kPage;  // small: most hits come from disk
    c.worker.disks = {{dir_.path() + "/cache", 1ull << 30}};
    c.ufs.retry_base_delay = 5ms;
    c.ufs.max_attempts = 2;
    if (configure_) configure_(&c);
    auto w = Worker::Start(c, store_.get(), "w1");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    worker_ = std::move(w).value();
    if (new_client) fs_ = Client(/*short_circuit=*/true);
  }

  std::unique_ptr<client::FileSystem> Client(bool short_circuit) {
    client::ClientOptions o;
    o.worker.port = worker_->rpc_port();
    o.worker.secret = "test-secret";
    o.cluster = store_.get();
    o.short_circuit = short_circuit;
    o.readahead_chunk = kPage;
    o.readahead_per_handle = 4 * kPage;
    return std::make_unique<client::FileSystem>(o);
  }

  std::string ReadAll(const std::string& path, uint64_t offset = 0, uint64_t length = UINT64_MAX / 2) {
    std::string out;
    auto n = fs_->Read(path, offset, length, [&](std::string_view c) {
      out.append(c);
      return Status::Ok();
    });
    EXPECT_TRUE(n.ok()) << path << ": " << n.status().ToString();
    return out;
  }

  uint64_t UfsBytes() { return fs_->Report()->mounts(0).ufs_bytes_read(); }

  TempDir dir_;
  std::string ufs_dir_, big_;
  std::unique_ptr<cluster::ClusterStore> store_;
  std::function<void(Config*)> configure_;  // settings a test changes before StartWorker
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<client::FileSystem> fs_;
};

TEST_F(WorkerTest, StatListAndReadThroughTheCache) {
  auto info = fs_->Stat("/big.bin");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, big_.size());
  auto listing = fs_->List("/tree");
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing->size(), 2u);
  EXPECT_EQ((*listing)[0].path, "/tree/a.txt");
  EXPECT_EQ((*listing)[1].path, "/tree/sub");
  EXPECT_TRUE((*listing)[1].is_dir);

  EXPECT_TRUE(ReadAll("/big.bin") == big_);
  EXPECT_EQ(UfsBytes(), big_.size());
  EXPECT_TRUE(ReadAll("/big.bin") == big_);  // warm: from memory and disk
  EXPECT_EQ(UfsBytes(), big_.size());
  EXPECT_TRUE(ReadAll("/big.bin", kPage - 3, 2 * kPage) == big_.substr(kPage - 3, 2 * kPage));
  auto report = fs_->Report();
  EXPECT_GT(report->page_hits(), 16u);
  EXPECT_EQ(report->bytes_served(), 2 * big_.size() + 2 * kPage);
  EXPECT_EQ(ReadAll("/tree/sub/b.txt"), "bravo!");
}

TEST_F(WorkerTest, DiskOnlyReadsLeaveTheMemoryTierAlone) {
  std::string got;
  auto n = fs_->Read("/big.bin", 0, 4 * kPage, [&](std::string_view c) {
    got.append(c);
    return Status::Ok();
  }, /*disk_only=*/true);
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(got == big_.substr(0, 4 * kPage));
  auto report = fs_->Report();
  ASSERT_GE(report->tiers_size(), 2);
  EXPECT_EQ(report->tiers(0).pages(), 0u);  // memory
  EXPECT_TRUE(testing::WaitFor([&] { return fs_->Report()->tiers(1).pages() == 4u; }, 10s));  // disk, written behind
  EXPECT_TRUE(ReadAll("/big.bin", 0, 4 * kPage) == big_.substr(0, 4 * kPage));
  EXPECT_EQ(UfsBytes(), 4 * kPage);  // the second read came from the disk tier
}

TEST_F(WorkerTest, ConcurrentColdReadersCostOneUnderStoreRead) {
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 32; ++i) {
    readers.emplace_back([&] {
      if (ReadAll("/big.bin") != big_) ++wrong;
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_LE(UfsBytes(), big_.size() * 105 / 100);
}

TEST_F(WorkerTest, ErrorsNameThePathAndTheMount) {
  auto outside = store_->UpdateMounts([](cluster::MountTable* t) { return t->Remove("/"); });
  ASSERT_TRUE(outside.ok());
  Mount("/data", "file://" + ufs_dir_);
  auto st = fs_->Stat("/elsewhere/x");
  EXPECT_EQ(st.status().code(), StatusCode::kNotFound);
  EXPECT_NE(st.status().message().find("/elsewhere/x is outside every mount"), std::string::npos)
      << st.status().message();
  auto missing = fs_->Stat("/data/none.bin");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("mount /data (file://" + ufs_dir_ + ")"), std::string::npos)
      << missing.status().message();
  EXPECT_EQ(fs_->Stat("/data/../../etc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_->Read("/data/tree", 0, 1, [](std::string_view) { return Status::Ok(); }).status().code(),
            StatusCode::kInvalidArgument);  // a directory
  EXPECT_EQ(ReadAll("/data/tree/a.txt"), "alpha");  // the new mount was picked up live
  // Above the mounts, the namespace shows the mount points as directories.
  auto root = fs_->List("/");
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  ASSERT_EQ(root->size(), 1u);
  EXPECT_EQ((*root)[0].path, "/data");
  EXPECT_TRUE((*root)[0].is_dir);
  EXPECT_TRUE(fs_->Stat("/")->is_dir);
}

// A file:// file rewritten in place with its mtime set back, between the read of a cached
// page and the fetch of the uncached ones: the handle gets old bytes or an error, never new
// bytes after old ones.
TEST_F(WorkerTest, InPlaceRewritesWithTheMtimeSetBackNeverMixVersions) {
  std::string v1 = TestBytes(3 * kPage, 7), v2 = TestBytes(3 * kPage, 8);
  WriteFile(ufs_dir_ + "/w.bin", v1);
  EXPECT_TRUE(ReadAll("/w.bin", 0, kPage) == v1.substr(0, kPage));  // page 0 cached from v1
  testing::RewriteInPlaceKeepingMtime(ufs_dir_ + "/w.bin", v2);
  std::string during;
  auto n = fs_->Read("/w.bin", 0, v1.size(), [&](std::string_view c) {
    during.append(c);
    return Status::Ok();
  });
  if (n.ok()) {
    EXPECT_TRUE(during == v2 || during == v1) << "mixed versions";
  } else {
    EXPECT_EQ(n.status().code(), StatusCode::kStale) << n.status().ToString();
    EXPECT_TRUE(during == v1.substr(0, during.size())) << "new bytes after old ones";
  }
  ASSERT_TRUE(fs_->Sync("/w.bin").ok());
  EXPECT_TRUE(ReadAll("/w.bin") == v2);  // once noticed, the new content is served
}

TEST_F(WorkerTest, ChangedFilesNeverMixVersions) {
  std::string v1 = TestBytes(3 * kPage, 5), v2 = TestBytes(3 * kPage, 6);
  WriteFile(ufs_dir_ + "/v.bin", v1);
  EXPECT_TRUE(ReadAll("/v.bin", 0, kPage) == v1.substr(0, kPage));  // page 0 cached from v1
  std::this_thread::sleep_for(10ms);                                 // a distinct mtime
  WriteFile(ufs_dir_ + "/v.bin", v2);
  // Within the TTL the cached stat still names v1: page 0 is cached, pages 1-2 are not, and
  // fetching them finds v2. The read must be all v1 or all v2, never a mix.
  std::string during;
  auto n = fs_->Read("/v.bin", 0, v1.size(), [&](std::string_view c) {
    during.append(c);
    return Status::Ok();
  });
  if (n.ok()) {
    EXPECT_TRUE(during == v2 || during == v1) << "mixed versions";
  } else {
    EXPECT_EQ(n.status().code(), StatusCode::kStale) << n.status().ToString();
  }
  EXPECT_TRUE(ReadAll("/v.bin") == v2);  // the change was noticed and the new version served
  EXPECT_EQ(fs_->CheckCached("/v.bin")->cached_bytes(), v2.size());
  std::filesystem::remove(ufs_dir_ + "/v.bin");
  ASSERT_TRUE(fs_->Sync("/v.bin").ok());
  EXPECT_EQ(fs_->Stat("/v.bin").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs_->Read("/v.bin", 0, 1, [](std::string_view) { return Status::Ok(); }).status().code(),
            StatusCode::kNotFound);
}

TEST_F(WorkerTest, LoadFreeAndCheckCached) {
  auto before = fs_->CheckCached("/tree");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->files(), 2u);
  EXPECT_EQ(before->cached_bytes(), 0u);
  auto job = fs_->Load("/");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  rpc::JobStatus status;
  ASSERT_TRUE(testing::WaitFor([&] {
    status = *fs_->JobStatus(*job);
    return status.state() != "queued" && status.state() != "running";
  }, 30s));
  EXPECT_EQ(status.state(), "done");
  EXPECT_EQ(status.files_total(), 3u);
  EXPECT_EQ(status.files_done(), 3u);
  EXPECT_EQ(status.bytes_total(), big_.size() + 11);
  EXPECT_EQ(status.bytes_fetched(), big_.size() + 11);
  EXPECT_EQ(fs_->CheckCached("/")->cached_bytes(), big_.size() + 11);
  EXPECT_EQ(UfsBytes(), big_.size() + 11);
  EXPECT_TRUE(ReadAll("/big.bin") == big_);
  EXPECT_EQ(UfsBytes(), big_.size() + 11);  // served entirely from the cache

  auto freed = fs_->Free("/tree");
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(freed->files(), 2u);
  EXPECT_EQ(freed->cached_bytes(), 11u);
  EXPECT_EQ(fs_->CheckCached("/tree")->cached_bytes(), 0u);
  EXPECT_EQ(fs_->CheckCached("/big.bin")->cached_bytes(), big_.size());

  auto bad = fs_->Load("/nope");
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE(testing::WaitFor([&] { return fs_->JobStatus(*bad)->state() == "failed"; }, 10s));
  auto failed = *fs_->JobStatus(*bad);
  EXPECT_EQ(failed.state(), "failed");
  ASSERT_EQ(failed.failures_size(), 1);
  EXPECT_NE(failed.failures(0).find("nope"), std::string::npos) << failed.failures(0);
  EXPECT_EQ(fs_->Load("/../x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_->JobStatus("load-999").status().code(), StatusCode::kNotFound);
}

TEST_F(WorkerTest, UnderStoreDownServesCachedAndNamesTheMountForTheRest) {
  auto server = FaultyHttpServer::Serve(ufs_dir_);
  ASSERT_TRUE(server.ok());
  Mount("/web", (*server)->url());
  EXPECT_TRUE(ReadAll("/web/big.bin", 0, 2 * kPage) == big_.substr(0, 2 * kPage));
  server->reset();  // the HTTP server is gone
  EXPECT_TRUE(ReadAll("/web/big.bin", 0, 2 * kPage) == big_.substr(0, 2 * kPage));
  auto cold = fs_->Read("/web/big.bin", 8 * kPage, 10, [](std::string_view) { return Status::Ok(); });
  ASSERT_FALSE(cold.ok());
  EXPECT_EQ(cold.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(cold.status().message().find("mount /web (http://127.0.0.1:"), std::string::npos)
      << cold.status().message();
}

TEST_F(WorkerTest, WorkerDownFallsBackToTheUnderStore) {
  EXPECT_EQ(ReadAll("/tree/a.txt"), "alpha");
  const int port = worker_->rpc_port();
  worker_.reset();
  EXPECT_EQ(ReadAll("/tree/a.txt"), "alpha");
  EXPECT_TRUE(ReadAll("/big.bin", 5, 3 * kPage) == big_.substr(5, 3 * kPage));
  EXPECT_EQ(fs_->Stat("/big.bin")->size, big_.size());
  EXPECT_GE(fs_->Stats().fallback_reads, 2u);
  EXPECT_EQ(fs_->Report().status().code(), StatusCode::kUnavailable);  // admin calls need the worker
  // Back on its port, the worker learns from the client's next report how many reads went
  // around it, and counts them in its own report.
  StartWorker(port, /*new_client=*/false);
  auto report = fs_->Report();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_GE(report->client_fallback_reads(), 2u);
  EXPECT_EQ(fs_->Report()->client_fallback_reads(), report->client_fallback_reads());  // counted once
}

TEST_F(WorkerTest, SequentialReadAheadAndRandomReads) {
  fs_ = Client(/*short_circuit=*/false);  // the read-ahead of remote clients
  auto file = fs_->Open("/big.bin");
  ASSERT_TRUE(file.ok());
  std::string got(big_.size(), '\0');
  for (uint64_t off = 0; off < big_.size(); off += 100000) {
    auto n = (*file)->ReadAt(off, 100000, got.data() + off);
    ASSERT_TRUE(n.ok());
  }
  EXPECT_TRUE(got == big_);
  EXPECT_GT(fs_->Stats().readahead_hits, 0u);
  for (uint64_t off : {uint64_t{9 * kPage + 1}, uint64_t{3}, uint64_t{15 * kPage}, big_.size() - 10}) {
    char buf[5000];
    auto n = (*file)->ReadAt(off, sizeof(buf), buf);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(std::string(buf, *n), big_.substr(off, sizeof(buf)));
  }
  EXPECT_EQ(*(*file)->ReadAt(big_.size(), 10, got.data()), 0u);
  EXPECT_EQ(fs_->Open("/tree").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(WorkerTest, ShortCircuitReadsPageFilesAndSurvivesBadOnes) {
  auto job = *fs_->Load("/big.bin");
  ASSERT_TRUE(testing::WaitFor([&] { return fs_->JobStatus(job)->state() == "done"; }, 30s));
  // Once reads go quiet the loaded pages reach the disk; then damage two page files behind the
  // worker's back: a truncation and a flipped byte.
  std::vector<std::string> pages;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        pages.clear();
        for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/cache/pages")) {
          std::string name = e.path().filename().string();
          if (e.is_regular_file() && name.find(".tmp") == std::string::npos) pages.push_back(e.path().string());
        }
        return pages.size() == 17u;
      },
      30s));
  std::sort(pages.begin(), pages.end());
  std::filesystem::resize_file(pages[3], 100);
  {
    std::fstream f(pages[7], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('\x01');
  }
  auto file = *fs_->Open("/big.bin");
  std::string got(big_.size(), '\0');
  for (uint64_t off = 0; off < big_.size(); off += 300000) {
    ASSERT_TRUE(file->ReadAt(off, 300000, got.data() + off).ok());
  }
  EXPECT_TRUE(got == big_);
  EXPECT_GT(fs_->Stats().short_circuit_bytes, 10 * kPage);  // most pages came straight from disk
  EXPECT_LT(fs_->Stats().short_circuit_bytes, big_.size());  // the damaged ones did not

  // Large reads in random order: the stretches of pages at their ends come from the chunks of
  // the page files that cover them.
  auto records = *fs_->Open("/big.bin");
  const uint64_t before = fs_->Stats().short_circuit_bytes;
  for (uint64_t off : {5 * kPage + 70000, 900ul, 11 * kPage + 3, 2 * kPage - 500}) {
    std::string record(4 * kPage + 1000, '\0');
    ASSERT_EQ(*records->ReadAt(off, record.size(), record.data()), record.size());
    EXPECT_TRUE(record == big_.substr(off, record.size())) << off;
  }
  EXPECT_GT(fs_->Stats().short_circuit_bytes, before);

  // As FUSE reads for splicing: whole pages come back as open page files, the rest in memory.
  auto spliced = *fs_->Open("/big.bin");
  std::string joined;
  size_t fd_spans = 0;
  for (uint64_t off = 0; off < big_.size(); off += 2 * kPage) {
    std::string buf(2 * kPage, '\0');
    std::vector<client::ReadSpan> spans;
    auto n = spliced->ReadAt(off, buf.size(), buf.data(), &spans);
    ASSERT_TRUE(n.ok());
    if (spans.empty()) spans.push_back(client::ReadSpan{UniqueFd(), nullptr, 0, *n});
    size_t at = 0;
    for (auto& span : spans) {
      std::string part(span.length, '\0');
      if (span.fd.valid()) {
        ++fd_spans;
        ASSERT_EQ(::pread(span.fd.get(), part.data(), part.size(), static_cast<off_t>(span.offset)),
                  static_cast<ssize_t>(part.size()));
      } else {
        part = buf.substr(at, span.length);
      }
      joined += part;
      at += span.length;
    }
    EXPECT_EQ(at, *n);
  }
  EXPECT_TRUE(joined == big_);
  EXPECT_GT(fd_spans, 10u);
}

TEST_F(WorkerTest, InProcessReadersGetSharedPages) {
  auto info = *fs_->Stat("/big.bin");
  // Straight from the worker: shared pages, read-ahead queued beyond the range, stale versions refused.
  std::string got;
  auto n = worker_->ReadPages("/big.bin", info.version, kPage - 5, 2 * kPage, 8 * kPage,
                              [&](const cache::PageData& page, size_t from, size_t len) {
                                got.append(*page, from, len);
                                return Status::Ok();
                              });
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_TRUE(got == big_.substr(kPage - 5, 2 * kPage));
  EXPECT_TRUE(testing::WaitFor([&] { return UfsBytes() >= 8 * kPage; }, 10s));  // read-ahead ran
  auto stale = worker_->ReadPages("/big.bin", "not-the-version", 0, kPage, 0,
                                  [](const cache::PageData&, size_t, size_t) { return Status::Ok(); });
  EXPECT_EQ(stale.status().code(), StatusCode::kStale);

  // Through a client built for the worker's own process (as `sluice local --mountpoint` is).
  client::ClientOptions o;
  o.worker.in_process = [this](const rpc::Request& req, rpc::Responder& out) { worker_->HandleRpc(req, out); };
  o.in_process_pages = [this](const std::string& path, const std::string& version, uint64_t offset, uint64_t length,
                              uint64_t prefetch_to, const client::PageSink& sink) {
    return worker_->ReadPages(path, version, offset, length, prefetch_to, sink);
  };
  client::FileSystem local(o);
  auto file = *local.Open("/big.bin");
  std::string joined;
  size_t page_spans = 0;
  for (uint64_t off = 0; off < big_.size(); off += 300000) {
    std::string buf(300000, '\0');
    std::vector<client::ReadSpan> spans;
    auto read = file->ReadAt(off, buf.size(), buf.data(), &spans);
    ASSERT_TRUE(read.ok());
    for (const auto& span : spans) {
      ASSERT_TRUE(span.page);
      joined.append(*span.page, span.offset, span.length);
      ++page_spans;
    }
  }
  EXPECT_TRUE(joined == big_);
  EXPECT_GE(page_spans, 17u);
  // Read sequentially, the file came in groups of 8 pages: a few large GETs, not one per page.
  EXPECT_LE(fs_->Report()->mounts(0).ufs_requests(), 8u);
  std::string copy(1000, '\0');  // without spans: copied into the buffer
  ASSERT_EQ(*file->ReadAt(kPage - 500, 1000, copy.data()), 1000u);
  EXPECT_EQ(copy, big_.substr(kPage - 500, 1000));
}

TEST_F(WorkerTest, MetricsAndReportPages) {
  EXPECT_EQ(ReadAll("/tree/a.txt"), "alpha");
  ufs::HttpClient http({});
  ufs::HttpResponse r;
  std::string base = "http://127.0.0.1:" + std::to_string(worker_->http_port());
  ASSERT_TRUE(http.Send({"GET", base + "/metrics", {}, {}}, &r).ok());
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("# TYPE sluice_page_hits_total counter"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("sluice_ufs_bytes_read_total{mount=\"/\"} 5\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("sluice_bytes_served_total 5\n"), std::string::npos) << r.body;
  // The 5-byte page is in memory, and on disk once reads have been quiet for a second.
  EXPECT_TRUE(r.body.find("sluice_cache_unwritten_bytes 5\n") != std::string::npos ||
              r.body.find("sluice_cache_unwritten_bytes 0\n") != std::string::npos)
      << r.body;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return http.Send({"GET", base + "/metrics", {}, {}}, &r).ok() &&
               r.body.find("sluice_cache_unwritten_bytes 0\n") != std::string::npos;
      },
      20s))
      << r.body;
  ASSERT_TRUE(http.Send({"GET", base + "/api/v1/report", {}, {}}, &r).ok());
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"workerId\": \"w1\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"bytesServed\": 5,"), std::string::npos) << "numbers, not strings: " << r.body;
  ASSERT_TRUE(http.Send({"GET", base + "/nope", {}, {}}, &r).ok());
  EXPECT_EQ(r.status, 404);
  ASSERT_TRUE(http.Send({"DELETE", base + "/metrics", {}, {}}, &r).ok());
  EXPECT_EQ(r.status, 405);
}

// A raw exchange on the worker's RPC port: HELLO, then one frame with `header` as its bytes;
// returns the answer's frame type and header bytes ("" and kHello when the worker closed).
std::pair<rpc::FrameType, std::string> RawExchange(int port, rpc::FrameType type, const std::string& header) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  rpc::HelloRequest hello;
  hello.set_secret("test-secret");
  rpc::FrameHeader h;
  h.type = rpc::FrameType::kHello;
  std::string out = rpc::EncodeFrame(h, hello.SerializeAsString(), "");
  h.type = type;
  out += rpc::EncodeFrame(h, header, "");
  EXPECT_EQ(::send(fd, out.data(), out.size(), MSG_NOSIGNAL), static_cast<ssize_t>(out.size()));
  std::pair<rpc::FrameType, std::string> answer{rpc::FrameType::kHello, ""};
  for (int frame = 0; frame < 2; ++frame) {  // the HELLO answer, then the request's
    char fixed[rpc::kFrameHeaderSize];
    if (::recv(fd, fixed, sizeof(fixed), MSG_WAITALL) != static_cast<ssize_t>(sizeof(fixed))) break;
    auto rh = rpc::DecodeFrameHeader(fixed);
    if (!rh.ok()) break;
    std::string body(rh->header_len + rh->payload_len, '\0');
    if (!body.empty() && ::recv(fd, body.data(), body.size(), MSG_WAITALL) != static_cast<ssize_t>(body.size())) break;
    answer = {rh->type, body.substr(0, rh->header_len)};
  }
  ::close(fd);
  return answer;
}

TEST_F(WorkerTest, HostileRequestsAreRefusedWithTheReason) {
  // A LOAD whose request does not parse loads nothing (it used to load "/").
  const std::string garbage = "\x0f\xff\xff";
  auto [type, header] = RawExchange(worker_->rpc_port(), rpc::FrameType::kLoad, garbage);
  ASSERT_EQ(type, rpc::FrameType::kLoad);
  rpc::JobStatus job;
  ASSERT_TRUE(job.ParseFromString(header));
  EXPECT_EQ(job.status().code(), static_cast<int>(StatusCode::kInvalidArgument));
  EXPECT_EQ(job.status().message(), "malformed LOAD request");
  EXPECT_TRUE(job.job_id().empty());
  for (auto t : {rpc::FrameType::kSync, rpc::FrameType::kFree, rpc::FrameType::kCheckCached,
                 rpc::FrameType::kJobStatus, rpc::FrameType::kJobCancel}) {
    auto [answer_type, answer] = RawExchange(worker_->rpc_port(), t, garbage);
    EXPECT_EQ(answer_type, t);
    EXPECT_NE(answer.find("malformed"), std::string::npos) << static_cast<int>(t);
  }
  // A READ_DATA frame is not a request: the connection is closed, not answered in kind.
  EXPECT_EQ(RawExchange(worker_->rpc_port(), rpc::FrameType::kReadData, "").first, rpc::FrameType::kHello);

  // One READ asks for at most kMaxReadRequestBytes; the client splits longer reads.
  rpc::RpcClientOptions o;
  o.port = worker_->rpc_port();
  o.secret = "test-secret";
  rpc::RpcClient raw(o);
  rpc::ReadRequest read;
  read.set_path("/big.bin");
  read.set_length(rpc::kMaxReadRequestBytes + 1);
  rpc::ReadResponse resp;
  Status st = raw.Call(rpc::FrameType::kRead, read, &resp);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("per request"), std::string::npos) << st.message();

  // "/big.bin/" names a directory; the file of that name is not one.
  auto stat = fs_->Stat("/big.bin/");
  EXPECT_EQ(stat.status().code(), StatusCode::kNotFound) << stat.status().ToString();
  EXPECT_NE(stat.status().message().find("is a file, not a directory"), std::string::npos);
  auto n = fs_->Read("/big.bin/", 0, 10, [](std::string_view) { return Status::Ok(); });
  EXPECT_EQ(n.status().code(), StatusCode::kNotFound);
  auto dir = fs_->Stat("/tree/");  // a directory with its slash is still one
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_TRUE(dir->is_dir);
}

// True when the peer closes `fd` (EOF or reset) within `timeout`.
bool ClosedWithin(int fd, std::chrono::seconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[256];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

int ConnectTo(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

TEST_F(WorkerTest, SilentConnectionsAreClosedAfterTheConfiguredTimeouts) {
  configure_ = [](Config* c) {
    c->rpc.handshake_timeout = 300ms;
    c->rpc.io_timeout = 300ms;
  };
  StartWorker();
  int rpc = ConnectTo(worker_->rpc_port());
  int http = ConnectTo(worker_->http_port());
  const std::string partial = "GET /metrics HTTP/1.1\r\n";  // and the rest never comes
  ASSERT_EQ(::send(http, partial.data(), partial.size(), MSG_NOSIGNAL), static_cast<ssize_t>(partial.size()));
  EXPECT_TRUE(ClosedWithin(rpc, 5s));
  EXPECT_TRUE(ClosedWithin(http, 5s));
  ::close(rpc);
  ::close(http);
  EXPECT_EQ(ReadAll("/tree/a.txt"), "alpha");  // and everyone else is served
}

TEST_F(WorkerTest, HttpRequestsEndedByABareLineFeedAreAnswered) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(worker_->http_port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET /api/v1/report HTTP/1.0\nHost: x\n\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string answer;
  char buf[4096];
  for (ssize_t got; (got = ::recv(fd, buf, sizeof(buf), 0)) > 0;) answer.append(buf, static_cast<size_t>(got));
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
}

TEST(JobManagerTest, FinishedJobsAreKeptBoundedAndQueuedOnesWait) {
  JobManager jobs;
  std::string last;
  for (int i = 0; i < 250; ++i) {
    auto id = jobs.Start("/p", [] { return Result<std::vector<LoadItem>>(std::vector<LoadItem>{}); });
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    last = *id;
    ASSERT_TRUE(testing::WaitFor([&] { return jobs.Status(last)->state() == "done"; }, 10s));
  }
  auto kept = jobs.List();
  EXPECT_LE(kept.size(), 101u);  // the last 100 finished, and the newest
  EXPECT_EQ(kept.back().job_id(), last);
  EXPECT_EQ(jobs.Status("load-1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(jobs.Status("load-x").status().code(), StatusCode::kNotFound);

  // Jobs beyond the runners wait, queued; a queued job cancelled ends at once; the queue is bounded.
  std::mutex gate;
  std::unique_lock<std::mutex> hold(gate);
  auto blocked = [&] {
    std::lock_guard<std::mutex> wait(gate);
    return Result<std::vector<LoadItem>>(std::vector<LoadItem>{});
  };
  for (size_t i = 0; i < JobManager::kMaxRunningJobs; ++i) ASSERT_TRUE(jobs.Start("/busy", blocked).ok());
  auto queued = jobs.Start("/later", blocked);
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(jobs.Status(*queued)->state(), "queued");
  ASSERT_TRUE(jobs.Cancel(*queued).ok());
  EXPECT_EQ(jobs.Status(*queued)->state(), "cancelled");
  Status refused;
  for (size_t i = 0; i <= JobManager::kMaxQueuedJobs && refused.ok(); ++i) refused = jobs.Start("/more", blocked).status();
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("waiting to run"), std::string::npos) << refused.message();
  hold.unlock();
}

// Process-wide figures for a leak check: resident bytes, live heap bytes and memory mappings.
// Under ASan, freed memory sits in its quarantine (256 MiB) and the resident size says little;
// the live heap then comes from ASan's own count.
struct MemoryFigures {
  int64_t rss = 0, heap = 0;
  size_t mappings = 0;
};

MemoryFigures Measure() {
  MemoryFigures m;
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0;
  statm >> pages >> m.rss;
  m.rss *= ::sysconf(_SC_PAGESIZE);
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) ++m.mappings;
#if defined(__SANITIZE_ADDRESS__)
  m.heap = static_cast<int64_t>(__sanitizer_get_current_allocated_bytes());
#else
  struct mallinfo2 info = ::mallinfo2();
  m.heap = static_cast<int64_t>(info.uordblks + info.hblkhd);
#endif
  return m;
}

TEST_F(WorkerTest, AHundredThousandLoadJobsLeaveMemoryAndMappingsFlat) {
  auto run_jobs = [&](int count) {
    std::string last;
    for (int i = 0; i < count; ++i) {
      Result<std::string> id = fs_->Load("/tree/a.txt");
      while (!id.ok() && id.status().code() == StatusCode::kResourceExhausted) {  // the queue is full: let it drain
        ASSERT_TRUE(testing::WaitFor([&] { return fs_->JobStatus(last)->state() == "done"; }, 30s));
        id = fs_->Load("/tree/a.txt");
      }
      ASSERT_TRUE(id.ok()) << id.status().ToString();
      last = *id;
    }
    ASSERT_TRUE(testing::WaitFor([&] { return fs_->JobStatus(last)->state() == "done"; }, 30s));
  };
  run_jobs(2000);  // warm: pools, caches and the job history at their working size
  const MemoryFigures before = Measure();
  run_jobs(100000);
  const MemoryFigures after = Measure();
  EXPECT_LT(after.heap - before.heap, 16ll << 20) << "live heap grew from " << before.heap << " to " << after.heap;
  EXPECT_LT(after.mappings, before.mappings + 64) << "from " << before.mappings << " to " << after.mappings;
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(after.rss - before.rss, 32ll << 20) << "RSS grew from " << before.rss << " to " << after.rss;
#endif
  EXPECT_LE(fs_->Report()->jobs_size(), static_cast<int>(JobManager::kMaxFinishedJobs + JobManager::kMaxRunningJobs + 1));
}

}  // namespace
}  // namespace sluice::worker

namespace sluice::worker {
namespace {

// Writes on a mount in `through` mode, with parts of one page so that a few pages make a
// multipart upload that goes up while it is written.
class WriteThroughTest : public WorkerTest {
 protected:
  void SetUp() override {
    configure_ = [](Config* c) { c->ufs.multipart_part_size = kPage; };
    WorkerTest::SetUp();
  }
  void MakeWritable(cluster::WriteMode mode = cluster::WriteMode::kThrough) {
    ASSERT_TRUE(store_->UpdateMounts([&](cluster::MountTable* t) {
      SLUICE_RETURN_IF_ERROR(t->Remove("/"));
      cluster::MountPoint m{"/", "file://" + ufs_dir_, {}};
      m.options.write_mode = mode;
      return t->Add(m);
    }).ok());
  }
  // Writes `data` to `path` in pieces of `piece` bytes and closes it.
  Result<client::FileInfo> Put(const std::string& path, const std::string& data, size_t piece = 64 << 10) {
    SLUICE_ASSIGN_OR_RETURN(auto writer, fs_->OpenForWrite(path, true));
    for (size_t at = 0; at < data.size(); at += piece) {
      SLUICE_RETURN_IF_ERROR(writer->Write(at, std::string_view(data).substr(at, piece)));
    }
    return writer->Close();
  }
};

TEST_F(WriteThroughTest, ReadOnlyMountsRefuseWritesSayingHow) {
  auto writer = fs_->OpenForWrite("/new.bin", true);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), StatusCode::kNotSupported);
  EXPECT_NE(writer.status().message().find("read-only"), std::string::npos) << writer.status().ToString();
  EXPECT_NE(writer.status().message().find("--write-mode through"), std::string::npos) << writer.status().ToString();
  EXPECT_EQ(fs_->Remove("/tree/a.txt", false).code(), StatusCode::kNotSupported);
  EXPECT_EQ(fs_->Mkdir("/d").code(), StatusCode::kNotSupported);
  EXPECT_TRUE(std::filesystem::exists(ufs_dir_ + "/tree/a.txt"));
}

TEST_F(WriteThroughTest, ClosedFilesAreInTheStoreAndReadFromTheCache) {
  MakeWritable();
  const std::string data = TestBytes(5 * kPage + 123, 7);
  auto info = Put("/out/model.pt", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/out/model.pt"), data);  // in the store at close
  EXPECT_EQ(fs_->Stat("/out/model.pt")->size, data.size());
  const uint64_t before = UfsBytes();
  EXPECT_EQ(ReadAll("/out/model.pt"), data);
  EXPECT_EQ(UfsBytes(), before);  // the next stage reads what was written from the cache

  // A small file is one part; an empty one is a file too.
  ASSERT_TRUE(Put("/out/small.txt", "tiny").ok());
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/out/small.txt"), "tiny");
  ASSERT_TRUE(Put("/out/empty", "").ok());
  EXPECT_TRUE(std::filesystem::exists(ufs_dir_ + "/out/empty"));
  EXPECT_EQ(std::filesystem::file_size(ufs_dir_ + "/out/empty"), 0u);
}

TEST_F(WriteThroughTest, RewritesTruncatesAndOutOfOrderWritesEndUpWhole) {
  MakeWritable();
  std::string data = TestBytes(4 * kPage + 9, 3);
  ASSERT_TRUE(Put("/f.bin", data).ok());
  {  // change bytes inside a part that already went up: the file is uploaded again
    auto writer = fs_->OpenForWrite("/f.bin", false);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    EXPECT_EQ((*writer)->size(), data.size());
    ASSERT_TRUE((*writer)->Write(10, "XYZ").ok());
    data.replace(10, 3, "XYZ");
    ASSERT_TRUE((*writer)->Close().ok());
  }
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/f.bin"), data);
  EXPECT_EQ(ReadAll("/f.bin"), data);  // the new version, not the old pages
  {  // pieces in reverse order, then a truncate
    const std::string next = TestBytes(3 * kPage, 4);
    auto writer = fs_->OpenForWrite("/f.bin", true);
    ASSERT_TRUE(writer.ok());
    for (uint64_t at = 3 * kPage; at > 0; at -= kPage / 2) {
      ASSERT_TRUE((*writer)->Write(at - kPage / 2, std::string_view(next).substr(at - kPage / 2, kPage / 2)).ok());
    }
    ASSERT_TRUE((*writer)->Truncate(kPage + 5).ok());
    auto closed = (*writer)->Close();
    ASSERT_TRUE(closed.ok()) << closed.status().ToString();
    EXPECT_EQ(closed->size, kPage + 5);
    EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/f.bin"), next.substr(0, kPage + 5));
    EXPECT_EQ(ReadAll("/f.bin"), next.substr(0, kPage + 5));
  }
  {  // a writer dropped without closing leaves the file as it was
    auto writer = fs_->OpenForWrite("/f.bin", true);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(0, TestBytes(3 * kPage, 5)).ok());
  }
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/f.bin"), TestBytes(3 * kPage, 4).substr(0, kPage + 5));
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/cache/staging")) {
    ADD_FAILURE() << "staging file left behind: " << e.path();
  }
}

TEST_F(WriteThroughTest, NamespaceChangesAndTheirErrors) {
  MakeWritable();
  ASSERT_TRUE(fs_->Mkdir("/stage1").ok());
  EXPECT_TRUE(std::filesystem::is_directory(ufs_dir_ + "/stage1"));
  EXPECT_EQ(fs_->Mkdir("/stage1").code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(Put("/stage1/part-0", "rows").ok());
  EXPECT_EQ(fs_->Remove("/stage1", true).code(), StatusCode::kNotEmpty);
  EXPECT_EQ(fs_->Remove("/stage1", false).code(), StatusCode::kInvalidArgument);  // a directory
  ASSERT_TRUE(fs_->Rename("/stage1/part-0", "/stage1/part-final").ok());
  EXPECT_FALSE(std::filesystem::exists(ufs_dir_ + "/stage1/part-0"));
  EXPECT_EQ(ReadAll("/stage1/part-final"), "rows");
  EXPECT_EQ(fs_->Stat("/stage1/part-0").status().code(), StatusCode::kNotFound);
  auto listed = fs_->List("/stage1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].path, "/stage1/part-final");
  ASSERT_TRUE(fs_->Remove("/stage1/part-final", false).ok());
  EXPECT_EQ(fs_->Stat("/stage1/part-final").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(fs_->Remove("/stage1", true).ok());
  EXPECT_FALSE(std::filesystem::exists(ufs_dir_ + "/stage1"));
  EXPECT_EQ(fs_->Remove("/missing", false).code(), StatusCode::kNotFound);
  EXPECT_EQ(fs_->OpenForWrite("/tree", true).status().code(), StatusCode::kInvalidArgument);  // a directory
  EXPECT_EQ(fs_->OpenForWrite("/../etc/passwd", true).status().code(), StatusCode::kInvalidArgument);

  // A store that cannot take the file: the close fails, naming why, and nothing is there.
  WriteFile(ufs_dir_ + "/blocked", "a file, not a directory");
  auto writer = fs_->OpenForWrite("/blocked/x.bin", true);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE((*writer)->Write(0, "data").ok());
  auto closed = (*writer)->Close();
  ASSERT_FALSE(closed.ok());
  EXPECT_NE(closed.status().message().find("blocked"), std::string::npos) << closed.status().ToString();
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/blocked"), "a file, not a directory");
}


// Write-back: close() returns with the file in the journal, readers see it at once (stat,
// listing, bytes), and the upload follows; a newer close supersedes an older one.
TEST_F(WriteThroughTest, WriteBackFilesAreReadableAtOnceAndUploadedAfter) {
  MakeWritable(cluster::WriteMode::kAsync);
  const std::string data = TestBytes(3 * kPage + 11, 9);
  auto info = Put("/stage/out.bin", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(ReadAll("/stage/out.bin"), data);
  EXPECT_EQ(fs_->Stat("/stage/out.bin")->size, data.size());
  auto listed = fs_->List("/stage");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  ASSERT_TRUE(fs_->Flush("/stage").ok());
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/stage/out.bin"), data);
  auto report = fs_->Report();
  EXPECT_EQ(report->writeback_files(), 0u);
  EXPECT_GE(report->writeback_uploaded(), 1u);
  EXPECT_EQ(ReadAll("/stage/out.bin"), data);  // the uploaded version, from the cache
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/cache/journal")) {
    ADD_FAILURE() << "journal file left behind: " << e.path();
  }
  // Two closes in a row: the store ends with the second.
  ASSERT_TRUE(Put("/stage/out.bin", "first").ok());
  ASSERT_TRUE(Put("/stage/out.bin", "second").ok());
  EXPECT_EQ(ReadAll("/stage/out.bin"), "second");
  ASSERT_TRUE(fs_->Flush("/").ok());
  EXPECT_EQ(testing::ReadFile(ufs_dir_ + "/stage/out.bin"), "second");
}


// A cache disk that fills up while a file is written: the writer gets ENOSPC's status, saying
// so, and the store gets nothing.
TEST_F(WriteThroughTest, AFullCacheDiskFailsTheWriteAndTheStoreGetsNothing) {
  const std::string small = dir_.path() + "/small-disk";
  std::filesystem::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=2m") != 0) GTEST_SKIP() << "needs to mount a tmpfs (root)";
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{small};
  worker_.reset();
  configure_ = [&](Config* c) {
    c->ufs.multipart_part_size = kPage;
    c->worker.disks = {{small + "/cache", 1 << 20, 0}};
  };
  StartWorker();
  MakeWritable();
  auto writer = fs_->OpenForWrite("/big.out", true);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  Status st;
  for (uint64_t at = 0; st.ok() && at < (4 << 20); at += kPage) st = (*writer)->Write(at, TestBytes(kPage, at));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("disk is full"), std::string::npos) << st.ToString();
  writer->reset();
  EXPECT_FALSE(std::filesystem::exists(ufs_dir_ + "/big.out"));
}

}  // namespace
}  // namespace sluice::worker
