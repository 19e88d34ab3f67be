// The etcd ClusterStore: etcd v3 through its HTTP/JSON gateway (libcurl, Boost.JSON).
// Keys under /sluice/: `mounts` (the table, YAML, changed by compare-and-swap on its
// mod_revision), `workers/<id>` (a registration, YAML, attached to the worker's lease) and
// `records/<kind>/<id>` (job records). One thread per process watches the whole prefix and
// keeps the members and the table in memory, so requests never wait on etcd and the data
// path keeps its last view while etcd is away. A registered worker's thread renews its lease
// every third of the TTL and registers again under a new lease when the old one expired
// (etcd was away longer than the TTL, or the worker was cut off).
#include <curl/curl.h>
#include <sys/socket.h>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <boost/json/src.hpp>  // Boost.JSON compiled here: Debian ships no libboost_json
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <optional>
#include <mutex>
#include <thread>

#include "cluster/cluster_store.h"
#include "cluster/cluster_yaml.h"
#include "common/logging.h"

namespace sluice::cluster {
namespace {

namespace json = boost::json;
namespace base64 = boost::beast::detail::base64;
using Clock = std::chrono::steady_clock;

std::string Base64(std::string_view in) {
  std::string out(base64::encoded_size(in.size()), '\0');
  out.resize(base64::encode(out.data(), in.data(), in.size()));
  return out;
}

std::string Unbase64(std::string_view in) {
  std::string out(base64::decoded_size(in.size()), '\0');
  out.resize(base64::decode(out.data(), in.data(), in.size()).first);
  return out;
}

// The first key after every key that starts with `prefix` (etcd's range_end for a prefix).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

// etcd's JSON gateway writes 64-bit numbers as strings and leaves out zeros.
int64_t Int(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return 0;
  if (it->value().is_string()) return std::strtoll(it->value().as_string().c_str(), nullptr, 10);
  if (it->value().is_int64()) return it->value().as_int64();
  return 0;
}

std::string Str(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

struct Kv {
  std::string key, value;
  int64_t mod_revision = 0;
};

Kv ParseKv(const json::object& o) { return Kv{Unbase64(Str(o, "key")), Unbase64(Str(o, "value")), Int(o, "mod_revision")}; }

// A minimal client of etcd's v3 JSON gateway over a list of endpoints.
class EtcdHttp {
 public:
  EtcdHttp(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
      : endpoints_(std::move(endpoints)), timeout_(timeout) {}

  std::string Endpoints() const {
    std::string out;
    for (const auto& e : endpoints_) out += (out.empty() ? "" : ",") + e;
    return out;
  }

  // POSTs `body` to `api` ("/v3/kv/range") at the first endpoint that answers.
  Result<json::object> Call(const std::string& api, const json::object& body) {
    Status last;
    const size_t first = preferred_.load();
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      const size_t at = (first + i) % endpoints_.size();
      std::string text;
      Status st = Post(endpoints_[at], api, json::serialize(body),
                       [&text](std::string_view chunk) {
                         text.append(chunk);
                         return text.size() < (64u << 20);  // a sane bound on one answer
                       },
                       timeout_, nullptr);
      if (!st.ok()) {
        last = st;
        continue;
      }
      preferred_ = at;
      boost::system::error_code ec;
      json::value v = json::parse(text, ec);
      if (ec || !v.is_object()) return Internal("etcd at " + endpoints_[at] + " answered " + api + " with: " + text.substr(0, 200));
      if (v.as_object().contains("error") || v.as_object().contains("code")) {
        return Status(StatusCode::kUnavailable, "etcd at " + endpoints_[at] + " refused " + api + ": " + text.substr(0, 300));
      }
      return std::move(v.as_object());
    }
    return last;
  }

  // A streaming POST (watch): `line` gets each newline-terminated message until it returns
  // false, the connection ends, or `*stop` turns true (checked about once a second).
  Status Stream(const std::string& api, const json::object& body, const std::function<bool(std::string_view)>& line,
                const std::atomic<bool>* stop) {
    // Interrupt() ends the stream at once by shutting its socket down.
    const std::string endpoint = endpoints_[preferred_.load() % endpoints_.size()];
    std::string pending;
    Status st = Post(endpoint, api, json::serialize(body),
                     [&](std::string_view chunk) {
                       pending.append(chunk);
                       size_t nl;
                       while ((nl = pending.find('\n')) != std::string::npos) {
                         if (!line(std::string_view(pending).substr(0, nl))) return false;
                         pending.erase(0, nl + 1);
                       }
                       return pending.size() < (64u << 20);
                     },
                     std::chrono::milliseconds(0), stop, /*interruptible=*/true);
    if (!st.ok()) preferred_ = (preferred_.load() + 1) % endpoints_.size();  // try another next time
    return st;
  }

  // Ends a Stream in progress (it returns OK when its `stop` is set).
  void Interrupt() {
    std::lock_guard<std::mutex> lock(stream_mu_);
    if (stream_fd_ >= 0) ::shutdown(stream_fd_, SHUT_RDWR);
  }

 private:
  struct Transfer {
    const std::function<bool(std::string_view)>* sink;
    const std::atomic<bool>* stop;
    EtcdHttp* interruptible;  // records the socket for Interrupt()
  };
  static int OnSocket(void* user, curl_socket_t fd, curlsocktype) {
    auto* t = static_cast<Transfer*>(user);
    std::lock_guard<std::mutex> lock(t->interruptible->stream_mu_);
    t->interruptible->stream_fd_ = fd;
    return CURL_SOCKOPT_OK;
  }
  static size_t OnData(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    return (*t->sink)(std::string_view(data, size * n)) ? size * n : 0;
  }
  static int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(user);
    return t->stop && t->stop->load() ? 1 : 0;
  }

  Status Post(const std::string& endpoint, const std::string& api, const std::string& body,
              const std::function<bool(std::string_view)>& sink, std::chrono::milliseconds timeout,
              const std::atomic<bool>* stop, bool interruptible = false) {
    CURL* curl = curl_easy_init();
    if (!curl) return Internal("cannot start a libcurl handle");
    const std::string url = "http://" + endpoint + api;
    Transfer t{&sink, stop, interruptible ? this : nullptr};
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &EtcdHttp::OnData);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");  // etcd is never behind the environment's proxy
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    if (timeout.count() > 0) curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    if (stop) {
      curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &EtcdHttp::OnProgress);
      curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    }
    if (interruptible) {
      curl_easy_setopt(curl, CURLOPT_SOCKOPTFUNCTION, &EtcdHttp::OnSocket);
      curl_easy_setopt(curl, CURLOPT_SOCKOPTDATA, &t);
    }
    CURLcode rc = curl_easy_perform(curl);
    if (interruptible) {
      std::lock_guard<std::mutex> lock(stream_mu_);
      stream_fd_ = -1;  // before the cleanup closes it
    }
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK && stop && stop->load()) return Status::Ok();
    if (rc != CURLE_OK) {
      return Status(StatusCode::kUnavailable, "cannot reach etcd at " + endpoint + " (" + api + "): " +
                                                  curl_easy_strerror(rc), /*retryable=*/true);
    }
    if (code != 200) return Status(StatusCode::kUnavailable, "etcd at " + endpoint + " answered " + api + " with HTTP " + std::to_string(code));
    return Status::Ok();
  }

  const std::vector<std::string> endpoints_;
  const std::chrono::milliseconds timeout_;
  std::atomic<size_t> preferred_{0};
  std::mutex stream_mu_;
  int stream_fd_ = -1;  // GUARDED_BY(stream_mu_): the socket of the Stream in progress
};

class EtcdClusterStore final : public ClusterStore {
 public:
  EtcdClusterStore(std::vector<std::string> endpoints, std::string prefix, std::chrono::nanoseconds lease_ttl)
      : etcd_(std::move(endpoints), std::chrono::milliseconds(3000)),
        prefix_(std::move(prefix)),
        lease_ttl_s_(std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(lease_ttl).count())) {}

  ~EtcdClusterStore() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    stop_ = true;
    cv_.notify_all();
    if (keepalive_.joinable()) keepalive_.join();
    if (watcher_.joinable()) watcher_.join();
  }

  std::string Describe() const override { return "etcd cluster store etcd://" + etcd_.Endpoints(); }

  // Reaches etcd once, so a wrong address is reported when the store is opened.
  Status Check() { return Refresh(); }

  Result<MountTable> LoadMounts() override {
    EnsureWatching();
    std::unique_lock<std::mutex> lock(mu_);
    if (!live_) {
      lock.unlock();
      Status st = Refresh();
      lock.lock();
      if (!st.ok() && !loaded_) return st;  // with a view already, keep serving it
    }
    return MountTableFromYaml(mounts_text_, "etcd key " + prefix_ + "mounts");
  }

  Status UpdateMounts(const std::function<Status(MountTable*)>& change) override {
    const std::string key = prefix_ + "mounts";
    for (int attempt = 0; attempt < 20; ++attempt) {
      json::object range{{"key", Base64(key)}};
      SLUICE_ASSIGN_OR_RETURN(json::object got, etcd_.Call("/v3/kv/range", range));
      Kv current;
      if (auto* kvs = got.if_contains("kvs"); kvs && kvs->is_array() && !kvs->as_array().empty()) {
        current = ParseKv(kvs->as_array()[0].as_object());
      }
      SLUICE_ASSIGN_OR_RETURN(MountTable table, MountTableFromYaml(current.value, "etcd key " + key));
      SLUICE_RETURN_IF_ERROR(change(&table));
      json::object compare{{"key", Base64(key)}};
      if (current.mod_revision == 0) {
        compare["target"] = "CREATE";
        compare["create_revision"] = "0";
      } else {
        compare["target"] = "MOD";
        compare["mod_revision"] = std::to_string(current.mod_revision);
      }
      json::object put{{"key", Base64(key)}, {"value", Base64(MountTableToYaml(table))}};
      json::object txn{{"compare", json::array{compare}}, {"success", json::array{json::object{{"request_put", put}}}}};
      SLUICE_ASSIGN_OR_RETURN(json::object result, etcd_.Call("/v3/kv/txn", txn));
      if (result.contains("succeeded") && result["succeeded"].is_bool() && result["succeeded"].as_bool()) {
        (void)Refresh();  // this process sees its own change at once
        return Status::Ok();
      }
    }
    return Status(StatusCode::kUnavailable, "the mount table in etcd kept changing under this update; try again");
  }

  std::string MountsVersion() override {
    EnsureWatching();
    std::unique_lock<std::mutex> lock(mu_);
    if (!live_ && Clock::now() - last_refresh_ > std::chrono::seconds(1)) {
      last_refresh_ = Clock::now();
      lock.unlock();
      (void)Refresh();
      lock.lock();
    }
    return std::to_string(mounts_revision_);
  }

  uint64_t Generation() override {
    EnsureWatching();
    std::lock_guard<std::mutex> lock(mu_);
    return generation_;
  }

  Status RegisterWorker(const WorkerInfo& worker) override {
    SLUICE_RETURN_IF_ERROR(PutRegistration(worker));
    std::lock_guard<std::mutex> lock(mu_);
    registered_ = worker;
    if (!keepalive_.joinable()) keepalive_ = std::thread([this] { KeepAlive(); });
    return Status::Ok();
  }

  Status UnregisterWorker(const std::string& id) override {
    int64_t lease = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (registered_ && registered_->id == id) {
        registered_.reset();
        lease = lease_;
        lease_ = 0;
      }
    }
    auto deleted = etcd_.Call("/v3/kv/deleterange", json::object{{"key", Base64(prefix_ + "workers/" + id)}});
    if (lease) (void)etcd_.Call("/v3/lease/revoke", json::object{{"ID", std::to_string(lease)}});
    return deleted.status();
  }

  Result<std::vector<WorkerInfo>> Workers() override {
    EnsureWatching();
    std::unique_lock<std::mutex> lock(mu_);
    if (!live_ && Clock::now() - last_refresh_ > std::chrono::seconds(1)) {
      last_refresh_ = Clock::now();
      lock.unlock();
      Status st = Refresh();
      lock.lock();
      if (!st.ok() && !loaded_) return st;
    }
    std::vector<WorkerInfo> out;
    out.reserve(workers_.size());
    for (const auto& [id, w] : workers_) out.push_back(w);
    return out;
  }

  Status PutRecord(const std::string& kind, const std::string& id, const std::string& text) override {
    return etcd_.Call("/v3/kv/put", json::object{{"key", Base64(RecordKey(kind, id))}, {"value", Base64(text)}}).status();
  }

  Result<std::string> GetRecord(const std::string& kind, const std::string& id) override {
    SLUICE_ASSIGN_OR_RETURN(json::object got, etcd_.Call("/v3/kv/range", json::object{{"key", Base64(RecordKey(kind, id))}}));
    auto* kvs = got.if_contains("kvs");
    if (!kvs || !kvs->is_array() || kvs->as_array().empty()) return NotFound("no " + kind + " " + id + " in etcd");
    return ParseKv(kvs->as_array()[0].as_object()).value;
  }

  Result<std::vector<std::string>> ListRecords(const std::string& kind) override {
    const std::string prefix = prefix_ + "records/" + kind + "/";
    SLUICE_ASSIGN_OR_RETURN(json::object got, etcd_.Call("/v3/kv/range", json::object{{"key", Base64(prefix)},
                                                                                        {"range_end", Base64(PrefixEnd(prefix))}}));
    std::vector<std::string> out;
    if (auto* kvs = got.if_contains("kvs"); kvs && kvs->is_array()) {
      for (const auto& kv : kvs->as_array()) out.push_back(ParseKv(kv.as_object()).value);
    }
    return out;
  }

 private:
  std::string RecordKey(const std::string& kind, const std::string& id) const { return prefix_ + "records/" + kind + "/" + id; }

  Status PutRegistration(const WorkerInfo& worker) {
    SLUICE_ASSIGN_OR_RETURN(json::object grant, etcd_.Call("/v3/lease/grant", json::object{{"TTL", std::to_string(lease_ttl_s_)}}));
    const int64_t lease = Int(grant, "ID");
    if (lease == 0) return Internal("etcd granted no lease");
    json::object put{{"key", Base64(prefix_ + "workers/" + worker.id)}, {"value", Base64(WorkerToYaml(worker))},
                     {"lease", std::to_string(lease)}};
    SLUICE_RETURN_IF_ERROR(etcd_.Call("/v3/kv/put", put).status());
    std::lock_guard<std::mutex> lock(mu_);
    lease_ = lease;
    return Status::Ok();
  }

  // Renews the registered worker's lease every third of its TTL; registers it again when the
  // lease is gone.
  void KeepAlive() {
    const auto period = std::chrono::milliseconds(lease_ttl_s_ * 1000 / 3);
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, period, [this] { return stopping_; });
      if (stopping_ || !registered_) continue;
      const WorkerInfo worker = *registered_;
      const int64_t lease = lease_;
      lock.unlock();
      auto kept = etcd_.Call("/v3/lease/keepalive", json::object{{"ID", std::to_string(lease)}});
      bool expired = false;
      if (kept.ok()) {
        auto* result = kept->if_contains("result");
        expired = !result || !result->is_object() || Int(result->as_object(), "TTL") <= 0;
      }
      Status st = kept.status();
      if (expired) {
        SLUICE_LOG_WARN("worker {}: its etcd lease expired; registering again", worker.id);
        st = PutRegistration(worker);
      }
      if (!st.ok()) {
        static LogLimiter limiter;
        uint64_t held_back = 0;
        if (limiter.Allow(&held_back)) SLUICE_LOG_WARN("worker {}: cannot renew its registration in etcd: {}", worker.id, st.message());
        {
          std::lock_guard<std::mutex> lock(mu_);
          restart_watch_ = true;  // the watch may hang on a dead link: start it afresh
        }
        cv_.notify_all();
      }
      lock.lock();
    }
  }

  // Reads the whole prefix: members and the mount table.
  Status Refresh() {
    json::object range{{"key", Base64(prefix_)}, {"range_end", Base64(PrefixEnd(prefix_))}};
    SLUICE_ASSIGN_OR_RETURN(json::object got, etcd_.Call("/v3/kv/range", range));
    std::map<std::string, WorkerInfo> workers;
    std::string mounts;
    int64_t mounts_revision = 0;
    if (auto* kvs = got.if_contains("kvs"); kvs && kvs->is_array()) {
      for (const auto& v : kvs->as_array()) {
        Kv kv = ParseKv(v.as_object());
        Apply(kv, false, &workers, &mounts, &mounts_revision);
      }
    }
    const int64_t revision = got.contains("header") ? Int(got["header"].as_object(), "revision") : 0;
    std::lock_guard<std::mutex> lock(mu_);
    workers_ = std::move(workers);
    mounts_text_ = std::move(mounts);
    mounts_revision_ = mounts_revision;
    revision_ = std::max(revision_, revision);
    loaded_ = true;
    ++generation_;
    return Status::Ok();
  }

  void Apply(const Kv& kv, bool deleted, std::map<std::string, WorkerInfo>* workers, std::string* mounts,
             int64_t* mounts_revision) {
    const std::string workers_prefix = prefix_ + "workers/";
    if (kv.key == prefix_ + "mounts") {
      *mounts = deleted ? "" : kv.value;
      *mounts_revision = kv.mod_revision;
    } else if (kv.key.compare(0, workers_prefix.size(), workers_prefix) == 0) {
      const std::string id = kv.key.substr(workers_prefix.size());
      if (deleted) {
        workers->erase(id);
      } else if (auto w = WorkerFromYaml(kv.value); w.ok()) {
        (*workers)[id] = std::move(*w);
      }
    }
  }

  void EnsureWatching() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!watcher_.joinable() && !stopping_) watcher_ = std::thread([this] { Watch(); });
  }

  // Keeps the in-memory view current: a full read, then a watch from the revision after it;
  // again after any break (1 s apart while etcd is away).
  void Watch() {
    while (!stop_) {
      Status st = Refresh();
      if (st.ok()) {
        int64_t from;
        {
          std::lock_guard<std::mutex> lock(mu_);
          from = revision_ + 1;
          live_ = true;
        }
        restart_watch_ = false;
        json::object create{{"key", Base64(prefix_)}, {"range_end", Base64(PrefixEnd(prefix_))},
                            {"start_revision", std::to_string(from)}};
        std::atomic<bool> abort{false};
        std::thread guard([this, &abort] {  // ends the stream on stop or on a lease failure
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return stopping_ || restart_watch_ || abort; });
          lock.unlock();
          abort = true;
          etcd_.Interrupt();
        });
        st = etcd_.Stream("/v3/watch", json::object{{"create_request", create}},
                          [this](std::string_view line) { return OnWatchMessage(line); }, &abort);
        {
          std::lock_guard<std::mutex> lock(mu_);
          abort = true;
        }
        cv_.notify_all();
        guard.join();
        std::lock_guard<std::mutex> lock(mu_);
        live_ = false;
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
    }
  }

  bool OnWatchMessage(std::string_view line) {
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) return true;
    auto* result = v.as_object().if_contains("result");
    if (!result || !result->is_object()) return false;  // an error: start over
    const json::object& r = result->as_object();
    if (r.contains("canceled") || r.contains("compact_revision")) return false;
    auto* events = r.if_contains("events");
    if (!events || !events->is_array()) return true;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : events->as_array()) {
      const json::object& event = e.as_object();
      auto* kv = event.if_contains("kv");
      if (!kv || !kv->is_object()) continue;
      Apply(ParseKv(kv->as_object()), Str(event, "type") == "DELETE", &workers_, &mounts_text_, &mounts_revision_);
      revision_ = std::max(revision_, Int(kv->as_object(), "mod_revision"));
    }
    ++generation_;
    return true;
  }

  EtcdHttp etcd_;
  const std::string prefix_;
  const int64_t lease_ttl_s_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> restart_watch_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                       // GUARDED_BY(mu_)
  bool live_ = false;                           // GUARDED_BY(mu_): the watch is running
  bool loaded_ = false;                         // GUARDED_BY(mu_): read at least once
  Clock::time_point last_refresh_{};            // GUARDED_BY(mu_)
  std::map<std::string, WorkerInfo> workers_;   // GUARDED_BY(mu_)
  std::string mounts_text_;                     // GUARDED_BY(mu_)
  int64_t mounts_revision_ = 0;                 // GUARDED_BY(mu_)
  int64_t revision_ = 0;                        // GUARDED_BY(mu_)
  uint64_t generation_ = 0;                     // GUARDED_BY(mu_)
  std::optional<WorkerInfo> registered_;        // GUARDED_BY(mu_)
  int64_t lease_ = 0;                           // GUARDED_BY(mu_)
  std::thread keepalive_, watcher_;
};

}  // namespace

Result<std::unique_ptr<ClusterStore>> OpenEtcdClusterStore(const std::vector<std::string>& endpoints,
                                                          std::chrono::nanoseconds lease_ttl) {
  static const bool curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!curl_ready) return Internal("libcurl failed to initialize");
  if (endpoints.empty()) return InvalidArgument("no etcd endpoints given (etcd://HOST:PORT[,HOST:PORT])");
  auto store = std::make_unique<EtcdClusterStore>(endpoints, "/sluice/", lease_ttl);
  Status st = store->Check();
  if (!st.ok()) return st.WithContext("cluster store " + store->Describe());
  return std::unique_ptr<ClusterStore>(std::move(store));
}

}  // namespace sluice::cluster
