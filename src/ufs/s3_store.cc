// s3:// under-store: any S3-compatible object store over HTTP(S) with SigV4. HEAD for stat,
// ranged GET for reads (resumed after a failure, pinned to one ETag with If-Match),
// ListObjectsV2 with continuation, PUT or multipart upload for writes, DELETE.
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "common/logging.h"
#include "ufs/aws_credentials.h"
#include "ufs/http_client.h"
#include "ufs/ranged_read.h"
#include "ufs/retry.h"
#include "ufs/sigv4.h"
#include "ufs/stores.h"
#include "ufs/xml.h"

namespace sluice::ufs {
namespace {

const char* const kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const char* const kKnownOptions[] = {"endpoint", "region", "path_style", "access_key",
                                     "secret_key", "session_token", "ca_bundle"};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Where and how to reach the bucket.
struct S3Settings {
  std::string scheme;    // "http" or "https"
  std::string host;      // "127.0.0.1:7480" or "s3.us-east-1.amazonaws.com"
  std::string region;
  bool path_style = true;
  std::shared_ptr<AwsCredentialSource> creds;  // what it yields empty: anonymous, unsigned requests
};

struct Query {
  std::vector<std::pair<std::string, std::string>> params;
};

class S3Store final : public VersionPinnedStore {
 public:
  S3Store(std::string bucket, std::string prefix, S3Settings settings, const UnderStoreOptions& options,
          HttpClientOptions http_options)
      : bucket_(std::move(bucket)),
        prefix_(std::move(prefix)),
        settings_(std::move(settings)),
        retry_{options.max_attempts, options.retry_base_delay, options.retry_max_delay},
        multipart_threshold_(options.multipart_threshold),
        part_size_(options.multipart_part_size),
        http_(std::move(http_options)) {}

  std::string Uri() const override { return "s3://" + bucket_ + (prefix_.empty() ? "" : "/" + prefix_); }

  Result<ObjectInfo> Stat(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string rel, NormalizeKey(path));
    if (rel.empty() && prefix_.empty()) {
      SLUICE_ASSIGN_OR_RETURN(HttpResponse r, CallRetried("HEAD", "", {}, {}, {}));
      if (r.status != 200) return HeadError(r, "", Describe(rel));
      ObjectInfo root;
      root.is_dir = true;
      return root;
    }
    std::string key = FullKey(rel);
    if (!rel.empty()) {
      SLUICE_ASSIGN_OR_RETURN(HttpResponse r, CallRetried("HEAD", key, {}, {}, {}));
      if (r.status == 200) {
        ObjectInfo info = InfoFromResponse(r);
        info.path = rel;
        return info;
      }
      if (r.status != 404) return HeadError(r, key, Describe(rel));
    }
    return StatNotAnObject(rel);
  }

  // Not an object: a directory when some key lies below it.
  Result<ObjectInfo> StatNotAnObject(const std::string& rel) override {
    std::string key = FullKey(rel);
    Query q{{{"list-type", "2"}, {"prefix", key + "/"}, {"max-keys", "1"}}};
    SLUICE_ASSIGN_OR_RETURN(HttpResponse r, CallRetried("GET", "", q, {}, {}));
    if (r.status != 200) return ErrorFor(r, "LIST", Describe(rel));
    SLUICE_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(r.body));
    if (doc.Children("Contents").empty() && doc.Children("CommonPrefixes").empty()) {
      return NotFound(Describe(rel) + ": no such object or directory");
    }
    ObjectInfo dir;
    dir.path = rel;
    dir.is_dir = true;
    return dir;
  }

  Result<ListPage> List(std::string_view dir, const ListOptions& options) override {
    SLUICE_ASSIGN_OR_RETURN(std::string rel, NormalizeKey(dir));
    std::string key = FullKey(rel);
    std::string list_prefix = key.empty() ? "" : key + "/";
    Query q{{{"list-type", "2"},
             {"prefix", list_prefix},
             {"max-keys", std::to_string(std::clamp<size_t>(options.max_keys, 1, 1000))}}};
    if (!options.recursive) q.params.emplace_back("delimiter", "/");
    if (!options.continuation.empty()) q.params.emplace_back("continuation-token", options.continuation);
    SLUICE_ASSIGN_OR_RETURN(HttpResponse r, CallRetried("GET", "", q, {}, {}));
    if (r.status != 200) return ErrorFor(r, "LIST", Describe(rel));
    auto doc = ParseXml(r.body);
    if (!doc.ok()) return doc.status().WithContext("LIST " + Describe(rel) + ": bad response");

    ListPage page;
    bool marker = false;
    const size_t strip = prefix_.empty() ? 0 : prefix_.size() + 1;  // keys are returned relative to the root
    for (const XmlElement* c : doc->Children("Contents")) {
      std::string k = c->ChildText("Key");
      if (k == list_prefix) {
        marker = true;  // the directory's own "dir/" marker object
        continue;
      }
      ObjectInfo info;
      bool is_marker = !k.empty() && k.back() == '/';
      info.path = k.substr(std::min(strip, k.size()));
      if (is_marker) {
        info.path.pop_back();
        info.is_dir = true;
        if (options.recursive) continue;  // recursive listings hold files only
      } else {
        info.size = std::strtoull(c->ChildText("Size").c_str(), nullptr, 10);
        info.etag = UnquoteEtag(c->ChildText("ETag"));
        info.mtime_ns = ParseIso8601(c->ChildText("LastModified"));
      }
      page.entries.push_back(std::move(info));
    }
    for (const XmlElement* p : doc->Children("CommonPrefixes")) {
      std::string k = p->ChildText("Prefix");
      if (k.size() <= strip) continue;
      ObjectInfo info;
      info.path = k.substr(strip);
      if (!info.path.empty() && info.path.back() == '/') info.path.pop_back();
      info.is_dir = true;
      page.entries.push_back(std::move(info));
    }
    std::sort(page.entries.begin(), page.entries.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.path < b.path; });
    if (doc->ChildText("IsTruncated") == "true") page.next_token = doc->ChildText("NextContinuationToken");
    if (page.entries.empty() && options.continuation.empty() && !rel.empty() && !marker && page.next_token.empty()) {
      return NotFound(Describe(rel) + ": no such directory");
    }
    return page;
  }

  Status Write(std::string_view path, std::string_view data) override {
    SLUICE_ASSIGN_OR_RETURN(std::string rel, NormalizeKey(path));
    if (rel.empty()) return InvalidArgument("cannot write an object at the root of " + Uri());
    if (data.size() >= multipart_threshold_) return WriteMultipart(rel, data);
    return RunWithRetries(retry_, [&]() -> Status {
      SLUICE_ASSIGN_OR_RETURN(HttpResponse r, Call("PUT", FullKey(rel), {}, {}, data));
      if (r.status != 200) return ErrorFor(r, "PUT", Describe(rel));
      return Status::Ok();
    });
  }

  Status Delete(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string rel, NormalizeKey(path));
    if (rel.empty()) return InvalidArgument("cannot delete the root of " + Uri());
    // S3 answers 204 whether or not the key existed; look first so a missing key is reported.
    std::string key = FullKey(rel);
    SLUICE_ASSIGN_OR_RETURN(HttpResponse head, CallRetried("HEAD", key, {}, {}, {}));
    if (head.status == 404) {  // a directory: its "dir/" marker, when it has one
      key += "/";
      SLUICE_ASSIGN_OR_RETURN(head, CallRetried("HEAD", key, {}, {}, {}));
    }
    if (head.status == 404) return NotFound(Describe(rel) + ": no such object");
    if (head.status != 200) return HeadError(head, key, Describe(rel));
    SLUICE_ASSIGN_OR_RETURN(HttpResponse r, CallRetried("DELETE", key, {}, {}, {}));
    if (r.status != 204 && r.status != 200) return ErrorFor(r, "DELETE", Describe(rel));
    return Status::Ok();
  }

  Status Mkdir(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string rel, NormalizeKey(path));
    if (rel.empty()) return Status::Ok();
    SLUICE_ASSIGN_OR_RETURN(HttpResponse r, CallRetried("PUT", FullKey(rel) + "/", {}, {}, {}));
    if (r.status != 200) return ErrorFor(r, "PUT", Describe(rel) + "/");
    return Status::Ok();
  }

 private:
  std::string FullKey(const std::string& rel) const {
    if (prefix_.empty()) return rel;
    return rel.empty() ? prefix_ : prefix_ + "/" + rel;
  }

  std::string Describe(const std::string& rel) const {
    std::string key = FullKey(rel);
    return "s3://" + bucket_ + (key.empty() ? "" : "/" + key);
  }

  Result<uint64_t> ReadPinned(std::string_view path, uint64_t offset, uint64_t length, const std::string& version,
                              const ByteSink& sink, ObjectInfo* seen) override {
    SLUICE_ASSIGN_OR_RETURN(std::string rel, NormalizeKey(path));
    const std::string key = FullKey(rel);
    RangedReadHooks hooks;
    hooks.send = [&](const HeaderList& extra, HttpResponse* response, const ByteSink* body_sink) {
      return Send(response, "GET", key, {}, extra, {}, body_sink);
    };
    hooks.error = [&](const HttpResponse& response) { return ErrorFor(response, "GET", Describe(rel)); };
    return RangedRead(retry_, hooks, Describe(rel), offset, length, sink, version, seen);
  }

  // Sends one signed request for `key` ("" addresses the bucket). No retries.
  Result<HttpResponse> Call(const std::string& method, const std::string& key, const Query& query,
                            const std::vector<std::pair<std::string, std::string>>& extra_headers,
                            std::string_view body) {
    HttpResponse response;
    SLUICE_RETURN_IF_ERROR(Send(&response, method, key, query, extra_headers, body, nullptr));
    return response;
  }

  // Call() with the retry policy applied to transport errors and retryable status codes.
  Result<HttpResponse> CallRetried(const std::string& method, const std::string& key, const Query& query,
                                   const std::vector<std::pair<std::string, std::string>>& extra_headers,
                                   std::string_view body) {
    HttpResponse out;
    Status st = RunWithRetries(retry_, [&]() -> Status {
      SLUICE_ASSIGN_OR_RETURN(out, Call(method, key, query, extra_headers, body));
      if (out.status >= 500) return ErrorFor(out, method, "s3://" + bucket_ + "/" + key);
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return out;
  }

  // Signs and sends one request, filling `response`; the body of a 2xx goes to `sink` if set.
  Status Send(HttpResponse* response, const std::string& method, const std::string& key, const Query& query,
                  const std::vector<std::pair<std::string, std::string>>& extra_headers, std::string_view body,
                  const ByteSink* sink) {
    std::string path = settings_.path_style ? "/" + bucket_ + (key.empty() ? "/" : "/" + key) : "/" + key;
    std::string host = settings_.path_style ? settings_.host : bucket_ + "." + settings_.host;

    HttpRequest req;
    req.method = method;
    req.body = body;
    req.url = settings_.scheme + "://" + host + UriEncode(path, true);
    std::string query_string;
    for (const auto& [k, v] : query.params) {
      query_string += (query_string.empty() ? "?" : "&") + UriEncode(k, false) + "=" + UriEncode(v, false);
    }
    req.url += query_string;
    req.headers = extra_headers;

    SLUICE_ASSIGN_OR_RETURN(AwsCredentials creds, settings_.creds->Get());
    if (!creds.empty()) {
      std::string payload_hash = body.empty() ? kEmptySha256 : Sha256Hex(body);
      std::string amz_date = AmzDate(std::chrono::system_clock::now());
      SigV4Request to_sign;
      to_sign.method = method;
      to_sign.path = path;
      to_sign.query = query.params;
      to_sign.payload_hash = payload_hash;
      to_sign.headers = {{"host", host}, {"x-amz-content-sha256", payload_hash}, {"x-amz-date", amz_date}};
      if (!creds.session_token.empty()) {
        to_sign.headers.emplace_back("x-amz-security-token", creds.session_token);
      }
      SigV4Signature sig = SignV4(to_sign, creds, settings_.region, "s3", amz_date);
      for (const auto& h : to_sign.headers) req.headers.push_back(h);
      req.headers.emplace_back("Authorization", sig.authorization);
    }
    return http_.Send(req, response, sink);
  }

  // A HEAD response has no body, so no S3 error code to tell a bad secret from a missing
  // permission: repeat the request as a one-byte GET (on errors only) to read the code.
  Status HeadError(const HttpResponse& head, const std::string& key, const std::string& what) {
    if (head.status == 404 && key.empty()) {
      return NotFound("bucket '" + bucket_ + "' does not exist: HEAD " + what + ": HTTP 404");
    }
    if (head.status != 403 && head.status != 400) return ErrorFor(head, "HEAD", what);
    auto get = key.empty() ? Call("GET", "", Query{{{"list-type", "2"}, {"max-keys", "1"}}}, {}, {})
                           : Call("GET", key, {}, {{"Range", "bytes=0-0"}}, {});
    if (!get.ok() || get->status < 300) return ErrorFor(head, "HEAD", what);
    return ErrorFor(*get, "HEAD", what);
  }

  // Turns a non-success response into a Status that names the object and the S3 error code.
  Status ErrorFor(const HttpResponse& r, const std::string& method, const std::string& what) const {
    std::string code, message;
    if (!r.body.empty()) {
      auto doc = ParseXml(r.body);
      if (doc.ok()) {
        code = doc->ChildText("Code");
        message = doc->ChildText("Message");
      }
    }
    std::string detail = method + " " + what + ": HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code) +
                         (message.empty() ? "" : " (" + message + ")");
    if (r.status == 404) {
      if (code == "NoSuchBucket") return NotFound("bucket '" + bucket_ + "' does not exist: " + detail);
      return NotFound(what + ": no such object (" + detail + ")");
    }
    if (r.status == 403 || r.status == 401) {
      if (code == "SignatureDoesNotMatch") {
        return Status(StatusCode::kPermissionDenied,
                      "authentication failed, the secret key does not match the access key: " + detail);
      }
      if (code == "InvalidAccessKeyId") {
        auto creds = settings_.creds->Get();
        return Status(StatusCode::kPermissionDenied, "authentication failed, unknown access key '" +
                                                         (creds.ok() ? creds->access_key : "") + "' (from the " +
                                                         settings_.creds->Describe() + "): " + detail);
      }
      auto creds = settings_.creds->Get();
      if (creds.ok() && creds->empty()) {  // sent unsigned
        return Status(StatusCode::kPermissionDenied, "access denied to an anonymous request (" +
                                                         settings_.creds->Describe() + "): " + detail);
      }
      return Status(StatusCode::kPermissionDenied, "access denied: " + detail);
    }
    if (r.status == 503 && code == "SlowDown") {
      return Status(StatusCode::kResourceExhausted, "the store asks to slow down: " + detail, /*retryable=*/true);
    }
    if (r.status >= 500) return Status(StatusCode::kUnavailable, "server error: " + detail, /*retryable=*/true);
    if (r.status == 301 || r.status == 307 || code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed") {
      return InvalidArgument("wrong endpoint or region for bucket '" + bucket_ + "' (region " + settings_.region +
                             "): " + detail);
    }
    if (r.status == 416) return Status(StatusCode::kOutOfRange, detail);
    return InvalidArgument(detail);
  }

  // A multipart upload, started only once a second part comes: a file of one part is one PUT.
  class S3Upload final : public Upload {
   public:
    S3Upload(S3Store* s3, std::string rel) : s3_(s3), rel_(std::move(rel)), key_(s3->FullKey(rel_)) {}
    ~S3Upload() override {
      if (finished_ || upload_id_.empty()) return;
      auto aborted = s3_->Call("DELETE", key_, Query{{{"uploadId", upload_id_}}}, {}, {});
      if (!aborted.ok() || (aborted->status != 204 && aborted->status != 200)) {
        SLUICE_LOG_WARN("could not abort multipart upload {} of {}", upload_id_, s3_->Describe(rel_));
      }
    }

    Status PutPart(uint64_t index, std::string_view data) override {
      std::string first;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (upload_id_.empty()) {
          if (index == 0) {
            first_part_.assign(data);
            have_first_ = true;
            return Status::Ok();
          }
          SLUICE_ASSIGN_OR_RETURN(HttpResponse r, s3_->CallRetried("POST", key_, Query{{{"uploads", ""}}}, {}, {}));
          if (r.status != 200) return s3_->ErrorFor(r, "CreateMultipartUpload", s3_->Describe(rel_));
          SLUICE_ASSIGN_OR_RETURN(XmlElement created, ParseXml(r.body));
          upload_id_ = created.ChildText("UploadId");
          if (upload_id_.empty()) {
            return Corruption("CreateMultipartUpload " + s3_->Describe(rel_) + ": no UploadId in the response");
          }
          if (have_first_) first.swap(first_part_);
        }
      }
      if (!first.empty()) SLUICE_RETURN_IF_ERROR(UploadPart(0, first));
      return UploadPart(index, data);
    }

    Result<std::string> Finish(uint64_t parts) override {
      std::lock_guard<std::mutex> lock(mu_);
      if (upload_id_.empty()) {  // one part or none: a plain PUT
        std::string_view body = parts && have_first_ ? std::string_view(first_part_) : std::string_view();
        HttpResponse r;
        SLUICE_RETURN_IF_ERROR(RunWithRetries(s3_->retry_, [&]() -> Status {
          SLUICE_ASSIGN_OR_RETURN(r, s3_->Call("PUT", key_, {}, {}, body));
          if (r.status != 200) return s3_->ErrorFor(r, "PUT", s3_->Describe(rel_));
          return Status::Ok();
        }));
        finished_ = true;
        return Unquote(r.Header("etag"));
      }
      std::string xml = "<CompleteMultipartUpload>";
      for (uint64_t i = 0; i < parts; ++i) {
        auto it = etags_.find(i);
        if (it == etags_.end()) return Internal("part " + std::to_string(i + 1) + " of " + s3_->Describe(rel_) + " was never uploaded");
        xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + XmlEscape(it->second) +
               "</ETag></Part>";
      }
      xml += "</CompleteMultipartUpload>";
      SLUICE_ASSIGN_OR_RETURN(HttpResponse done, s3_->CallRetried("POST", key_, Query{{{"uploadId", upload_id_}}},
                                                                {{"Content-Type", "application/xml"}}, xml));
      if (done.status != 200 || done.body.find("<Error>") != std::string::npos) {
        // CompleteMultipartUpload may answer 200 and put the error in the body.
        if (done.status == 200) done.status = 500;
        return s3_->ErrorFor(done, "CompleteMultipartUpload", s3_->Describe(rel_));
      }
      finished_ = true;
      auto result = ParseXml(done.body);
      std::string etag = result.ok() ? Unquote(result->ChildText("ETag")) : std::string();
      if (etag.empty()) etag = Unquote(done.Header("etag"));
      // Some stores (RGW) leave the result's ETag empty: S3's rule for multipart ETags gives it.
      return etag.empty() ? MultipartEtag(parts) : etag;
    }

   private:
    // MD5 of the parts' binary MD5s, then "-" and the number of parts. REQUIRES(mu_)
    std::string MultipartEtag(uint64_t parts) const {
      std::string digests;
      for (uint64_t i = 0; i < parts; ++i) {
        const std::string hex = Unquote(etags_.at(i));
        if (hex.size() != 32 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return "";
        for (size_t at = 0; at + 1 < hex.size(); at += 2) {
          digests += static_cast<char>(std::stoi(hex.substr(at, 2), nullptr, 16));
        }
      }
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      if (EVP_Digest(digests.data(), digests.size(), md, &len, EVP_md5(), nullptr) != 1) return "";
      static const char kHex[] = "0123456789abcdef";
      std::string out;
      for (unsigned int i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 15];
      }
      return out + "-" + std::to_string(parts);
    }
    static std::string Unquote(std::string etag) {
      if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
      return etag;
    }
    Status UploadPart(uint64_t index, std::string_view data) {
      std::string upload_id;
      {
        std::lock_guard<std::mutex> lock(mu_);
        upload_id = upload_id_;
      }
      Query q{{{"partNumber", std::to_string(index + 1)}, {"uploadId", upload_id}}};
      return RunWithRetries(s3_->retry_, [&]() -> Status {
        SLUICE_ASSIGN_OR_RETURN(HttpResponse r, s3_->Call("PUT", key_, q, {}, data));
        if (r.status != 200) return s3_->ErrorFor(r, "UploadPart", s3_->Describe(rel_));
        std::lock_guard<std::mutex> lock(mu_);
        etags_[index] = r.Header("etag");
        return Status::Ok();
      });
    }

    S3Store* const s3_;
    const std::string rel_, key_;
    std::mutex mu_;
    std::string upload_id_;                    // GUARDED_BY(mu_): "" until a second part came
    std::string first_part_;                   // GUARDED_BY(mu_): part 0, held until then
    bool have_first_ = false;                  // GUARDED_BY(mu_)
    std::map<uint64_t, std::string> etags_;    // GUARDED_BY(mu_): of the parts uploaded
    bool finished_ = false;                    // GUARDED_BY(mu_)
  };

 public:
  // Parts are numbered, not placed: S3 wants each but the last to be at least 5 MiB.
  Result<std::unique_ptr<Upload>> StartUpload(std::string_view path, uint64_t) override {
    SLUICE_ASSIGN_OR_RETURN(std::string rel, NormalizeKey(path));
    if (rel.empty()) return InvalidArgument("cannot write an object at the root of " + Uri());
    return std::unique_ptr<Upload>(std::make_unique<S3Upload>(this, rel));
  }

  Status Rename(std::string_view from, std::string_view to) override {
    SLUICE_ASSIGN_OR_RETURN(std::string src, NormalizeKey(from));
    SLUICE_ASSIGN_OR_RETURN(std::string dst, NormalizeKey(to));
    if (src.empty() || dst.empty()) return InvalidArgument("cannot rename the root of " + Uri());
    // CopyObject (objects up to 5 GiB), then DELETE of the source.
    const std::string source = UriEncode("/" + bucket_ + "/" + FullKey(src), true);
    SLUICE_ASSIGN_OR_RETURN(HttpResponse r, CallRetried("PUT", FullKey(dst), {}, {{"x-amz-copy-source", source}}, {}));
    if (r.status != 200 || r.body.find("<Error>") != std::string::npos) {
      if (r.status == 200) r.status = 500;
      return ErrorFor(r, "CopyObject", Describe(src) + " -> " + Describe(dst));
    }
    SLUICE_ASSIGN_OR_RETURN(HttpResponse d, CallRetried("DELETE", FullKey(src), {}, {}, {}));
    if (d.status != 204 && d.status != 200) return ErrorFor(d, "DELETE", Describe(src));
    return Status::Ok();
  }

 private:
  Status WriteMultipart(const std::string& rel, std::string_view data) {
    SLUICE_ASSIGN_OR_RETURN(auto upload, StartUpload(rel, part_size_));
    const uint64_t parts = (data.size() + part_size_ - 1) / part_size_;
    std::vector<Status> results(parts);
    std::atomic<uint64_t> next{0};
    auto upload_parts = [&] {
      for (uint64_t i = next++; i < parts; i = next++) {
        results[i] = upload->PutPart(i, data.substr(i * part_size_, part_size_));
        if (!results[i].ok()) next = parts;  // stop the other uploaders early
      }
    };
    std::vector<std::thread> uploaders;
    for (uint64_t t = 0; t < std::min<uint64_t>(parts, 4); ++t) uploaders.emplace_back(upload_parts);
    for (auto& t : uploaders) t.join();
    for (const auto& st : results) SLUICE_RETURN_IF_ERROR(st);
    return upload->Finish(parts).status();
  }

  const std::string bucket_;
  const std::string prefix_;  // normalized key prefix, "" for the whole bucket
  const S3Settings settings_;
  const RetryPolicy retry_;
  const uint64_t multipart_threshold_;
  const uint64_t part_size_;
  HttpClient http_;
};

// Splits "http://host:port/" into scheme and host.
Status ParseEndpoint(const std::string& endpoint, S3Settings* s) {
  size_t sep = endpoint.find("://");
  if (sep == std::string::npos) {
    return InvalidArgument("S3 endpoint '" + endpoint + "' needs a scheme, as http://127.0.0.1:7480");
  }
  s->scheme = endpoint.substr(0, sep);
  if (s->scheme != "http" && s->scheme != "https") {
    return InvalidArgument("S3 endpoint '" + endpoint + "': scheme must be http or https");
  }
  s->host = endpoint.substr(sep + 3);
  while (!s->host.empty() && s->host.back() == '/') s->host.pop_back();
  if (s->host.empty() || s->host.find('/') != std::string::npos) {
    return InvalidArgument("S3 endpoint '" + endpoint + "' must be scheme://host[:port] without a path");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<UnderStore>> NewS3Store(std::string_view bucket, std::string_view prefix,
                                               const UnderStoreOptions& options) {
  for (const auto& [k, v] : options.options) {
    if (std::find(std::begin(kKnownOptions), std::end(kKnownOptions), k) == std::end(kKnownOptions)) {
      return InvalidArgument("unknown S3 option '" + k +
                             "' (known: endpoint, region, path_style, access_key, secret_key, session_token, ca_bundle)");
    }
  }
  S3Settings s;
  const AwsProfileConfig profile = LoadAwsProfileConfig();
  s.region = options.Get("region", !Env("AWS_REGION").empty() ? Env("AWS_REGION") : Env("AWS_DEFAULT_REGION"));
  if (s.region.empty()) s.region = profile.region;
  if (s.region.empty()) s.region = "us-east-1";
  std::string endpoint = options.Get("endpoint");
  if (endpoint.empty()) endpoint = Env("AWS_ENDPOINT_URL_S3");
  if (endpoint.empty()) endpoint = Env("AWS_ENDPOINT_URL");
  if (endpoint.empty()) endpoint = profile.endpoint_url;
  bool aws = endpoint.empty();
  if (aws) endpoint = "https://s3." + s.region + ".amazonaws.com";
  SLUICE_RETURN_IF_ERROR(ParseEndpoint(endpoint, &s));

  std::string path_style = options.Get("path_style", aws ? "false" : "true");
  if (path_style != "true" && path_style != "false") {
    return InvalidArgument("S3 option path_style must be true or false, not '" + path_style + "'");
  }
  s.path_style = path_style == "true" || std::string(bucket).find('.') != std::string::npos;

  SLUICE_ASSIGN_OR_RETURN(s.creds, AwsCredentialSource::Resolve(options));

  HttpClientOptions http;
  http.connect_timeout = options.connect_timeout;
  http.stall_timeout = options.request_timeout;
  http.ca_bundle = options.Get("ca_bundle", Env("AWS_CA_BUNDLE"));
  return std::unique_ptr<UnderStore>(
      std::make_unique<S3Store>(std::string(bucket), std::string(prefix), std::move(s), options, std::move(http)));
}

}  // namespace sluice::ufs
