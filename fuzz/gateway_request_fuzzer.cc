// Fuzzes the S3 gateway's request parsing (gateway/s3_request.h, gateway/sigv4_verify.h) with a
// request head split from the input: "METHOD TARGET" on the first line, "name: value" header
// lines after it. It runs ParseS3Target, ResolveRange on the Range header against a size from
// the input, EvaluateConditions, ParseHttpDate on each header, and SigV4Verifier::Verify with
// a fixed key and clock. Beyond not crashing: parsed keys carry no NUL and no "." or ".."
// segment, a resolved range lies inside the object, errors carry an S3 code and a 4xx/5xx
// status, and a request the verifier accepts has a known key.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "gateway/s3_request.h"
#include "gateway/sigv4_verify.h"

using namespace sluice::gateway;

namespace {

const SigV4Verifier& Verifier() {
  static const SigV4Verifier verifier([] {
    SigV4VerifierOptions o;
    o.credentials = {{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", {"examplebucket"}}};
    return o;
  }());
  return verifier;
}

void CheckError(const S3Error& e) {
  FUZZ_CHECK(e.http_status >= 400 && e.http_status < 600, "status %d", e.http_status);
  FUZZ_CHECK(!e.code.empty() && !e.message.empty(), "an error without a code or message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HttpHead head;
  size_t eol = in.find('\n');
  std::string_view line = in.substr(0, eol);
  size_t space = line.find(' ');
  head.method = std::string(line.substr(0, space));
  head.target = space == std::string_view::npos ? "" : std::string(line.substr(space + 1));
  in = eol == std::string_view::npos ? std::string_view() : in.substr(eol + 1);
  while (!in.empty()) {
    eol = in.find('\n');
    line = in.substr(0, eol);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      head.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
    if (eol == std::string_view::npos) break;
    in.remove_prefix(eol + 1);
  }

  S3Request req;
  if (auto e = ParseS3Target(head.target, &req)) {
    CheckError(*e);
  } else {
    FUZZ_CHECK(req.key.find('\0') == std::string::npos && req.bucket.find('\0') == std::string::npos, "NUL in a name");
    std::string_view rest = req.key;
    while (!rest.empty()) {
      std::string_view segment = rest.substr(0, rest.find('/'));
      FUZZ_CHECK(segment != "." && segment != "..", "a '%.*s' segment in key '%s'", static_cast<int>(segment.size()),
                 segment.data(), req.key.c_str());
      if (rest.find('/') == std::string_view::npos) break;
      rest.remove_prefix(rest.find('/') + 1);
    }
  }

  const uint64_t object_size = head.target.size() * 1000003ull % (1ull << 40);
  RangeOutcome range = ResolveRange(head.Header("range"), object_size);
  FUZZ_CHECK(!(range.range && range.error), "a range and an error at once");
  if (range.error) CheckError(*range.error);
  if (range.range) {
    FUZZ_CHECK(range.range->first <= range.range->last && range.range->last < object_size,
               "range %llu-%llu of %llu bytes", static_cast<unsigned long long>(range.range->first),
               static_cast<unsigned long long>(range.range->last), static_cast<unsigned long long>(object_size));
  }
  const int condition = EvaluateConditions(head, "abc", 1000000000);
  FUZZ_CHECK(condition == 200 || condition == 304 || condition == 412, "condition %d", condition);
  for (const auto& [name, value] : head.headers) {
    if (auto t = ParseHttpDate(value)) {
      // What parses formats and parses back to the same second (years 1000-9999).
      if (*t >= -30610224000 && *t < 253402300800) {
        FUZZ_CHECK(ParseHttpDate(FormatHttpDate(*t)) == t, "date '%s' does not round-trip", value.c_str());
      }
    }
  }

  Caller caller;
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1369353600 + 60));
  if (auto e = Verifier().Verify(head, now, &caller)) {
    CheckError(*e);
  } else {
    FUZZ_CHECK(caller.credential != nullptr, "an unsigned request passed with anonymous access off");
  }
  return 0;
}
