// Fuzzes size and duration parsing (common/units.h) with the same text. Beyond not crashing:
// an error is kInvalidArgument quoting the input; a parsed size reads back from its decimal
// form exactly (where a double holds it) and from FormatSize within FormatSize's rounding; a
// parsed duration is non-negative and reads back from its count of nanoseconds.
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "common/units.h"

namespace {

constexpr uint64_t kExactDouble = 1ull << 53;

template <typename T>
void CheckError(const sluice::Result<T>& r, std::string_view input) {
  FUZZ_CHECK(r.status().code() == sluice::StatusCode::kInvalidArgument, "unexpected error code");
  FUZZ_CHECK(r.status().message().find(input) != std::string::npos, "the error does not quote the input");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto s = sluice::ParseSize(input);
  if (s.ok()) {
    uint64_t v = *s;
    if (v <= kExactDouble) {
      auto back = sluice::ParseSize(std::to_string(v));
      FUZZ_CHECK(back.ok() && *back == v, "%llu does not read back", static_cast<unsigned long long>(v));
    }
    std::string formatted = sluice::FormatSize(v);
    auto approx = sluice::ParseSize(formatted);
    // Near 16 EiB, FormatSize rounds up to 2^64, which is too large to parse.
    FUZZ_CHECK(approx.ok() || v > 18'350'000'000'000'000'000ull, "FormatSize(%llu) = '%s' does not parse: %s",
               static_cast<unsigned long long>(v), formatted.c_str(), approx.status().message().c_str());
    if (approx.ok()) {
      // "1.50 KiB": two decimals below 10 units, one above: within 0.5% (plus the last byte).
      double err = std::fabs(static_cast<double>(*approx) - static_cast<double>(v));
      FUZZ_CHECK(err <= static_cast<double>(v) * 0.005 + 1, "FormatSize(%llu) = '%s' reads back as %llu",
                 static_cast<unsigned long long>(v), formatted.c_str(), static_cast<unsigned long long>(*approx));
    }
  } else {
    CheckError(s, input);
  }

  auto d = sluice::ParseDuration(input);
  if (d.ok()) {
    int64_t ns = d->count();
    FUZZ_CHECK(ns >= 0, "negative duration %lld", static_cast<long long>(ns));
    if (static_cast<uint64_t>(ns) <= kExactDouble) {
      auto back = sluice::ParseDuration(std::to_string(ns) + "ns");
      FUZZ_CHECK(back.ok() && *back == *d, "%lldns does not read back", static_cast<long long>(ns));
    }
    (void)sluice::FormatDuration(*d);
  } else {
    CheckError(d, input);
  }
  return 0;
}
