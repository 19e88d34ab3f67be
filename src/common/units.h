// Human-readable sizes and durations: "64MiB", "1.5GB", "4096", "30s", "250ms", "2h".
// Parsing is strict: an unknown suffix, a negative number or an overflow is an error that
// quotes the input. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice {

// Bytes. Binary suffixes (KiB, MiB, GiB, TiB, PiB; also K, M, G, T, P) are powers of 1024,
// decimal ones (KB, MB, GB, TB, PB) powers of 1000; "B" or no suffix means bytes.
// Case-insensitive. Whatever FormatSize prints parses back (to within its rounding).
Result<uint64_t> ParseSize(std::string_view text);

// Durations with suffix ns, us, ms, s, m, h, d (a bare number is seconds).
Result<std::chrono::nanoseconds> ParseDuration(std::string_view text);

// 1536 -> "1.5 KiB", 0 -> "0 B".
std::string FormatSize(uint64_t bytes);

// ns since the epoch -> "2026-11-26 08:12:48" (UTC); 0 -> "-".
std::string FormatTime(int64_t ns_since_epoch);

// 1500ms -> "1.5s", 90s -> "1m30s".
std::string FormatDuration(std::chrono::nanoseconds d);

}  // namespace sluice
