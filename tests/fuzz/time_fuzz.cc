// RFC 3339 timestamps (pod timestamps, exec credential expiry, query
// parameters): ParseRfc3339 and the formatters.
//
// Invariants: what parses has the strict shape
// YYYY-MM-DDTHH:MM:SS[.fraction](Z|z|+HH:MM|-HH:MM) with fields in range;
// Format(Parse(x)) parses back to the same instant (microseconds) for years
// 0001..9999.
#include <cctype>
#include <string>

#include "common/time_util.h"
#include "tests/fuzz/fuzz.h"

namespace {

bool Digits(const std::string& s, size_t at, size_t n, int* out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// The grammar of RFC 3339 section 5.6 (with 'T' only, as Kubernetes writes).
bool StrictRfc3339(const std::string& s) {
  int y, mo, d, h, mi, sec;
  if (!Digits(s, 0, 4, &y) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d) || s[10] != 'T' || !Digits(s, 11, 2, &h) ||
      s[13] != ':' || !Digits(s, 14, 2, &mi) || s[16] != ':' || !Digits(s, 17, 2, &sec)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  size_t i = 19;
  if (s[i] == '.') {
    size_t start = ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start) return false;
  }
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == s.size();
  int oh, om;
  return i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && Digits(s, i + 1, 2, &oh) &&
         s[i + 3] == ':' && Digits(s, i + 4, 2, &om) && oh <= 23 && om <= 59;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ashiato;
  std::string text(fuzz::AsText(data, size));
  auto t = ParseRfc3339(text);
  if (!t) return 0;
  FUZZ_CHECK(StrictRfc3339(text), "accepted a malformed timestamp: " + text);
  std::string micros = FormatRfc3339Micros(*t);
  int year = 0;
  if (Digits(micros, 0, 4, &year) && micros[4] == '-' && year >= 1) {
    auto back = ParseRfc3339(micros);
    FUZZ_CHECK(back && *back == *t, text + " -> " + micros + " does not parse back");
    auto secs = ParseRfc3339(FormatRfc3339(*t));
    FUZZ_CHECK(secs && *t - *secs < std::chrono::seconds(1) && *secs <= *t,
               "FormatRfc3339 of " + text);
  }
  return 0;
}
