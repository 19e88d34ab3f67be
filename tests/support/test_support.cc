// Implementation of the integration-test helpers.
#include "support/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "ufs/http_client.h"

extern char** environ;

namespace sluice::testing {
namespace {

std::string TempRoot() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

std::mt19937_64& Rng() {
  static std::mt19937_64 rng{std::random_device{}() ^ static_cast<uint64_t>(::getpid())};
  return rng;
}

}  // namespace

TempDir::TempDir() {
  std::string tmpl = TempRoot() + "/sluice-test-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  path_ = p ? p : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

Result<std::unique_ptr<Subprocess>> Subprocess::Start(const std::vector<std::string>& argv,
                                                      const std::map<std::string, std::string>& env,
                                                      const std::string& log_file) {
  // Everything the child needs is prepared here: between fork and exec a multi-threaded
  // process may only make async-signal-safe calls (no malloc, no setenv, no PATH search).
  std::string program = argv.at(0);
  if (program.find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (size_t start = 0; start <= dirs.size();) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string candidate = dirs.substr(start, end - start) + "/" + argv[0];
      if (::access(candidate.c_str(), X_OK) == 0) {
        program = candidate;
        break;
      }
      start = end + 1;
    }
  }
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    if (!env.count(entry.substr(0, entry.find('=')))) env_storage.push_back(entry);
  }
  for (const auto& [k, v] : env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_storage = argv;
  for (auto& a : arg_storage) args.push_back(a.data());
  args.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return IoError("fork failed");
  if (pid == 0) {
    if (!log_file.empty()) {
      int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
    }
    ::execve(program.c_str(), args.data(), envp.data());
    ::_exit(127);
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid));
}

Subprocess::~Subprocess() {
  if (!reaped_) Stop(SIGKILL);
}

int Subprocess::Stop(int signal) {
  if (reaped_) return 0;
  ::kill(pid_, signal);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  reaped_ = true;
  return status;
}

bool Subprocess::WaitExit(std::chrono::milliseconds timeout, int* wait_status) {
  int status = 0;
  bool done = WaitFor([&] { return reaped_ || ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
  if (done && !reaped_) {
    reaped_ = true;
    if (wait_status) *wait_status = status;
  }
  return done;
}

int RunCommand(const std::vector<std::string>& argv, std::string* output, const std::map<std::string, std::string>& env) {
  TempDir dir;
  std::string log = dir.path() + "/out";
  auto proc = Subprocess::Start(argv, env, log);
  if (!proc.ok()) return -1;
  int status = 0;
  ::waitpid((*proc)->pid(), &status, 0);
  (*proc)->WaitExit(std::chrono::milliseconds(0));  // marks it reaped
  if (output) *output = ReadFile(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string TestBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool IsMounted(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + dir + " ") != std::string::npos) return true;
  }
  return false;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

void RewriteInPlaceKeepingMtime(const std::string& path, const std::string& data) {
  struct stat before;
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  ASSERT_EQ(static_cast<size_t>(before.st_size), data.size());
  // The kernel stamps ctime from a coarse clock: wait until it has moved past the old ctime.
  ASSERT_TRUE(WaitFor([&] {
    struct timespec now;
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    return now.tv_sec > before.st_ctim.tv_sec ||
           (now.tv_sec == before.st_ctim.tv_sec && now.tv_nsec > before.st_ctim.tv_nsec);
  }, std::chrono::seconds(5)));
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(::close(fd), 0);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  struct stat after;
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  ASSERT_EQ(after.st_ino, before.st_ino);
  ASSERT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  ASSERT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  ASSERT_NE(after.st_ctim.tv_sec * 1000000000LL + after.st_ctim.tv_nsec,
            before.st_ctim.tv_sec * 1000000000LL + before.st_ctim.tv_nsec);
}

Result<std::unique_ptr<RgwServer>> RgwServer::Start(const std::vector<std::string>& buckets) {
  std::unique_ptr<RgwServer> server(new RgwServer());
  server->parent_ = std::make_unique<TempDir>();
  std::string last_output;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // S3 port in [20000, 40000), mon port +10000: clear of the OSD's 6800-7300.
    int port = 20000 + static_cast<int>(Rng()() % 20000);
    server->dir_ = server->parent_->path() + "/rgw" + std::to_string(attempt);
    std::vector<std::string> argv{"bash", SLUICE_FIXTURES_DIR "/radosgw.sh", "start", server->dir_, std::to_string(port)};
    for (const auto& b : buckets) argv.push_back(b);
    int rc = RunCommand(argv, &last_output, {{"WATCH_PID", std::to_string(::getpid())}});
    if (rc == 0) {
      server->endpoint_ = "http://127.0.0.1:" + std::to_string(port);
      std::string env = ReadFile(server->dir_ + "/s3.env");
      auto value = [&env](const std::string& name) {
        size_t p = env.find(name + "=");
        if (p == std::string::npos) return std::string();
        size_t end = env.find('\n', p);
        return env.substr(p + name.size() + 1, end - p - name.size() - 1);
      };
      server->access_key_ = value("AWS_ACCESS_KEY_ID");
      server->secret_key_ = value("AWS_SECRET_ACCESS_KEY");
      return server;
    }
    std::string ignored;
    RunCommand({"bash", SLUICE_FIXTURES_DIR "/radosgw.sh", "stop", server->dir_}, &ignored);
  }
  return Status(StatusCode::kUnavailable, "could not start radosgw: " + last_output);
}

RgwServer::~RgwServer() {
  std::string ignored;
  if (!dir_.empty()) RunCommand({"bash", SLUICE_FIXTURES_DIR "/radosgw.sh", "stop", dir_}, &ignored);
}

namespace {
RgwServer* g_rgw = nullptr;
}  // namespace

void RgwEnvironment::SetUp() {
  auto rgw = RgwServer::Start(buckets_);
  ASSERT_TRUE(rgw.ok()) << rgw.status().ToString();
  server_ = std::move(rgw).value();
  g_rgw = server_.get();
}

void RgwEnvironment::TearDown() {
  g_rgw = nullptr;
  server_.reset();
}

RgwServer* RgwEnvironment::server() { return g_rgw; }

Result<std::unique_ptr<FaultyHttpServer>> FaultyHttpServer::Serve(const std::string& root_dir, bool etags) {
  if (!etags) return Launch({"serve", root_dir, "--no-etag"});
  return Launch({"serve", root_dir});
}

Result<std::unique_ptr<FaultyHttpServer>> FaultyHttpServer::ServeTls(const std::string& root_dir) {
  auto dir = std::make_unique<TempDir>();
  std::string cert = dir->path() + "/cert.pem", key = dir->path() + "/key.pem", out;
  int rc = RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                       "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                      &out);
  if (rc != 0) return Internal("openssl could not make a certificate: " + out);
  auto server = Launch({"serve", root_dir, "--tls-cert", cert, "--tls-key", key}, std::move(dir));
  if (server.ok()) (*server)->tls_ = true;
  return server;
}

Result<std::unique_ptr<FaultyHttpServer>> FaultyHttpServer::Launch(const std::vector<std::string>& args,
                                                                  std::unique_ptr<TempDir> dir) {
  std::unique_ptr<FaultyHttpServer> s(new FaultyHttpServer());
  s->dir_ = dir ? std::move(dir) : std::make_unique<TempDir>();
  std::string port_file = s->dir_->path() + "/port";
  std::vector<std::string> argv{SLUICE_PYTHON, SLUICE_FIXTURES_DIR "/http_server.py"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--port-file", port_file});
  auto proc = Subprocess::Start(argv, {}, s->dir_->path() + "/log");
  if (!proc.ok()) return proc.status();
  s->process_ = std::move(proc).value();
  if (!WaitFor([&] { return std::filesystem::exists(port_file); }, std::chrono::seconds(20))) {
    return Status(StatusCode::kUnavailable, "http_server.py did not start: " + ReadFile(s->dir_->path() + "/log"));
  }
  s->port_ = std::atoi(ReadFile(port_file).c_str());
  return s;
}

namespace {

Result<std::string> Control(const std::string& url, const std::string& method, const std::string& body) {
  ufs::HttpClient client(ufs::HttpClientOptions{});
  ufs::HttpRequest req;
  req.method = method;
  req.url = url;
  req.body = body;
  ufs::HttpResponse r;
  SLUICE_RETURN_IF_ERROR(client.Send(req, &r));
  if (r.status != 200) return Internal("control request " + url + " failed: HTTP " + std::to_string(r.status));
  return r.body;
}

}  // namespace

Status FaultyHttpServer::SetFaults(const std::string& plan) {
  auto r = Control(url() + "/__fault__/plan", "POST", plan);
  return r.ok() ? Status::Ok() : r.status();
}

Result<int> FaultyHttpServer::RequestCount() {
  SLUICE_ASSIGN_OR_RETURN(std::string body, Control(url() + "/__fault__/stats", "GET", ""));
  size_t p = body.find("\"requests\":");
  if (p == std::string::npos) return Internal("bad stats: " + body);
  return std::atoi(body.c_str() + p + 11);
}

Status FaultyHttpServer::ResetStats() {
  auto r = Control(url() + "/__fault__/reset-stats", "POST", "");
  return r.ok() ? Status::Ok() : r.status();
}

Result<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::string& upstream_url) {
  std::unique_ptr<FaultProxy> p(new FaultProxy());
  p->dir_ = std::make_unique<TempDir>();
  std::string port_file = p->dir_->path() + "/port";
  auto proc = Subprocess::Start({SLUICE_FAULT_PROXY, upstream_url, "--port-file", port_file}, {},
                                p->dir_->path() + "/log");
  if (!proc.ok()) return proc.status();
  p->process_ = std::move(proc).value();
  if (!WaitFor([&] { return std::filesystem::exists(port_file); }, std::chrono::seconds(20))) {
    return Status(StatusCode::kUnavailable, "fault_proxy did not start: " + ReadFile(p->dir_->path() + "/log"));
  }
  p->port_ = std::atoi(ReadFile(port_file).c_str());
  return p;
}

Result<std::string> FaultProxy::Control(const std::string& request) {
  return sluice::testing::Control(url() + "/__proxy__/" + request, "GET", "");
}

Status FaultProxy::Set(const std::string& settings) { return Control("set?" + settings).status(); }

Status FaultProxy::SetFaults(const std::string& plan) {
  std::string commas = plan;
  std::replace(commas.begin(), commas.end(), ' ', ',');
  return Set("plan=" + commas);
}

Result<std::map<std::string, uint64_t>> FaultProxy::Stats() {
  SLUICE_ASSIGN_OR_RETURN(std::string body, Control("stats"));
  std::map<std::string, uint64_t> out;
  std::istringstream lines(body);
  std::string key;
  uint64_t value = 0;
  while (lines >> key >> value) out[key] = value;
  return out;
}

Result<int> FaultProxy::RequestCount() {
  SLUICE_ASSIGN_OR_RETURN(auto stats, Stats());
  return static_cast<int>(stats["requests"]);
}

Status FaultProxy::ResetStats() { return Control("reset-stats").status(); }

}  // namespace sluice::testing
