// Diagnostics: JSON lines on stderr through spdlog. Stdout stays reserved for
// the product's event log.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace ashiato {

// Routes spdlog's default logger to stderr as one JSON object per line:
// {"ts":"...","level":"info","component":"agent","msg":"..."}.
// `level` is "debug", "info", "warn" or "error".
void SetupJsonLogging(const std::string& component, const std::string& level = "info");

// Escapes `s` for embedding inside a JSON string literal.
std::string JsonEscape(const std::string& s);

}  // namespace ashiato
