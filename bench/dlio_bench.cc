// dlio_bench: reads a dataset directory the way a training job does, and reports what
// MLPerf Storage / DLIO report: accelerator utilization (AU), samples/s and MB/s per epoch,
// with DLIO's key names. Also the micro scenarios of BENCHMARKS.md. Works on any directory
// (local disk, s3fs, rclone, sluice's FUSE mount), so every contender runs the same code.
//   dlio_bench train DIR --accelerators N --batch B --readers R --compute SECONDS --epochs E
//              [--record-size BYTES]   (records of that size inside each file; default: whole files)
//   dlio_bench seq FILE [--jobs J]     sequential 1 MiB reads (J readers split the file)
//   dlio_bench small DIR [--jobs J] [--manifest FILE]
//                                      read every file below DIR: files/s; with a manifest (one
//                                      path relative to DIR per line), those files by name,
//                                      without listing DIR (a loader that knows its file names)
//   dlio_bench lsl DIR                 stat every entry of DIR (ls -l): seconds
//   dlio_bench ttfb DIR [--manifest FILE]
//                                      open + first 4 KiB of each file, one at a time: p50/p99 ms
// Output: one JSON object per line.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Args {
  std::string mode, path;
  int accelerators = 1, batch = 8, readers = 4, epochs = 2, jobs = 1;
  double compute = 0.01;
  uint64_t record_size = 0;
  std::string manifest;
};

std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> out, stack{dir};
  while (!stack.empty()) {
    std::string d = stack.back();
    stack.pop_back();
    DIR* h = ::opendir(d.c_str());
    if (!h) continue;
    while (dirent* e = ::readdir(h)) {
      if (e->d_name[0] == '.') continue;
      std::string p = d + "/" + e->d_name;
      struct stat st;
      if (::stat(p.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) stack.push_back(p);
      else out.push_back(p);
    }
    ::closedir(h);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Reads [offset, offset + length) (length 0: the whole file); returns bytes read.
uint64_t ReadRange(const std::string& path, uint64_t offset, uint64_t length, std::vector<char>& buf) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  uint64_t total = 0;
  if (buf.size() < (1 << 20)) buf.resize(1 << 20);
  while (length == 0 || total < length) {
    size_t want = length ? std::min<uint64_t>(buf.size(), length - total) : buf.size();
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset + total));
    if (n <= 0) break;
    total += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return total;
}

struct Sample {
  std::string file;
  uint64_t offset = 0, length = 0;
};

// One epoch: readers fill a bounded queue in shuffled order; each accelerator takes a batch,
// then "computes" (sleeps). AU = compute time / wall time, the first step excluded.
void TrainEpoch(const Args& a, const std::vector<Sample>& samples, int epoch) {
  std::vector<size_t> order(samples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(1000 + static_cast<uint64_t>(epoch)));
  const size_t depth = static_cast<size_t>(a.batch) * a.accelerators * 2;  // bounded prefetch
  std::mutex mu;
  std::condition_variable cv;
  std::deque<uint64_t> ready;  // bytes of samples read
  size_t next = 0, consumed_slots = 0;
  bool readers_done = false;
  std::atomic<uint64_t> bytes{0};
  auto t0 = Clock::now();
  std::vector<std::thread> readers;
  std::atomic<int> live_readers{a.readers};
  for (int r = 0; r < a.readers; ++r) {
    readers.emplace_back([&] {
      std::vector<char> buf;
      while (true) {
        size_t i;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return ready.size() + consumed_slots < depth || next >= order.size(); });
          if (next >= order.size()) break;
          i = order[next++];
          ++consumed_slots;  // a slot is reserved while the read is in flight
        }
        const Sample& s = samples[i];
        uint64_t n = ReadRange(s.file, s.offset, s.length, buf);
        bytes += n;
        std::lock_guard<std::mutex> lock(mu);
        --consumed_slots;
        ready.push_back(n);
        cv.notify_all();
      }
      if (--live_readers == 0) {
        std::lock_guard<std::mutex> lock(mu);
        readers_done = true;
        cv.notify_all();
      }
    });
  }
  const size_t steps = samples.size() / (static_cast<size_t>(a.batch) * a.accelerators);
  std::vector<double> au(static_cast<size_t>(a.accelerators));
  std::vector<std::thread> accels;
  std::mutex take_mu;
  for (int acc = 0; acc < a.accelerators; ++acc) {
    accels.emplace_back([&, acc] {
      double compute_total = 0;
      Clock::time_point first_step_end;
      for (size_t step = 0; step < steps; ++step) {
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return ready.size() >= static_cast<size_t>(a.batch) || readers_done; });
          for (int b = 0; b < a.batch && !ready.empty(); ++b) ready.pop_front();
          cv.notify_all();
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(a.compute));
        if (step == 0) first_step_end = Clock::now();
        else compute_total += a.compute;
      }
      double wall = std::chrono::duration<double>(Clock::now() - first_step_end).count();
      au[static_cast<size_t>(acc)] = steps > 1 && wall > 0 ? 100.0 * compute_total / wall : 100.0;
    });
  }
  for (auto& t : accels) t.join();
  {
    std::lock_guard<std::mutex> lock(mu);
    next = order.size();  // stop the readers if the steps ran out first
    cv.notify_all();
  }
  for (auto& t : readers) t.join();
  double secs = Since(t0);
  double mean_au = 0;
  for (double v : au) mean_au += v / a.accelerators;
  std::printf("{\"epoch\": %d, \"train_au_percentage\": %.1f, \"train_throughput_samples_per_second\": %.1f, "
              "\"train_io_mean_MB_per_second\": %.1f, \"accelerators\": %d, \"seconds\": %.2f}\n",
              epoch, mean_au, static_cast<double>(samples.size()) / secs,
              static_cast<double>(bytes) / 1e6 / secs, a.accelerators, secs);
  std::fflush(stdout);
}

int Train(const Args& a) {
  std::vector<Sample> samples;
  for (const auto& f : ListFiles(a.path)) {
    struct stat st;
    ::stat(f.c_str(), &st);
    if (a.record_size == 0) {
      samples.push_back({f, 0, 0});
      continue;
    }
    for (uint64_t off = 0; off + a.record_size <= static_cast<uint64_t>(st.st_size); off += a.record_size) {
      samples.push_back({f, off, a.record_size});
    }
  }
  if (samples.empty()) {
    std::fprintf(stderr, "no samples under %s\n", a.path.c_str());
    return 1;
  }
  for (int e = 1; e <= a.epochs; ++e) TrainEpoch(a, samples, e);
  return 0;
}

int Seq(const Args& a) {
  struct stat st;
  if (::stat(a.path.c_str(), &st) != 0) return 1;
  uint64_t size = static_cast<uint64_t>(st.st_size), part = (size + a.jobs - 1) / a.jobs;
  auto t0 = Clock::now();
  std::vector<std::thread> jobs;
  std::atomic<uint64_t> total{0};
  for (int j = 0; j < a.jobs; ++j) {
    jobs.emplace_back([&, j] {
      std::vector<char> buf;
      total += ReadRange(a.path, j * part, std::min(part, size - std::min(size, j * part)), buf);
    });
  }
  for (auto& t : jobs) t.join();
  double secs = Since(t0);
  std::printf("{\"scenario\": \"seq\", \"jobs\": %d, \"mib_per_second\": %.1f, \"bytes\": %llu}\n", a.jobs,
              static_cast<double>(total) / (1 << 20) / secs, static_cast<unsigned long long>(total.load()));
  return 0;
}

// The files a manifest names, below `dir`.
std::vector<std::string> ManifestFiles(const std::string& dir, const std::string& manifest) {
  std::vector<std::string> out;
  FILE* f = std::fopen(manifest.c_str(), "r");
  if (!f) return out;
  char line[4096];
  while (std::fgets(line, sizeof(line), f)) {
    std::string name(line);
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
    if (!name.empty()) out.push_back(dir + "/" + name);
  }
  std::fclose(f);
  return out;
}

int Small(const Args& a) {
  auto files = a.manifest.empty() ? ListFiles(a.path) : ManifestFiles(a.path, a.manifest);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> total{0};
  auto t0 = Clock::now();
  std::vector<std::thread> jobs;
  for (int j = 0; j < a.jobs; ++j) {
    jobs.emplace_back([&] {
      std::vector<char> buf;
      for (size_t i = next++; i < files.size(); i = next++) total += ReadRange(files[i], 0, 0, buf);
    });
  }
  for (auto& t : jobs) t.join();
  double secs = Since(t0);
  std::printf("{\"scenario\": \"small\", \"jobs\": %d, \"files_per_second\": %.1f, \"mib_per_second\": %.1f, "
              "\"files\": %zu}\n",
              a.jobs, static_cast<double>(files.size()) / secs, static_cast<double>(total) / (1 << 20) / secs,
              files.size());
  return 0;
}

int Lsl(const Args& a) {
  auto t0 = Clock::now();
  size_t n = 0;
  DIR* d = ::opendir(a.path.c_str());
  if (!d) return 1;
  while (dirent* e = ::readdir(d)) {
    struct stat st;
    if (e->d_name[0] != '.' && ::stat((a.path + "/" + e->d_name).c_str(), &st) == 0) ++n;
  }
  ::closedir(d);
  std::printf("{\"scenario\": \"lsl\", \"entries\": %zu, \"ms\": %.1f}\n", n, 1000 * Since(t0));
  return 0;
}

int Ttfb(const Args& a) {
  auto files = a.manifest.empty() ? ListFiles(a.path) : ManifestFiles(a.path, a.manifest);
  std::vector<double> ms;
  char buf[4096];
  for (const auto& f : files) {
    auto t0 = Clock::now();
    int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) continue;
    (void)!::read(fd, buf, sizeof(buf));
    ::close(fd);
    ms.push_back(1000 * Since(t0));
  }
  if (ms.empty()) return 1;
  std::sort(ms.begin(), ms.end());
  std::printf("{\"scenario\": \"ttfb\", \"files\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f}\n", ms.size(),
              ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: dlio_bench train|seq|small|lsl|ttfb PATH [options] (see the file header)\n");
    return 2;
  }
  Args a;
  a.mode = argv[1];
  a.path = argv[2];
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--accelerators") a.accelerators = std::stoi(v);
    else if (k == "--batch") a.batch = std::stoi(v);
    else if (k == "--readers") a.readers = std::stoi(v);
    else if (k == "--compute") a.compute = std::stod(v);
    else if (k == "--epochs") a.epochs = std::stoi(v);
    else if (k == "--jobs") a.jobs = std::stoi(v);
    else if (k == "--record-size") a.record_size = std::stoull(v);
    else if (k == "--manifest") a.manifest = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (a.mode == "train") return Train(a);
  if (a.mode == "seq") return Seq(a);
  if (a.mode == "small") return Small(a);
  if (a.mode == "lsl") return Lsl(a);
  if (a.mode == "ttfb") return Ttfb(a);
  std::fprintf(stderr, "unknown mode %s\n", a.mode.c_str());
  return 2;
}
