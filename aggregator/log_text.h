// The unified log as text (logFormat: text in the live configuration,
// docs/live-config.md): one line per event for people reading a terminal,
//   2026-12-03T22:00:00.123456Z CREATED team-a/db-0 node=node-1 ip=10.0.0.5 phase=Running
//   images=nginx:1.27 cluster=prod id=42
// (one line). Values with blanks, quotes or control characters are written
// as JSON strings. The JSON line stays the reference: the text drops
// fields (labels, conditions, addresses).
#pragma once

#include <cstdint>
#include <string>

namespace ashiato {

// `line` is the stored JSON line (without id); `cluster` may be "".
std::string UnifiedLogTextLine(int64_t id, const std::string& cluster, const std::string& line);

}  // namespace ashiato
