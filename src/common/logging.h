// Process-wide logging on spdlog. InitLogging() is called once by each binary's main; library
// code logs with the SLUICE_LOG_* macros below (thread-safe, as spdlog's default logger).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

#include "common/status.h"

namespace sluice {

// Sets the level ("trace".."off") and the sink (a file path, or stderr when empty).
Status InitLogging(const std::string& level, const std::string& file = "");
// The file logs go to, or "" for stderr.
const std::string& LogFile();

}  // namespace sluice

#define SLUICE_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define SLUICE_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define SLUICE_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define SLUICE_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
