#include "common/duration.h"

#include <algorithm>
#include <cctype>

namespace ashiato {

std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  bool digits_only = std::all_of(
      text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (digits_only) {
    if (text.size() > 12) return std::nullopt;
    return std::chrono::milliseconds(std::stoll(text) * 1000);
  }
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
      ++i;
    }
    if (start == i || i - start > 15) return std::nullopt;
    std::string number = text.substr(start, i - start);
    if (std::count(number.begin(), number.end(), '.') > 1 || number == ".") return std::nullopt;
    double value = std::stod(number);
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = text.substr(unit_start, i - unit_start);
    if (unit == "ms") {
      total_ms += value;
    } else if (unit == "s") {
      total_ms += value * 1000;
    } else if (unit == "m") {
      total_ms += value * 60000;
    } else if (unit == "h") {
      total_ms += value * 3600000;
    } else if (unit == "d") {  // Not Go's, but natural for retention ("7d").
      total_ms += value * 86400000;
    } else {
      return std::nullopt;
    }
  }
  // Beyond ~292 million years the value does not fit (and the cast would be
  // undefined behaviour).
  if (!(total_ms < 9.2e18)) return std::nullopt;
  return std::chrono::milliseconds(static_cast<long long>(total_ms));
}

}  // namespace ashiato
