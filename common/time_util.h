// Time helpers: RFC 3339 in UTC, the format of every timestamp we print.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ashiato {

using SystemTime = std::chrono::system_clock::time_point;

// "2026-11-24T03:00:00Z" (seconds precision, as Kubernetes prints).
std::string FormatRfc3339(SystemTime t);
// "2026-11-24T03:00:00.123456Z" (microseconds, for our own event times).
std::string FormatRfc3339Micros(SystemTime t);
// Parses "2026-11-24T03:00:00Z", with optional fraction and numeric offset.
std::optional<SystemTime> ParseRfc3339(const std::string& s);

// Injectable clock so tests can cross an hour boundary without waiting.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SystemTime Now() const = 0;
  // The process-wide real clock.
  static const Clock* Real();
};

}  // namespace ashiato
