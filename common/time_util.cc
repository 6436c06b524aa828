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
  int y, mo, d, h, mi, sec;
  char tail[64] = {0};
  if (s.size() < 20 || s.size() > 60) return std::nullopt;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%63s", &y, &mo, &d, &h, &mi, &sec, tail) < 6) {
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
  std::string rest = tail;
  long long micros = 0;
  size_t i = 0;
  if (i < rest.size() && rest[i] == '.') {
    ++i;
    long long scale = 100000;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) {
      if (scale > 0) micros += (rest[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
  }
  long offset = 0;
  if (i < rest.size() && (rest[i] == 'Z' || rest[i] == 'z')) {
    ++i;
  } else if (i < rest.size() && (rest[i] == '+' || rest[i] == '-')) {
    int oh = 0, om = 0;
    if (std::sscanf(rest.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    offset = (oh * 3600 + om * 60) * (rest[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != rest.size()) return std::nullopt;
  return SystemTime(std::chrono::seconds(base - offset)) + std::chrono::microseconds(micros);
}

const Clock* Clock::Real() {
  static RealClock clock;
  return &clock;
}

}  // namespace ashiato
