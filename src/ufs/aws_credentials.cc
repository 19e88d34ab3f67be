// The AWS credential chain: options, environment, shared files, web identity, IMDSv2.
#include "ufs/aws_credentials.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "ufs/http_client.h"
#include "ufs/xml.h"

namespace sluice::ufs {
namespace {

constexpr auto kRefreshBefore = std::chrono::minutes(5);

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  size_t b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string HomeFile(const char* env, const char* name) {
  std::string path = Env(env);
  if (!path.empty()) return path;
  std::string home = Env("HOME");
  return (home.empty() ? "/root" : home) + "/.aws/" + name;
}

// The key = value lines of one [section] of an INI file; `found` says whether it exists.
std::map<std::string, std::string> IniSection(const std::string& path, const std::string& section, bool* found) {
  std::map<std::string, std::string> out;
  *found = false;
  std::ifstream in(path);
  std::string line, current;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      current = Trim(line.substr(1, line.size() - 2));
      if (current == section) *found = true;
      continue;
    }
    size_t eq = line.find('=');
    if (current == section && eq != std::string::npos) out[Trim(line.substr(0, eq))] = Trim(line.substr(eq + 1));
  }
  return out;
}

std::string ProfileName(const std::string& profile) {
  if (!profile.empty()) return profile;
  std::string env = Env("AWS_PROFILE");
  return env.empty() ? "default" : env;
}

// "2026-12-04T18:00:00Z" -> a time point; epoch when malformed.
std::chrono::system_clock::time_point ParseExpiration(const std::string& text) {
  int64_t ns = ParseIso8601(text);
  return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::nanoseconds(ns)));
}

// The string value of "key" in a flat JSON object (IMDS answers), or "".
std::string JsonString(const std::string& json, const std::string& key) {
  size_t k = json.find("\"" + key + "\"");
  if (k == std::string::npos) return "";
  size_t colon = json.find(':', k);
  size_t open = colon == std::string::npos ? std::string::npos : json.find('"', colon);
  size_t close = open == std::string::npos ? std::string::npos : json.find('"', open + 1);
  return close == std::string::npos ? "" : json.substr(open + 1, close - open - 1);
}

}  // namespace

AwsProfileConfig LoadAwsProfileConfig(const std::string& profile) {
  const std::string name = ProfileName(profile);
  bool found = false;
  auto section = IniSection(HomeFile("AWS_CONFIG_FILE", "config"), name == "default" ? name : "profile " + name,
                            &found);
  return AwsProfileConfig{section["region"], section["endpoint_url"]};
}

Result<std::unique_ptr<AwsCredentialSource>> AwsCredentialSource::Resolve(const UnderStoreOptions& options) {
  std::unique_ptr<AwsCredentialSource> s(new AwsCredentialSource());
  s->connect_timeout_ = std::min<std::chrono::nanoseconds>(options.connect_timeout, std::chrono::seconds(2));
  std::string tried = "options access_key/secret_key, environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
  auto use_static = [&](AwsCredentials c, std::string where) {
    s->kind_ = Kind::kStatic;
    s->creds_ = std::move(c);
    s->description_ = std::move(where);
  };
  // Options first, key by key, then the environment (as the AWS tools combine them).
  AwsCredentials given{options.Get("access_key", Env("AWS_ACCESS_KEY_ID")),
                       options.Get("secret_key", Env("AWS_SECRET_ACCESS_KEY")),
                       options.Get("session_token", Env("AWS_SESSION_TOKEN"))};
  if (given.access_key.empty() != given.secret_key.empty()) {
    return InvalidArgument("S3 credentials need both an access key and a secret key (access_key/secret_key options, "
                           "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)");
  }
  if (!given.empty()) {
    const bool from_options = !options.Get("access_key").empty() || !options.Get("secret_key").empty();
    use_static(given, from_options ? "options" : "environment");
    return s;
  }
  // The shared credentials file, then the config file, for the profile.
  const std::string profile = ProfileName("");
  const std::string cred_file = HomeFile("AWS_SHARED_CREDENTIALS_FILE", "credentials");
  const std::string config_file = HomeFile("AWS_CONFIG_FILE", "config");
  bool in_credentials = false, in_config = false;
  auto section = IniSection(cred_file, profile, &in_credentials);
  if (section["aws_access_key_id"].empty()) {
    section = IniSection(config_file, profile == "default" ? profile : "profile " + profile, &in_config);
  }
  tried += ", profile " + profile + " in " + cred_file + " and " + config_file;
  if (!section["aws_access_key_id"].empty()) {
    use_static(AwsCredentials{section["aws_access_key_id"], section["aws_secret_access_key"],
                              section["aws_session_token"]},
               "profile " + profile + " in " + (in_credentials ? cred_file : config_file));
    if (s->creds_.secret_key.empty()) {
      return InvalidArgument("profile " + profile + " has aws_access_key_id but no aws_secret_access_key");
    }
    return s;
  }
  if (!Env("AWS_PROFILE").empty() && !in_credentials && !in_config) {
    return InvalidArgument("AWS_PROFILE=" + profile + ": no such profile in " + cred_file + " or " + config_file);
  }
  // A web identity (Kubernetes service accounts on EKS).
  s->token_file_ = Env("AWS_WEB_IDENTITY_TOKEN_FILE");
  s->role_arn_ = Env("AWS_ROLE_ARN");
  tried += ", web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)";
  if (!s->token_file_.empty() && !s->role_arn_.empty()) {
    s->kind_ = Kind::kWebIdentity;
    s->sts_endpoint_ = Env("AWS_ENDPOINT_URL_STS");
    if (s->sts_endpoint_.empty()) s->sts_endpoint_ = "https://sts.amazonaws.com";
    s->description_ = "web identity " + s->role_arn_ + " through " + s->sts_endpoint_;
    std::lock_guard<std::mutex> lock(s->mu_);
    SLUICE_RETURN_IF_ERROR(s->Refresh());
    return s;
  }
  // The instance's role (IMDSv2).
  tried += ", instance metadata (IMDSv2)";
  if (Env("AWS_EC2_METADATA_DISABLED") != "true") {
    s->imds_endpoint_ = Env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (s->imds_endpoint_.empty()) s->imds_endpoint_ = "http://169.254.169.254";
    while (!s->imds_endpoint_.empty() && s->imds_endpoint_.back() == '/') s->imds_endpoint_.pop_back();
    s->kind_ = Kind::kInstance;
    std::lock_guard<std::mutex> lock(s->mu_);
    if (s->Refresh().ok()) {
      s->description_ = "instance role through " + s->imds_endpoint_;
      return s;
    }
  }
  s->kind_ = Kind::kNone;
  s->description_ = "no credentials found: tried " + tried;
  return s;
}

Result<AwsCredentials> AwsCredentialSource::Get() {
  // Keys that never expire are set once in Resolve: no lock on every request's path.
  if (kind_ == Kind::kStatic || kind_ == Kind::kNone) return creds_;
  std::lock_guard<std::mutex> lock(mu_);
  if ((kind_ == Kind::kWebIdentity || kind_ == Kind::kInstance) &&
      std::chrono::system_clock::now() + kRefreshBefore >= expires_) {
    Status st = Refresh();
    // Keys that have not expired yet still sign; expired ones are an error.
    if (!st.ok() && std::chrono::system_clock::now() >= expires_) return st;
  }
  return creds_;
}

std::string AwsCredentialSource::Describe() {
  std::lock_guard<std::mutex> lock(mu_);
  return description_;
}

Status AwsCredentialSource::Refresh() {
  return kind_ == Kind::kWebIdentity ? FetchWebIdentity() : FetchInstanceRole();
}

Status AwsCredentialSource::FetchWebIdentity() {
  std::ifstream in(token_file_);
  if (!in) return InvalidArgument("AWS_WEB_IDENTITY_TOKEN_FILE " + token_file_ + " cannot be read");
  std::stringstream token;
  token << in.rdbuf();
  HttpClientOptions o;
  o.connect_timeout = connect_timeout_;
  o.stall_timeout = std::chrono::seconds(10);
  HttpClient http(o);
  HttpRequest req;
  req.url = sts_endpoint_ + "/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=sluice&RoleArn=" +
            UriEncode(role_arn_, false) + "&WebIdentityToken=" + UriEncode(Trim(token.str()), false);
  HttpResponse r;
  SLUICE_RETURN_IF_ERROR(http.Send(req, &r));
  if (r.status != 200) {
    return Status(StatusCode::kPermissionDenied, "STS AssumeRoleWithWebIdentity for " + role_arn_ + " at " +
                                                     sts_endpoint_ + ": HTTP " + std::to_string(r.status));
  }
  SLUICE_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(r.body));
  const XmlElement* result = doc.Child("AssumeRoleWithWebIdentityResult");
  const XmlElement* c = result ? result->Child("Credentials") : nullptr;
  if (!c || c->ChildText("AccessKeyId").empty()) return Internal("STS answered without credentials: " + r.body);
  creds_ = AwsCredentials{c->ChildText("AccessKeyId"), c->ChildText("SecretAccessKey"), c->ChildText("SessionToken")};
  expires_ = ParseExpiration(c->ChildText("Expiration"));
  return Status::Ok();
}

Status AwsCredentialSource::FetchInstanceRole() {
  HttpClientOptions o;
  o.connect_timeout = std::chrono::seconds(1);  // no metadata service: answer fast
  o.stall_timeout = std::chrono::seconds(2);
  HttpClient http(o);
  HttpRequest token_req;
  token_req.method = "PUT";
  token_req.url = imds_endpoint_ + "/latest/api/token";
  token_req.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
  HttpResponse token;
  SLUICE_RETURN_IF_ERROR(http.Send(token_req, &token));
  if (token.status != 200) return Status(StatusCode::kUnavailable, "IMDSv2 token: HTTP " + std::to_string(token.status));
  auto get = [&](const std::string& path) -> Result<std::string> {
    HttpRequest req;
    req.url = imds_endpoint_ + path;
    req.headers = {{"X-aws-ec2-metadata-token", Trim(token.body)}};
    HttpResponse r;
    SLUICE_RETURN_IF_ERROR(http.Send(req, &r));
    if (r.status != 200) return Status(StatusCode::kUnavailable, "IMDS " + path + ": HTTP " + std::to_string(r.status));
    return r.body;
  };
  SLUICE_ASSIGN_OR_RETURN(std::string roles, get("/latest/meta-data/iam/security-credentials/"));
  std::string role = Trim(roles.substr(0, roles.find('\n')));
  if (role.empty()) return Status(StatusCode::kUnavailable, "the instance has no IAM role");
  SLUICE_ASSIGN_OR_RETURN(std::string json, get("/latest/meta-data/iam/security-credentials/" + role));
  AwsCredentials c{JsonString(json, "AccessKeyId"), JsonString(json, "SecretAccessKey"), JsonString(json, "Token")};
  if (c.access_key.empty()) return Internal("IMDS answered without credentials for role " + role);
  creds_ = std::move(c);
  expires_ = ParseExpiration(JsonString(json, "Expiration"));
  return Status::Ok();
}

}  // namespace sluice::ufs
