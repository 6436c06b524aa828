// Byte sizes as Kubernetes quantities and people write them: "1048576",
// "512Ki", "200Mi", "5Gi", "1Ti", "500k", "500KB", "200MB", "5G", "1T".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ashiato {

// Returns nullopt for anything else (empty, negative, fractions, unknown
// suffix, overflow).
std::optional<uint64_t> ParseByteSize(const std::string& text);

}  // namespace ashiato
