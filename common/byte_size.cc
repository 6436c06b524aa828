#include "common/byte_size.h"

#include <cctype>
#include <utility>

namespace ashiato {

std::optional<uint64_t> ParseByteSize(const std::string& text) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (n > (UINT64_MAX - d) / 10) return std::nullopt;
    n = n * 10 + d;
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string suffix = text.substr(i);
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"", 1},
      {"B", 1},
      {"Ki", 1ULL << 10},
      {"Mi", 1ULL << 20},
      {"Gi", 1ULL << 30},
      {"Ti", 1ULL << 40},
      {"KiB", 1ULL << 10},
      {"MiB", 1ULL << 20},
      {"GiB", 1ULL << 30},
      {"TiB", 1ULL << 40},
      {"k", 1000ULL},
      {"K", 1000ULL},
      {"KB", 1000ULL},
      {"M", 1000ULL * 1000},
      {"MB", 1000ULL * 1000},
      {"G", 1000ULL * 1000 * 1000},
      {"GB", 1000ULL * 1000 * 1000},
      {"T", 1000ULL * 1000 * 1000 * 1000},
      {"TB", 1000ULL * 1000 * 1000 * 1000},
  };
  for (const auto& [name, mult] : kUnits) {
    if (suffix != name) continue;
    if (n > UINT64_MAX / mult) return std::nullopt;
    return n * mult;
  }
  return std::nullopt;
}

}  // namespace ashiato
