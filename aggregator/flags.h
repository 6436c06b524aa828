// Command-line flags of ashiato-aggregator (CLI11).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "aggregator/options.h"
#include "common/byte_size.h"
#include "common/duration.h"

namespace ashiato {

// Registers every aggregator flag on `app`, writing into `options`.
void AddAggregatorFlags(CLI::App& app, AggregatorOptions& options);

}  // namespace ashiato
