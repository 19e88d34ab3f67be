// The cluster-facing commands: `sluice local`, `sluice worker`, `sluice mount ...`,
// `sluice fs ...`, `sluice load ...`, `sluice free` and `sluice report`.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/ufs_commands.h"

namespace sluice::cli {

// Adds the commands to `app`; the one chosen writes its exit code to `result`.
void AddClusterCommands(CLI::App& app, CommandResult* result);

}  // namespace sluice::cli
