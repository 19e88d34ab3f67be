// cache_bench: measures the cache worker against the baselines the issue names, each pair in
// the same run on the same machine. Not a test: it prints figures (and JSON with --json).
//   cache_bench rpc-vs-tcp  DIR   RPC read from the memory tier vs a plain loopback TCP stream
//   cache_bench warm-disk   DIR   warm read from the disk tier vs reading the same disk directly
//   cache_bench restart     DIR   reopen a page store of 100,000 pages; every page still a hit
//   cache_bench cold-readers DIR  32 concurrent cold readers of one 64 MiB file: under-store bytes
// DIR is a scratch directory on the disk to measure. Drops the kernel page cache (root).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "cache/page_store.h"
#include "client/file_system.h"
#include "worker/worker.h"

using namespace sluice;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kMiB = 1 << 20;

double Seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void DropCaches() {
  ::sync();
  std::ofstream("/proc/sys/vm/drop_caches") << "3\n";
}

void WriteRandomFile(const std::string& path, uint64_t size) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  std::mt19937_64 rng(1);
  std::string block(kMiB, '\0');
  for (uint64_t done = 0; done < size; done += block.size()) {
    for (size_t i = 0; i + 8 <= block.size(); i += 8) {
      uint64_t v = rng();
      std::memcpy(block.data() + i, &v, 8);
    }
    out.write(block.data(), static_cast<std::streamsize>(std::min<uint64_t>(block.size(), size - done)));
  }
}

// A worker over `ufs_dir` with its cluster store and cache under `dir`.
struct Rig {
  std::unique_ptr<cluster::ClusterStore> store;
  std::unique_ptr<worker::Worker> worker;
  std::unique_ptr<client::FileSystem> fs;

  Rig(const std::string& dir, const std::string& ufs_dir, uint64_t memory_quota) {
    store = *cluster::OpenFileClusterStore(dir + "/cluster");
    (void)store->UpdateMounts([&](cluster::MountTable* t) {
      (void)t->Remove("/");
      return t->Add(cluster::MountPoint{"/", "file://" + ufs_dir, {}});
    });
    Config c;
    c.cluster.secret = "bench";
    c.worker.rpc_port = 0;
    c.worker.http_port = 0;
    c.worker.memory_quota = memory_quota;
    c.worker.disks = {{dir + "/cache", 8ull << 30}};
    auto w = worker::Worker::Start(c, store.get(), "bench");
    if (!w.ok()) {
      std::fprintf(stderr, "worker: %s\n", w.status().ToString().c_str());
      std::exit(1);
    }
    worker = std::move(w).value();
    client::ClientOptions o;
    o.worker.port = worker->rpc_port();
    o.worker.secret = "bench";
    fs = std::make_unique<client::FileSystem>(o);
  }

  // Sequential 1 MiB ReadAt over the whole file; MiB/s.
  double ReadThroughClient(const std::string& path) {
    auto file = *fs->Open(path);
    std::string buf(kMiB, '\0');
    auto t0 = Clock::now();
    uint64_t total = 0;
    while (true) {
      auto n = file->ReadAt(total, buf.size(), buf.data());
      if (!n.ok() || *n == 0) break;
      total += *n;
    }
    return static_cast<double>(total) / kMiB / Seconds(t0);
  }
};

double ReadFileDirect(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  std::string buf(kMiB, '\0');
  uint64_t total = 0;
  auto t0 = Clock::now();
  while (true) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(total));
    if (n <= 0) break;
    total += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return static_cast<double>(total) / kMiB / Seconds(t0);
}

double PlainTcpStream(uint64_t bytes) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  ::listen(listener, 1);
  std::thread sender([&] {
    int c = ::accept(listener, nullptr, nullptr);
    std::string block(kMiB, 'x');
    for (uint64_t sent = 0; sent < bytes;) {
      ssize_t n = ::send(c, block.data(), block.size(), 0);
      if (n <= 0) break;
      sent += static_cast<uint64_t>(n);
    }
    ::close(c);
  });
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  std::string buf(kMiB, '\0');
  uint64_t got = 0;
  auto t0 = Clock::now();
  while (got < bytes) {
    ssize_t n = ::recv(s, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    got += static_cast<uint64_t>(n);
  }
  double mibs = static_cast<double>(got) / kMiB / Seconds(t0);
  ::close(s);
  sender.join();
  ::close(listener);
  return mibs;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int RpcVsTcp(const std::string& dir) {
  const uint64_t size = 256 * kMiB;
  WriteRandomFile(dir + "/ufs/f.bin", size);
  Rig rig(dir, dir + "/ufs", 512 * kMiB);
  (void)rig.fs->Read("/f.bin", 0, size, [](std::string_view) { return Status::Ok(); });  // warm the memory tier
  std::vector<double> rpc, tcp, ratios;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    auto n = rig.fs->Read("/f.bin", 0, size, [](std::string_view) { return Status::Ok(); });
    rpc.push_back(static_cast<double>(n.ok() ? *n : 0) / kMiB / Seconds(t0));
    tcp.push_back(PlainTcpStream(size));
    ratios.push_back(rpc.back() / tcp.back());
  }
  double r = Median(rpc), t = Median(tcp);
  std::printf("{\"bench\": \"rpc-vs-tcp\", \"rpc_mib_s\": %.0f, \"tcp_mib_s\": %.0f, \"ratio\": %.2f, \"target\": 0.60}\n",
              r, t, Median(ratios));
  return 0;
}

int WarmDisk(const std::string& dir) {
  const uint64_t size = 256 * kMiB;
  WriteRandomFile(dir + "/ufs/f.bin", size);
  WriteRandomFile(dir + "/cache/direct.bin", size);  // same disk, same bytes count
  Rig rig(dir, dir + "/ufs", 8 * kMiB);               // tiny memory tier: reads come from disk
  auto job = *rig.fs->Load("/f.bin");
  for (std::string state = "queued"; state == "queued" || state == "running"; state = rig.fs->JobStatus(job)->state())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::vector<double> cached, direct, stream, ratios;
  for (int i = 0; i < 5; ++i) {
    DropCaches();
    auto t0 = Clock::now();
    (void)rig.fs->Read("/f.bin", 0, size, [](std::string_view) { return Status::Ok(); });
    stream.push_back(static_cast<double>(size) / kMiB / Seconds(t0));
    DropCaches();
    cached.push_back(rig.ReadThroughClient("/f.bin"));
    DropCaches();
    direct.push_back(ReadFileDirect(dir + "/cache/direct.bin"));
    ratios.push_back(cached.back() / direct.back());
  }
  double c = Median(cached), d = Median(direct);
  std::printf("{\"bench\": \"warm-disk\", \"sluice_mib_s\": %.0f, \"disk_mib_s\": %.0f, \"ratio\": %.2f, "
              "\"sluice_one_stream_mib_s\": %.0f, \"target\": 0.80}\n",
              c, d, Median(ratios), Median(stream));
  return 0;
}

int Restart(const std::string& dir) {
  const uint64_t pages = 100000, page_size = 4096;
  cache::PageStoreOptions o{page_size, 0, {{dir + "/restart-cache", 8ull << 30}}, "lru", 0};
  auto key = [](uint64_t i) { return cache::PageKey{cache::FileId::For("file:///bench", "f" + std::to_string(i / 1000), "v"), i % 1000}; };
  {
    auto store = *cache::PageStore::Open(o);
    cache::PageData data = cache::PageBuffers::Global().Copy(std::string(page_size, 'p'));
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < pages; ++i) store->Put(key(i), data);
    std::fprintf(stderr, "wrote %llu pages in %.1fs\n", static_cast<unsigned long long>(pages), Seconds(t0));
  }
  DropCaches();
  auto t0 = Clock::now();
  auto store = *cache::PageStore::Open(o);
  double open_s = Seconds(t0);
  uint64_t hits = 0;
  for (uint64_t i = 0; i < pages; ++i) hits += store->Get(key(i)) != nullptr;
  double all_s = Seconds(t0);
  std::printf("{\"bench\": \"restart\", \"pages\": %llu, \"reopen_s\": %.2f, \"reopen_and_read_all_s\": %.2f, "
              "\"hits\": %llu, \"target_s\": 5}\n",
              static_cast<unsigned long long>(pages), open_s, all_s, static_cast<unsigned long long>(hits));
  return 0;
}

int ColdReaders(const std::string& dir) {
  const uint64_t size = 64 * kMiB;
  WriteRandomFile(dir + "/ufs/one.bin", size);
  Rig rig(dir, dir + "/ufs", 128 * kMiB);
  std::vector<std::thread> readers;
  auto t0 = Clock::now();
  for (int i = 0; i < 32; ++i) {
    readers.emplace_back([&] { (void)rig.fs->Read("/one.bin", 0, size, [](std::string_view) { return Status::Ok(); }); });
  }
  for (auto& r : readers) r.join();
  double secs = Seconds(t0);
  uint64_t ufs = rig.fs->Report()->mounts(0).ufs_bytes_read();
  std::printf("{\"bench\": \"cold-readers\", \"readers\": 32, \"object_mib\": 64, \"ufs_bytes_ratio\": %.3f, "
              "\"seconds\": %.2f, \"target\": 1.05}\n",
              static_cast<double>(ufs) / static_cast<double>(size), secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cache_bench rpc-vs-tcp|warm-disk|restart|cold-readers SCRATCH_DIR\n");
    return 2;
  }
  std::string mode = argv[1], dir = argv[2];
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  int rc = 2;
  if (mode == "rpc-vs-tcp") rc = RpcVsTcp(dir);
  else if (mode == "warm-disk") rc = WarmDisk(dir);
  else if (mode == "restart") rc = Restart(dir);
  else if (mode == "cold-readers") rc = ColdReaders(dir);
  else std::fprintf(stderr, "unknown benchmark '%s'\n", mode.c_str());
  std::filesystem::remove_all(dir);
  return rc;
}
