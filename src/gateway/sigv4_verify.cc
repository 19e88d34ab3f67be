// SigV4 verification: the Authorization header and presigned-URL forms, each rebuilt with
// ufs::SignV4 and compared in constant time.
#include "gateway/sigv4_verify.h"

#include <algorithm>
#include <cctype>

#include "ufs/sigv4.h"

namespace sluice::gateway {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
const std::string kEmptyBodyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

S3Error Denied(std::string code, std::string message) { return S3Error{403, std::move(code), std::move(message)}; }
S3Error Malformed(std::string code, std::string message) { return S3Error{400, std::move(code), std::move(message)}; }

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  while (true) {
    size_t at = s.find(sep);
    out.emplace_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

// "20130524T000000Z" as seconds since the epoch.
std::optional<int64_t> ParseAmzDate(std::string_view d) {
  if (d.size() != 16 || d[8] != 'T' || d[15] != 'Z') return std::nullopt;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && !std::isdigit(static_cast<unsigned char>(d[i]))) return std::nullopt;
  }
  auto num = [&](size_t at, size_t n) { return std::stoi(std::string(d.substr(at, n))); };
  int year = num(0, 4), month = num(4, 2), day = num(6, 2), h = num(9, 2), m = num(11, 2), s = num(13, 2);
  if (month < 1 || month > 12 || day < 1 || day > 31 || h > 23 || m > 59 || s > 60) return std::nullopt;
  int64_t y = year - (month <= 2);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
  return days * 86400 + h * 3600 + m * 60 + s;
}

// What a request claims: who signed it, for which scope, over which headers, and the signature.
struct Claim {
  std::string access_key, date, region, service;
  std::vector<std::string> signed_headers;
  std::string signature;
  std::string amz_date;
  std::string payload_hash;
  std::vector<std::pair<std::string, std::string>> query;  // the query that was signed
};

// "AK/20130524/us-east-1/s3/aws4_request" into the claim.
bool ParseCredential(std::string_view credential, Claim* claim) {
  std::vector<std::string> parts = Split(credential, '/');
  if (parts.size() != 5 || parts[0].empty() || parts[1].size() != 8 || parts[4] != "aws4_request") return false;
  claim->access_key = parts[0];
  claim->date = parts[1];
  claim->region = parts[2];
  claim->service = parts[3];
  return claim->service == "s3";
}

}  // namespace

bool Caller::MayRead(const std::string& bucket) const {
  if (!credential || credential->buckets.empty()) return true;
  return std::find(credential->buckets.begin(), credential->buckets.end(), bucket) != credential->buckets.end();
}

SigV4Verifier::SigV4Verifier(SigV4VerifierOptions options) : options_(std::move(options)) {}

std::optional<S3Error> SigV4Verifier::Verify(const HttpHead& head, std::chrono::system_clock::time_point now,
                                             Caller* caller) const {
  *caller = Caller();
  S3Request parsed;
  if (auto e = ParseS3Target(head.target, &parsed)) return e;
  const std::string* authorization = head.Header("authorization");
  const bool presigned = parsed.Query("X-Amz-Signature") != nullptr || parsed.Query("X-Amz-Credential") != nullptr;
  if (!authorization && !presigned) {
    if (options_.allow_anonymous) return std::nullopt;
    return Denied("AccessDenied", "this request is not signed, and the gateway allows no anonymous access: sign it "
                                  "with SigV4 and a key the gateway knows (the banner of `sluice local` says where its keys come from)");
  }
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  Claim claim;
  const char* malformed_code = presigned ? "AuthorizationQueryParametersError" : "AuthorizationHeaderMalformed";
  if (!presigned) {
    std::string_view value = Trim(*authorization);
    if (value.substr(0, kAlgorithm.size()) != kAlgorithm || value.size() == kAlgorithm.size() ||
        value[kAlgorithm.size()] != ' ') {
      if (value.substr(0, 4) == "AWS ") {
        return Malformed("InvalidRequest", "signature version 2 is not supported: sign with AWS4-HMAC-SHA256");
      }
      return Malformed(malformed_code, "the Authorization header must start with AWS4-HMAC-SHA256");
    }
    value.remove_prefix(kAlgorithm.size() + 1);
    bool have_credential = false, have_headers = false, have_signature = false;
    for (const std::string& part : Split(value, ',')) {
      std::string_view p = Trim(part);
      size_t eq = p.find('=');
      if (eq == std::string_view::npos) return Malformed(malformed_code, "the Authorization header is malformed");
      std::string_view name = p.substr(0, eq), v = p.substr(eq + 1);
      if (name == "Credential") {
        if (!ParseCredential(v, &claim)) {
          return Malformed(malformed_code, "the credential '" + std::string(v) +
                                               "' must look like KEY/YYYYMMDD/REGION/s3/aws4_request");
        }
        have_credential = true;
      } else if (name == "SignedHeaders") {
        claim.signed_headers = Split(v, ';');
        have_headers = true;
      } else if (name == "Signature") {
        claim.signature = std::string(v);
        have_signature = true;
      }
    }
    if (!have_credential || !have_headers || !have_signature) {
      return Malformed(malformed_code, "the Authorization header needs Credential, SignedHeaders and Signature");
    }
    const std::string* date = head.Header("x-amz-date");
    if (!date) date = head.Header("date");
    if (!date || !ParseAmzDate(*date)) {
      return Denied("AccessDenied", "a signed request needs an x-amz-date header (YYYYMMDDTHHMMSSZ)");
    }
    claim.amz_date = *date;
    // S3 wants x-amz-content-sha256; clients that leave it out (curl --aws-sigv4) sign the hash
    // of the body, which for a GET or HEAD is empty.
    const std::string* payload = head.Header("x-amz-content-sha256");
    claim.payload_hash = payload ? *payload : kEmptyBodyHash;
    claim.query = parsed.query;
  } else {
    auto param = [&](const char* name) -> std::string {
      const std::string* v = parsed.Query(name);
      return v ? *v : "";
    };
    if (param("X-Amz-Algorithm") != kAlgorithm) {
      return Malformed(malformed_code, "X-Amz-Algorithm must be AWS4-HMAC-SHA256");
    }
    if (!ParseCredential(param("X-Amz-Credential"), &claim)) {
      return Malformed(malformed_code, "X-Amz-Credential must look like KEY/YYYYMMDD/REGION/s3/aws4_request");
    }
    claim.amz_date = param("X-Amz-Date");
    auto signed_at = ParseAmzDate(claim.amz_date);
    if (!signed_at) return Malformed(malformed_code, "X-Amz-Date must look like YYYYMMDDTHHMMSSZ");
    const std::string expires = param("X-Amz-Expires");
    int64_t seconds = -1;
    if (!expires.empty() && expires.size() <= 7 &&
        std::all_of(expires.begin(), expires.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      seconds = std::stoll(expires);
    }
    if (seconds < 1 || seconds > 604800) {
      return Malformed(malformed_code, "X-Amz-Expires must be a number of seconds from 1 to 604800");
    }
    if (now_s > *signed_at + seconds) return Denied("AccessDenied", "Request has expired");
    claim.signed_headers = Split(param("X-Amz-SignedHeaders"), ';');
    claim.signature = param("X-Amz-Signature");
    const std::string* payload = head.Header("x-amz-content-sha256");
    claim.payload_hash = payload ? *payload : "UNSIGNED-PAYLOAD";
    for (const auto& kv : parsed.query) {
      if (kv.first != "X-Amz-Signature") claim.query.push_back(kv);
    }
  }

  if (claim.amz_date.substr(0, 8) != claim.date) {
    return Denied("SignatureDoesNotMatch", "the credential's date " + claim.date + " is not the day of the request (" +
                                               claim.amz_date + ")");
  }
  if (!presigned) {
    const int64_t sent = *ParseAmzDate(claim.amz_date);
    const int64_t skew = options_.max_clock_skew.count();
    if (sent < now_s - skew || sent > now_s + skew) {
      return Denied("RequestTimeTooSkewed", "The difference between the request time (" + claim.amz_date +
                                                ") and the server's time is larger than " + std::to_string(skew / 60) +
                                                " minutes");
    }
  }
  // A GET or HEAD has no body, so its hash must be the empty body's. Other methods are answered
  // (NotImplemented, MethodNotAllowed) without their bodies being read: whatever hash they
  // state is only signed over, as the header it is.
  const bool bodiless = head.method == "GET" || head.method == "HEAD";
  if (bodiless && claim.payload_hash != "UNSIGNED-PAYLOAD" && claim.payload_hash != kEmptyBodyHash) {
    if (claim.payload_hash.rfind("STREAMING-", 0) == 0) {
      return S3Error{501, "NotImplemented", "streaming (aws-chunked) uploads are not supported: the gateway reads only"};
    }
    return Malformed("XAmzContentSHA256Mismatch",
                     "x-amz-content-sha256 is neither UNSIGNED-PAYLOAD nor the hash of the empty body this request has");
  }
  if (std::find(claim.signed_headers.begin(), claim.signed_headers.end(), "host") == claim.signed_headers.end()) {
    return Malformed(malformed_code, "the signed headers must include host");
  }
  const GatewayCredential* credential = nullptr;
  for (const auto& c : options_.credentials) {
    if (c.access_key == claim.access_key) credential = &c;
  }
  if (!credential) {
    return Denied("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records (" +
                                            claim.access_key + " is not among the gateway's keys)");
  }

  ufs::SigV4Request req;
  req.method = head.method;
  req.query = claim.query;
  req.payload_hash = claim.payload_hash;
  for (const std::string& name : claim.signed_headers) {
    const std::string* value = head.Header(name);
    if (!value) {
      return Denied("SignatureDoesNotMatch", "the signed header '" + name + "' is not in the request");
    }
    req.headers.emplace_back(Lower(name), *value);
  }
  const std::string raw_path(head.target.substr(0, head.target.find('?')));
  // What the client signed: the path decoded and encoded again (as strict clients encode it),
  // else the path exactly as it was sent (clients that leave some characters unencoded).
  req.path = "/" + parsed.bucket + (head.target.find('/', 1) < raw_path.size() ? "/" + parsed.key : "");
  const ufs::AwsCredentials keys{credential->access_key, credential->secret_key, ""};
  bool matches = false;
  for (bool encoded : {false, true}) {
    req.path_encoded = encoded;
    if (encoded) req.path = raw_path;
    const auto sig = ufs::SignV4(req, keys, claim.region, claim.service, claim.amz_date);
    if (ConstantTimeEquals(sig.signature, claim.signature)) {
      matches = true;
      break;
    }
  }
  if (!matches) {
    return Denied("SignatureDoesNotMatch",
                  "The request signature we calculated does not match the signature you provided. Check your key "
                  "and signing method.");
  }
  caller->access_key = credential->access_key;
  caller->credential = credential;
  return std::nullopt;
}

}  // namespace sluice::gateway
