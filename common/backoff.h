// Exponential backoff with full jitter, reset after a healthy period (as
// client-go's wait.Backoff with a reset timer).
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace ashiato {

struct BackoffOptions {
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{30000};
  double factor = 2.0;
  // After this long without a failure the delay starts from `initial` again.
  std::chrono::milliseconds reset_after{60000};
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {}, uint64_t seed = std::random_device{}())
      : options_(options), rng_(seed), current_(options.initial) {}

  // Returns how long to wait before the next attempt: uniform in
  // [current/2, current], then grows current by `factor` up to `max`.
  std::chrono::milliseconds Next(
      std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    if (last_failure_.time_since_epoch().count() != 0 &&
        now - last_failure_ > options_.reset_after) {
      current_ = options_.initial;
    }
    last_failure_ = now;
    auto cur = current_.count();
    std::uniform_int_distribution<long long> dist(cur / 2, std::max<long long>(cur, 1));
    auto delay = std::chrono::milliseconds(dist(rng_));
    current_ = std::min(options_.max, std::chrono::milliseconds(static_cast<long long>(
                                          static_cast<double>(cur) * options_.factor)));
    return delay;
  }

  // Call after a success that proves health (e.g. a watch that ran a while).
  void Reset() { current_ = options_.initial; }

 private:
  BackoffOptions options_;
  std::mt19937_64 rng_;
  std::chrono::milliseconds current_;
  std::chrono::steady_clock::time_point last_failure_{};
};

}  // namespace ashiato
