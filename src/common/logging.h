// Process-wide logging on spdlog. InitLogging() is called once by each binary's main; library
// code logs with the SLUICE_LOG_* macros below (thread-safe, as spdlog's default logger).
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "common/status.h"

namespace sluice {

// Sets the level ("trace".."off") and the sink (a file path, or stderr when empty).
Status InitLogging(const std::string& level, const std::string& file = "");
// The file logs go to, or "" for stderr.
const std::string& LogFile();

// For a warning that may repeat per file or per request: lets one line through per interval,
// and counts what it held back so the next line can say so. Thread-safe.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::nanoseconds interval = std::chrono::seconds(10)) : interval_(interval) {}
  // True when a line may be logged now; `held_back` then gets the lines dropped since the last.
  bool Allow(uint64_t* held_back);

 private:
  const std::chrono::nanoseconds interval_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point next_{};  // GUARDED_BY(mu_)
  uint64_t held_back_ = 0;                        // GUARDED_BY(mu_)
};

}  // namespace sluice

#define SLUICE_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define SLUICE_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define SLUICE_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define SLUICE_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
