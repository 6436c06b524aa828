// What to do after one attempt to deliver a deployment record: done, try
// again later (5xx, 429, GitHub's rate limit, network errors: exponential
// backoff with full jitter, never sooner than Retry-After or the rate
// limit's reset), or drop it (any other 4xx: retrying cannot help).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "common/http_client.h"
#include "common/status.h"
#include "common/time_util.h"

namespace ashiato {

struct RetryOptions {
  std::chrono::milliseconds initial{std::chrono::seconds(1)};
  std::chrono::milliseconds max{std::chrono::minutes(5)};
  // A server asking for more than this (Retry-After, rate-limit reset) is
  // waited for this long only.
  std::chrono::milliseconds max_server_delay{std::chrono::hours(1)};
};

struct AttemptOutcome {
  enum class Kind { kDelivered, kRetry, kDrop };
  Kind kind = Kind::kDelivered;
  std::chrono::milliseconds delay{0};  // kRetry: wait at least this long.
  std::string error;                   // kRetry, kDrop: for the log line.
};

// The delay before attempt `attempts + 1` when the server says nothing:
// uniform in [d/2, d] with d = min(max, initial * 2^(attempts-1)).
std::chrono::milliseconds BackoffDelay(const RetryOptions& o, int64_t attempts,
                                       std::mt19937_64& rng);

// Classifies the result of attempt number `attempts` (1 = the first).
AttemptOutcome ClassifyAttempt(const Result<ClientResponse>& result, int64_t attempts,
                               const RetryOptions& o, SystemTime now, std::mt19937_64& rng);

}  // namespace ashiato
