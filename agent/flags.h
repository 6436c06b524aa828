// Command line and environment parsing for ashiato-agent (CLI11).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "agent/agent_options.h"
#include "common/duration.h"

namespace ashiato {

// Parses flags (each also readable from the env variable named in --help)
// into `options` and validates them. Returns nullopt to go on, or the exit
// code to return right away (0 after --help, 2 on a usage error, with the
// message printed to stderr).
std::optional<int> ParseAgentFlags(int argc, const char* const* argv, AgentOptions* options);

}  // namespace ashiato
