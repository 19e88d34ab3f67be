// spdlog configuration for sluice processes.
#include "common/logging.h"

#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice {
namespace {
std::string g_log_file;  // set during start-up, before other threads
}  // namespace

const std::string& LogFile() { return g_log_file; }

bool LogLimiter::Allow(uint64_t* held_back) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now < next_) {
    ++held_back_;
    return false;
  }
  next_ = now + interval_;
  *held_back = held_back_;
  held_back_ = 0;
  return true;
}

Status InitLogging(const std::string& level, const std::string& file) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("unknown log level '" + level + "' (use trace, debug, info, warn, error or off)");
  }
  if (!file.empty()) {
    // Opened here first so that a bad path is refused with the system's reason (spdlog would
    // also create missing parent directories, and a typo would log to a new tree unnoticed).
    int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return InvalidArgument("cannot open log file '" + file + "': " + std::strerror(errno) +
                             " (give a writable file in an existing directory)");
    }
    ::close(fd);
  }
  try {
    spdlog::drop("sluice");  // set up again: a config file may name a log file later
    std::shared_ptr<spdlog::logger> logger;
    if (file.empty()) {
      logger = spdlog::stderr_logger_mt("sluice");
    } else {
      logger = spdlog::basic_logger_mt("sluice", file);
    }
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%t] %v");
    logger->set_level(lvl);
    spdlog::set_default_logger(logger);
    g_log_file = file;
  } catch (const spdlog::spdlog_ex& e) {
    return InvalidArgument(std::string("cannot set up logging") + (file.empty() ? "" : " to " + file) + ": " +
                           e.what());
  }
  return Status::Ok();
}

}  // namespace sluice
