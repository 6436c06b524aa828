// Durations as Go and kubectl write them: "500ms", "30s", "5m", "1h30m",
// "1.5s", plus "7d" for days; a bare number is seconds.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace ashiato {

// Returns nullopt for anything else (empty, unknown unit, spaces, negative).
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);

}  // namespace ashiato
