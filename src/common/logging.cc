// spdlog configuration for sluice processes.
#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace sluice {

Status InitLogging(const std::string& level, const std::string& file) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("unknown log level '" + level + "' (use trace, debug, info, warn, error or off)");
  }
  try {
    std::shared_ptr<spdlog::logger> logger;
    if (file.empty()) {
      logger = spdlog::stderr_logger_mt("sluice");
    } else {
      logger = spdlog::basic_logger_mt("sluice", file);
    }
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%t] %v");
    logger->set_level(lvl);
    spdlog::set_default_logger(logger);
  } catch (const spdlog::spdlog_ex& e) {
    return IoError(std::string("cannot set up logging: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace sluice
