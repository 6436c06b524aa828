// Command-line flags of ashiato-aggregator (CLI11).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "aggregator/options.h"

namespace ashiato {

// Registers every aggregator flag on `app`, writing into `options`.
void AddAggregatorFlags(CLI::App& app, AggregatorOptions& options);

// Go-style durations: "500ms", "30s", "5m", "1h30m", "0"; nullopt if malformed.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);

}  // namespace ashiato
