// sluice: the command-line entry point. Parses the command line and hands off to the
// command modules; the logic lives in the libraries.
#include <CLI/CLI.hpp>

#include "cli/cluster_commands.h"
#include "cli/ufs_commands.h"
#include "common/logging.h"

int main(int argc, char** argv) {
  CLI::App app{"sluice: a caching data layer for machine-learning training.\n"
               "It reads datasets where they live (S3, HTTP, local/NFS directories)."};
  app.set_version_flag("--version", "sluice 0.1.0");
  app.require_subcommand(1);
  app.fallthrough();  // --log-level and --log-file also after the subcommand
  std::string log_level = "warn", log_file;
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  app.add_option("--log-file", log_file,
                 "Append logs to FILE instead of stderr (default: stderr; a config file's log.file also sets it)");
  sluice::cli::CommandResult result;
  sluice::cli::AddClusterCommands(app, &result);
  sluice::cli::AddUfsCommands(app, &result);
  app.parse_complete_callback([&] {
    sluice::Status st = sluice::InitLogging(log_level, log_file);
    if (!st.ok()) throw CLI::ValidationError(log_file.empty() ? "--log-level" : "--log-file", st.message());
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return result.exit_code;
}
