// `sluice ufs ...`: direct access to an under-store, with no cache in between: ls, stat,
// cat, cp, rm, mkdir and read (a throughput check). Useful to check a mount's URI and
// credentials before mounting it, and to stage datasets. Called from the CLI's main.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>

namespace sluice::cli {

// What a command sets when it runs: its exit code (0 ok, 1 failed, 2 usage or config error).
struct CommandResult {
  int exit_code = 0;
};

// Adds the "ufs" command group to `app`; the chosen command runs from the app's callbacks
// and writes its exit code to `result`, which must outlive the app.
void AddUfsCommands(CLI::App& app, CommandResult* result);

}  // namespace sluice::cli
