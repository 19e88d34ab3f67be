// Starting the S3 gateway from the command line: its options from the config, the keys it
// accepts (gateway.credentials, else SLUICE_GATEWAY_ACCESS_KEY / SLUICE_GATEWAY_SECRET_KEY,
// else a pair generated once and kept in CLUSTER_DIR/gateway-credentials, mode 0600), and the
// root bucket when a mount sits at "/".
#pragma once

#include <memory>
#include <string>

#include "cli/context.h"
#include "gateway/gateway.h"

namespace sluice::cli {

struct StartedGateway {
  std::unique_ptr<gateway::Gateway> gateway;
  std::string banner;  // what to print: the address, the buckets, where the keys are
};

// Starts the gateway on ctx.config.gateway.port over `fs` (which must outlive it).
Result<StartedGateway> StartGateway(const Context& ctx, client::FileSystem* fs);

}  // namespace sluice::cli
