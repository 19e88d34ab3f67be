// Parsing of S3 request targets, Range and conditional headers, and HTTP dates.
#include "gateway/s3_request.h"

#include <algorithm>
#include <cctype>
#include <ctime>

namespace sluice::gateway {
namespace {

constexpr size_t kMaxTarget = 8 << 10;
constexpr size_t kMaxKey = 1024;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

S3Error Invalid(std::string message) { return S3Error{400, "InvalidArgument", std::move(message)}; }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes (and, in a query, '+' as a space); nullopt for a bad escape or a NUL.
std::optional<std::string> Decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexDigit(s[i + 1]), lo = HexDigit(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out += c;
  }
  return out;
}

// Trims spaces and tabs.
std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> ParseUint(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// Whether the list of entity tags `header` ("a", W/"b", *) holds `etag` (unquoted).
bool EtagListMatches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = Trim(header.substr(0, comma));
    if (item == "*") return true;
    if (item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (item.size() >= 2 && item.front() == '"' && item.back() == '"') item = item.substr(1, item.size() - 2);
    if (!item.empty() && item == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

int MonthIndex(std::string_view m) {
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (m == kMonths[i]) return i;
  }
  return -1;
}

// Seconds since the epoch of a UTC calendar time (days from civil, no time zone involved).
int64_t EpochSeconds(int64_t year, int month /*1-12*/, int day, int hour, int minute, int second) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t yoe = year - era * 400;
  const int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = era * 146097 + doe - 719468;
  return days * 86400 + hour * 3600 + minute * 60 + second;
}

bool ParseClock(std::string_view s, int* h, int* m, int* sec) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  auto two = [&](size_t at) -> int {
    auto v = ParseUint(s.substr(at, 2));
    return v ? static_cast<int>(*v) : -1;
  };
  *h = two(0), *m = two(3), *sec = two(6);
  return *h >= 0 && *h < 24 && *m >= 0 && *m < 60 && *sec >= 0 && *sec < 61;
}

std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    size_t start = s.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    s.remove_prefix(start);
    size_t end = s.find(' ');
    out.push_back(s.substr(0, end));
    if (end == std::string_view::npos) break;
    s.remove_prefix(end);
  }
  return out;
}

}  // namespace

const std::string* HttpHead::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return &v;
  }
  return nullptr;
}

const std::string* S3Request::Query(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::optional<S3Error> ParseS3Target(std::string_view target, S3Request* out) {
  *out = S3Request();
  if (target.size() > kMaxTarget) {
    return Invalid("the request target is " + std::to_string(target.size()) + " bytes; at most " +
                   std::to_string(kMaxTarget) + " are accepted");
  }
  if (target.empty() || target.front() != '/') return Invalid("the request target must start with '/'");
  const size_t question = target.find('?');
  std::string_view raw_path = target.substr(0, question);
  if (question != std::string_view::npos) {
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      if (!pair.empty()) {
        size_t eq = pair.find('=');
        auto name = Decode(pair.substr(0, eq), true);
        auto value = Decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
        if (!name || !value) return Invalid("the query holds a bad %-escape or a NUL");
        out->query.emplace_back(std::move(*name), std::move(*value));
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  raw_path.remove_prefix(1);
  const size_t slash = raw_path.find('/');
  auto bucket = Decode(raw_path.substr(0, slash), false);
  if (!bucket) return Invalid("the bucket name holds a bad %-escape or a NUL");
  if (bucket->find('/') != std::string::npos || *bucket == "." || *bucket == "..") {
    return Invalid("'" + *bucket + "' is not a bucket name");
  }
  out->bucket = std::move(*bucket);
  if (slash == std::string_view::npos) return std::nullopt;
  auto key = Decode(raw_path.substr(slash + 1), false);
  if (!key) return Invalid("the key holds a bad %-escape or a NUL");
  if (out->bucket.empty()) return Invalid("a key needs a bucket: the target starts with '//'");
  if (key->size() > kMaxKey) {
    return Invalid("the key is " + std::to_string(key->size()) + " bytes; S3 keys are at most 1,024");
  }
  // Each segment of the key names a file or directory of the namespace.
  std::string_view rest = *key;
  while (!key->empty()) {
    size_t at = rest.find('/');
    std::string_view segment = rest.substr(0, at);
    const bool last = at == std::string_view::npos;
    if (segment == "." || segment == "..") {
      return Invalid("the key '" + *key + "' holds a '" + std::string(segment) + "' segment");
    }
    if (segment.empty() && !last) return Invalid("the key '" + *key + "' holds an empty segment ('//')");
    if (last) break;
    rest.remove_prefix(at + 1);
  }
  out->key = std::move(*key);
  return std::nullopt;
}

RangeOutcome ResolveRange(const std::string* header, uint64_t size) {
  RangeOutcome out;
  if (!header) return out;
  std::string_view h = Trim(*header);
  if (h.substr(0, 6) != "bytes=") return out;  // another unit: ignored, as S3 does
  h.remove_prefix(6);
  h = Trim(h);
  if (h.find(',') != std::string_view::npos) return out;  // several ranges: the whole object
  const size_t dash = h.find('-');
  if (dash == std::string_view::npos) return out;
  std::string_view first_text = Trim(h.substr(0, dash)), last_text = Trim(h.substr(dash + 1));
  auto unsatisfiable = [&] {
    out.error = S3Error{416, "InvalidRange",
                        "The requested range is not satisfiable (bytes=" + std::string(h) + " of an object of " +
                            std::to_string(size) + " bytes)"};
    return out;
  };
  if (first_text.empty()) {  // a suffix: the last N bytes
    auto n = ParseUint(last_text);
    if (!n) return out;
    if (*n == 0 || size == 0) return unsatisfiable();
    out.range = ByteRange{size - std::min(*n, size), size - 1};
    return out;
  }
  auto first = ParseUint(first_text);
  if (!first) return out;
  std::optional<uint64_t> last;
  if (!last_text.empty()) {
    last = ParseUint(last_text);
    if (!last || *last < *first) return out;  // malformed: ignored
  }
  if (*first >= size) return unsatisfiable();
  out.range = ByteRange{*first, std::min(last.value_or(size - 1), size - 1)};
  return out;
}

int EvaluateConditions(const HttpHead& head, std::string_view etag, int64_t mtime_s) {
  const std::string* if_match = head.Header("if-match");
  const std::string* if_none_match = head.Header("if-none-match");
  if (if_match) {
    if (!EtagListMatches(*if_match, etag)) return 412;
  } else if (const std::string* since = head.Header("if-unmodified-since")) {
    auto t = ParseHttpDate(*since);
    if (t && mtime_s > *t) return 412;
  }
  if (if_none_match) {
    if (EtagListMatches(*if_none_match, etag)) return 304;
  } else if (const std::string* since = head.Header("if-modified-since")) {
    auto t = ParseHttpDate(*since);
    if (t && mtime_s <= *t) return 304;
  }
  return 200;
}

std::optional<int64_t> ParseHttpDate(std::string_view text) {
  std::vector<std::string_view> w = Words(Trim(text));
  int h = 0, m = 0, s = 0;
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (w.size() == 6 && w[0].size() == 4 && w[0].back() == ',' && w[5] == "GMT") {
    auto day = ParseUint(w[1]);
    auto year = ParseUint(w[3]);
    int month = MonthIndex(w[2]);
    if (!day || !year || month < 0 || *day < 1 || *day > 31 || w[3].size() != 4 || !ParseClock(w[4], &h, &m, &s)) {
      return std::nullopt;
    }
    return EpochSeconds(static_cast<int64_t>(*year), month + 1, static_cast<int>(*day), h, m, s);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  if (w.size() == 4 && w[0].size() > 1 && w[0].back() == ',' && w[3] == "GMT" && w[1].size() == 9 &&
      w[1][2] == '-' && w[1][6] == '-') {
    auto day = ParseUint(w[1].substr(0, 2));
    auto year = ParseUint(w[1].substr(7, 2));
    int month = MonthIndex(w[1].substr(3, 3));
    if (!day || !year || month < 0 || *day < 1 || *day > 31 || !ParseClock(w[2], &h, &m, &s)) return std::nullopt;
    const int64_t full_year = static_cast<int64_t>(*year) + (*year < 70 ? 2000 : 1900);
    return EpochSeconds(full_year, month + 1, static_cast<int>(*day), h, m, s);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (w.size() == 5 && w[0].size() == 3) {
    auto day = ParseUint(w[2]);
    auto year = ParseUint(w[4]);
    int month = MonthIndex(w[1]);
    if (!day || !year || month < 0 || *day < 1 || *day > 31 || w[4].size() != 4 || !ParseClock(w[3], &h, &m, &s)) {
      return std::nullopt;
    }
    return EpochSeconds(static_cast<int64_t>(*year), month + 1, static_cast<int>(*day), h, m, s);
  }
  return std::nullopt;
}

std::string FormatHttpDate(int64_t epoch_s) {
  const time_t t = static_cast<time_t>(epoch_s);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string FormatIso8601(int64_t epoch_ns) {
  const int64_t secs = epoch_ns >= 0 ? epoch_ns / 1000000000 : (epoch_ns - 999999999) / 1000000000;
  const int64_t millis = (epoch_ns - secs * 1000000000) / 1000000;
  const time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(millis));
  return out;
}

}  // namespace sluice::gateway
