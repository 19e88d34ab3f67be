// HTTP/1.x request-head parsing for the worker's endpoint (RFC 9112 sections 2-5, strictly:
// anything a lenient proxy could read two ways is refused rather than guessed at).
#include "worker/http_request.h"

namespace sluice::worker {
namespace {

// RFC 9110 "tchar": the bytes of a method or a header name.
bool IsTokenChar(unsigned char c) {
  if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Printable bytes of a target: no space, no control byte, no DEL (bytes >= 0x80 are left to
// the page function, which sees only known ASCII targets).
bool IsTarget(std::string_view s) {
  if (s.empty() || s.front() != '/') return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

// A header value: visible bytes, spaces and tabs (obs-text, >= 0x80, allowed as RFC 9110 does).
bool IsFieldValue(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  return true;
}

// A line for an error message: its first 64 bytes with control bytes shown as '?'.
std::string Quote(std::string_view line) {
  std::string out = "'";
  for (char c : line.substr(0, 64)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  return out + (line.size() > 64 ? "...'" : "'");
}

Status Bad(std::string what) { return InvalidArgument("malformed HTTP request: " + std::move(what)); }

// Takes the next line off `rest` without its LF or CRLF; false when no LF is left (the head
// is incomplete). A CR anywhere else in a line is an error for the caller to see.
bool NextLine(std::string_view* rest, std::string_view* line) {
  size_t lf = rest->find('\n');
  if (lf == std::string_view::npos) return false;
  *line = rest->substr(0, lf);
  if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
  rest->remove_prefix(lf + 1);
  return true;
}

}  // namespace

Result<HttpRequestLine> ParseHttpRequest(std::string_view raw) {
  std::string_view rest = raw.substr(0, kMaxHttpRequestHead);
  const auto incomplete = [&](const char* what) {
    return Bad(raw.size() > kMaxHttpRequestHead ? "request head over " + std::to_string(kMaxHttpRequestHead) + " bytes"
                                                : std::string(what));
  };
  std::string_view line;
  if (!NextLine(&rest, &line)) return incomplete("incomplete request line");
  // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
  if (line.empty() && !NextLine(&rest, &line)) return incomplete("incomplete request line");
  if (line.empty()) return Bad("no request line");

  // method SP request-target SP HTTP-version, single spaces.
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Bad("request line " + Quote(line) + " is not 'METHOD /target HTTP/1.1'");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Bad("bad method in " + Quote(line));
  if (!IsTarget(target)) return Bad("bad target in " + Quote(line) + " (expected an absolute path such as /metrics)");
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' || version[7] > '9') {
    return Bad("unsupported HTTP version in " + Quote(line));
  }

  // Header fields: checked (a malformed one makes the request ambiguous), not kept.
  size_t fields = 0;
  while (true) {
    if (!NextLine(&rest, &line)) return incomplete("incomplete request head (no empty line after the headers)");
    if (line.empty()) break;
    if (++fields > kMaxHttpHeaderLines) return Bad("more than " + std::to_string(kMaxHttpHeaderLines) + " headers");
    if (line.front() == ' ' || line.front() == '\t') return Bad("folded header line " + Quote(line));
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      return Bad("bad header line " + Quote(line));
    }
    if (!IsFieldValue(line.substr(colon + 1))) return Bad("control byte in header line " + Quote(line));
  }

  if (method != "GET") {
    return NotSupported("method " + Quote(method) + " is not served here (only GET)");
  }
  HttpRequestLine out;
  out.method = std::string(method);
  out.target = std::string(target);
  out.minor_version = version[7] - '0';
  return out;
}

}  // namespace sluice::worker
