// Authentication of agents on POST /v1/reports: a bearer token checked with
// the API server's TokenReview (authentication.k8s.io/v1), cached for a short
// TTL so a steady stream of reports costs the API server almost nothing.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "aggregator/metrics.h"
#include "common/status.h"

namespace ashiato {

// What a TokenReview said about a token.
struct TokenReviewResult {
  bool authenticated = false;
  std::string username;   // status.user.username
  std::string node_name;  // extra["authentication.kubernetes.io/node-name"][0], "" if none.
  std::string error;      // status.error, when not authenticated.
};

// The API call, behind an interface so tests need no API server.
class TokenReviewer {
 public:
  virtual ~TokenReviewer() = default;
  // Asks the API server. A non-OK Status means the review itself failed
  // (network, 5xx): the caller answers 503, not 401.
  virtual Result<TokenReviewResult> Review(const std::string& token,
                                           const std::string& audience) = 0;
};

struct AuthOptions {
  // The only username allowed to push.
  std::string agent_identity = "system:serviceaccount:ashiato:ashiato-agent";
  // Audience the token must be bound to ("" = the API server's default).
  std::string audience = "ashiato";
  // How long a positive review is reused.
  std::chrono::milliseconds cache_ttl{std::chrono::seconds(30)};
  // How long a negative review is reused (shields the API server from a
  // misconfigured agent retrying a bad token).
  std::chrono::milliseconds negative_cache_ttl{std::chrono::seconds(5)};
  // Cached tokens at most; the cache is cleared when full.
  size_t max_cache_entries = 20000;
};

// The authenticated caller.
struct AgentIdentity {
  std::string username;
  std::string node_name;  // Bound node of the token, "" when unbound.
};

class Authenticator {
 public:
  Authenticator(AuthOptions options, std::unique_ptr<TokenReviewer> reviewer,
                AggregatorMetrics* metrics = nullptr);

  // Checks the Authorization header value. Unauthenticated (401) when
  // missing or rejected, PermissionDenied (403) for another identity,
  // Unavailable (503) when the API server could not be asked. Thread-safe;
  // a cache miss makes one TokenReview call on the calling thread.
  Result<AgentIdentity> Authenticate(const std::string& authorization_header);

  // PermissionDenied when the token is bound to a node other than `node`.
  static Status AuthorizeNode(const AgentIdentity& who, const std::string& node);

 private:
  struct Entry {
    std::chrono::steady_clock::time_point expires;
    bool authenticated;
    TokenReviewResult review;
  };
  Result<AgentIdentity> Decide(const TokenReviewResult& review) const;

  AuthOptions options_;
  std::unique_ptr<TokenReviewer> reviewer_;
  AggregatorMetrics* metrics_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;  // By SHA-256 of the token.
};

// SHA-256 of `data` as lowercase hex.
std::string Sha256Hex(const std::string& data);

}  // namespace ashiato
