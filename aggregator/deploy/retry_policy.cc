#include "aggregator/deploy/retry_policy.h"

#include <algorithm>
#include <optional>

namespace ashiato {
namespace {

// A whole number of seconds, or nullopt.
std::optional<int64_t> Seconds(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::stoll(s);
}

std::string Truncated(const std::string& body) {
  std::string b = body.size() > 512 ? body.substr(0, 512) + "..." : body;
  std::replace(b.begin(), b.end(), '\n', ' ');
  return b;
}

}  // namespace

std::chrono::milliseconds BackoffDelay(const RetryOptions& o, int64_t attempts,
                                       std::mt19937_64& rng) {
  double d = static_cast<double>(o.initial.count());
  for (int64_t i = 1; i < attempts && d < static_cast<double>(o.max.count()); ++i) d *= 2;
  auto cap = static_cast<long long>(std::min(d, static_cast<double>(o.max.count())));
  std::uniform_int_distribution<long long> dist(cap / 2, std::max<long long>(cap, 1));
  return std::chrono::milliseconds(dist(rng));
}

AttemptOutcome ClassifyAttempt(const Result<ClientResponse>& result, int64_t attempts,
                               const RetryOptions& o, SystemTime now, std::mt19937_64& rng) {
  AttemptOutcome out;
  if (!result.ok()) {
    out.kind = AttemptOutcome::Kind::kRetry;
    out.delay = BackoffDelay(o, attempts, rng);
    out.error = result.status().ToString();
    return out;
  }
  const ClientResponse& r = *result;
  if (r.status >= 200 && r.status < 300) return out;
  // GitHub's primary rate limit answers 403 or 429 with
  // x-ratelimit-remaining: 0; its secondary limits 403/429 with Retry-After.
  auto retry_after = Seconds(r.Header("retry-after"));
  bool exhausted = r.Header("x-ratelimit-remaining") == "0";
  auto reset = Seconds(r.Header("x-ratelimit-reset"));
  bool rate_limited = r.status == 429 || (r.status == 403 && (exhausted || retry_after));
  out.error = "status " + std::to_string(r.status) + ": " + Truncated(r.body);
  if (!rate_limited && r.status >= 400 && r.status < 500) {
    out.kind = AttemptOutcome::Kind::kDrop;
    return out;
  }
  out.kind = AttemptOutcome::Kind::kRetry;
  auto delay = BackoffDelay(o, attempts, rng);
  std::chrono::milliseconds server{0};
  if (retry_after) server = std::chrono::seconds(*retry_after);
  if (exhausted && reset) {
    auto until = std::chrono::system_clock::time_point(std::chrono::seconds(*reset));
    if (until > now) {
      server = std::max(server, std::chrono::ceil<std::chrono::milliseconds>(until - now));
    }
  }
  out.delay = std::max(delay, std::min(server, o.max_server_delay));
  return out;
}

}  // namespace ashiato
