// Fuzzes the worker HTTP endpoint's request-head parser (worker/http_request.h) with raw bytes
// as they would arrive on the socket. Beyond not crashing: success means a GET with a clean
// origin-form target that parses the same way again in a minimal request, with LF or CRLF line
// ends; errors are kInvalidArgument (400) or kNotSupported (405) with a short message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "worker/http_request.h"

using sluice::StatusCode;
using sluice::worker::ParseHttpRequest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  auto r = ParseHttpRequest(raw);
  if (!r.ok()) {
    StatusCode code = r.status().code();
    FUZZ_CHECK(code == StatusCode::kInvalidArgument || code == StatusCode::kNotSupported, "unexpected error code");
    FUZZ_CHECK(r.status().message().size() < 300, "error message of %zu bytes", r.status().message().size());
    return 0;
  }
  FUZZ_CHECK(r->method == "GET", "method '%s' accepted", r->method.c_str());
  const std::string& target = r->target;
  FUZZ_CHECK(!target.empty() && target.front() == '/', "target '%s' is not origin form", target.c_str());
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u > 0x20 && u != 0x7f, "control byte or space 0x%02x in the target", u);
  }
  FUZZ_CHECK(r->minor_version >= 0 && r->minor_version <= 9, "HTTP/1.%d", r->minor_version);
  FUZZ_CHECK(raw.find(target) != std::string_view::npos, "target not taken from the input");
  for (const char* eol : {"\r\n", "\n"}) {
    std::string minimal = "GET " + target + " HTTP/1.1" + eol + "Host: w" + eol + eol;
    auto again = ParseHttpRequest(minimal);
    FUZZ_CHECK(again.ok() && again->target == target, "target '%s' does not parse again", target.c_str());
  }
  return 0;
}
