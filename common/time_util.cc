#include "common/time_util.h"

#include <cstdio>
#include <ctime>

namespace ashiato {

namespace {

std::string Format(SystemTime t, bool micros) {
  auto since = t.time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  if (since.count() < 0 && secs > since) secs -= std::chrono::seconds(1);
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (micros) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(since - secs).count();
    std::snprintf(buf, sizeof(buf), ".%06lld", static_cast<long long>(us));
    out += buf;
  }
  out += "Z";
  return out;
}

class RealClock : public Clock {
 public:
  SystemTime Now() const override { return std::chrono::system_clock::now(); }
};

}  // namespace

std::string FormatRfc3339(SystemTime t) { return Format(t, false); }
std::string FormatRfc3339Micros(SystemTime t) { return Format(t, true); }

std::optional<SystemTime> ParseRfc3339(const std::string& s) {
  // Fixed positions, digits only: "2026-11-24T03:00:00", then an optional
  // fraction and "Z" or "+hh:mm" / "-hh:mm". (sscanf's %d would also take
  // signs, spaces and short fields.)
  auto digits = [&](size_t at, size_t n, int* out) {
    if (at + n > s.size()) return false;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (s.size() < 20 || s.size() > 60 || !digits(0, 4, &y) || s[4] != '-' || !digits(5, 2, &mo) ||
      s[7] != '-' || !digits(8, 2, &d) || s[10] != 'T' || !digits(11, 2, &h) || s[13] != ':' ||
      !digits(14, 2, &mi) || s[16] != ':' || !digits(17, 2, &sec)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  std::time_t base = timegm(&tm);
  long long micros = 0;
  size_t i = 19;
  if (s[i] == '.') {
    size_t start = ++i;
    long long scale = 100000;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (scale > 0) micros += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  long offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh = 0, om = 0;
    if (!digits(i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(i + 4, 2, &om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  // SystemTime counts nanoseconds in 64 bits: years 1678..2261 only.
  constexpr long long kMaxSeconds =
      std::chrono::duration_cast<std::chrono::seconds>(SystemTime::duration::max()).count() - 1;
  long long secs = static_cast<long long>(base) - offset;
  if (secs > kMaxSeconds || secs < -kMaxSeconds) return std::nullopt;
  return SystemTime(std::chrono::seconds(secs)) + std::chrono::microseconds(micros);
}

const Clock* Clock::Real() {
  static RealClock clock;
  return &clock;
}

}  // namespace ashiato
