// Parsing of human-readable sizes and durations.
#include "common/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <string>

namespace sluice {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits "12.5MiB" into 12.5 and "mib". Fails on an empty or non-numeric prefix.
bool SplitNumber(std::string_view text, double* number, std::string* suffix) {
  size_t i = 0;
  bool digits = false, dot = false;
  while (i < text.size()) {
    char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
    ++i;
  }
  if (!digits) return false;
  // strtod, not stod: a number too large for a double becomes HUGE_VAL (then refused as too
  // large) and one too small becomes 0, where stod throws.
  *number = std::strtod(std::string(text.substr(0, i)).c_str(), nullptr);
  *suffix = Lower(Trim(text.substr(i)));
  return true;
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view input) {
  std::string_view text = Trim(input);
  double number = 0;
  std::string suffix;
  if (!SplitNumber(text, &number, &suffix)) {
    return InvalidArgument("'" + std::string(input) + "' is not a size (examples: 4096, 64MiB, 1.5GB)");
  }
  double mult;
  if (suffix.empty() || suffix == "b") mult = 1;
  else if (suffix == "k" || suffix == "kib") mult = 1024.0;
  else if (suffix == "m" || suffix == "mib") mult = 1024.0 * 1024;
  else if (suffix == "g" || suffix == "gib") mult = 1024.0 * 1024 * 1024;
  else if (suffix == "t" || suffix == "tib") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (suffix == "p" || suffix == "pib") mult = 1024.0 * 1024 * 1024 * 1024 * 1024;
  else if (suffix == "kb") mult = 1e3;
  else if (suffix == "mb") mult = 1e6;
  else if (suffix == "gb") mult = 1e9;
  else if (suffix == "tb") mult = 1e12;
  else if (suffix == "pb") mult = 1e15;
  else return InvalidArgument("'" + std::string(input) + "' has an unknown size unit '" + suffix +
                              "' (use B, KiB, MiB, GiB, TiB, PiB, KB, MB, GB, TB or PB)");
  double bytes = std::round(number * mult);
  if (bytes >= 18446744073709551615.0) return InvalidArgument("'" + std::string(input) + "' is too large a size");
  return static_cast<uint64_t>(bytes);
}

Result<std::chrono::nanoseconds> ParseDuration(std::string_view input) {
  std::string_view text = Trim(input);
  double number = 0;
  std::string suffix;
  if (!SplitNumber(text, &number, &suffix)) {
    return InvalidArgument("'" + std::string(input) + "' is not a duration (examples: 30s, 250ms, 5m, 1h)");
  }
  double ns;
  if (suffix.empty() || suffix == "s") ns = 1e9;
  else if (suffix == "ns") ns = 1;
  else if (suffix == "us") ns = 1e3;
  else if (suffix == "ms") ns = 1e6;
  else if (suffix == "m" || suffix == "min") ns = 60e9;
  else if (suffix == "h") ns = 3600e9;
  else if (suffix == "d") ns = 86400e9;
  else return InvalidArgument("'" + std::string(input) + "' has an unknown time unit '" + suffix +
                              "' (use ns, us, ms, s, m, h or d)");
  double total = number * ns;
  if (total >= static_cast<double>(std::numeric_limits<int64_t>::max())) {
    return InvalidArgument("'" + std::string(input) + "' is too long a duration");
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(total)));
}

std::string FormatSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof(buf), "%.*f %s", v < 10 ? 2 : 1, v, kUnits[u]);
  return buf;
}

std::string FormatTime(int64_t ns) {
  if (ns == 0) return "-";
  std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  double s = std::chrono::duration<double>(d).count();
  char buf[48];
  if (d.count() == 0) return "0s";
  if (s < 1e-3) std::snprintf(buf, sizeof(buf), "%.0fus", s * 1e6);
  else if (s < 1) std::snprintf(buf, sizeof(buf), "%.1fms", s * 1e3);
  else if (s < 60) std::snprintf(buf, sizeof(buf), "%.2fs", s);
  else {
    // Whole seconds in integers: an int overflows past 68 years (and a config bound may be that).
    const long long secs = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    if (secs < 3600) std::snprintf(buf, sizeof(buf), "%lldm%02llds", secs / 60, secs % 60);
    else std::snprintf(buf, sizeof(buf), "%lldh%02lldm", secs / 3600, (secs / 60) % 60);
  }
  return buf;
}

}  // namespace sluice
