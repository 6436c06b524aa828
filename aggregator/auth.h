// Authentication of agents on POST /v1/reports: a bearer token checked with
// the API server's TokenReview (authentication.k8s.io/v1), cached for a short
// TTL so a steady stream of reports costs the API server almost nothing, and
// bound to the node of the pod the token was issued for:
//  - Kubernetes >= 1.30 names the node in the review (the
//    `authentication.kubernetes.io/node-name` extra);
//  - older servers name only the pod (`pod-name`, `pod-uid`): the pod is
//    looked up (cached by uid; a pod never changes node) and a uid that does
//    not match refuses the token;
//  - a token bound to no pod is refused unless allow_unbound.
// Tokens never appear in the cache (keyed by SHA-256), logs or errors.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "aggregator/metrics.h"
#include "common/status.h"

namespace ashiato {

// What a TokenReview said about a token.
struct TokenReviewResult {
  bool authenticated = false;
  std::string username;   // status.user.username
  std::string node_name;  // extra["authentication.kubernetes.io/node-name"][0], "" if none.
  std::string error;      // status.error, when not authenticated.
  std::string uid;        // status.user.uid
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
  std::string pod_name;  // extra ".../pod-name"[0], "" if none.
  std::string pod_uid;   // extra ".../pod-uid"[0], "" if none.
};

// The API call, behind an interface so tests need no API server.
class TokenReviewer {
 public:
  virtual ~TokenReviewer() = default;
  // Asks the API server. A non-OK Status means the review itself failed
  // (network, 5xx): the caller answers 503, not 401. `audience` "" asks for
  // the API server's own audiences.
  virtual Result<TokenReviewResult> Review(const std::string& token,
                                           const std::string& audience) = 0;
};

// Where a pod runs, for binding a pod-bound token to its node.
struct PodPlacement {
  std::string uid;
  std::string node;  // spec.nodeName, "" while unscheduled.
};

// GET of one pod, behind an interface so tests need no API server.
class PodLookup {
 public:
  virtual ~PodLookup() = default;
  // nullopt when the pod does not exist; an error when the API server could
  // not be asked (the caller answers 503).
  virtual Result<std::optional<PodPlacement>> Get(const std::string& ns,
                                                  const std::string& name) = 0;
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
  // Accept tokens bound to no pod (then to no node): tests, agents outside
  // the cluster. Off: such a token is refused (403).
  bool allow_unbound = false;
  // Pods looked up for binding, remembered by uid at most this long and
  // this many (cleared when full).
  std::chrono::milliseconds pod_cache_ttl{std::chrono::minutes(10)};
  size_t max_pod_cache_entries = 20000;
};

// The authenticated caller.
struct AgentIdentity {
  std::string username;
  std::string node_name;  // Bound node of the token, "" when unbound.
};

class Authenticator {
 public:
  // `pods` is needed for pod-bound tokens without a node-name extra
  // (Kubernetes < 1.30); without it such tokens are refused with 503.
  Authenticator(AuthOptions options, std::unique_ptr<TokenReviewer> reviewer,
                AggregatorMetrics* metrics = nullptr, std::unique_ptr<PodLookup> pods = nullptr);

  // Checks the Authorization header value. Unauthenticated (401) when
  // missing or rejected, PermissionDenied (403) for another identity or a
  // token that cannot be bound to a node, Unavailable (503) when the API
  // server could not be asked. Thread-safe; a cache miss makes one
  // TokenReview call (and maybe one pod GET) on the calling thread, with no
  // lock held.
  Result<AgentIdentity> Authenticate(const std::string& authorization_header);

  // PermissionDenied when the token is bound to a node other than `node`.
  static Status AuthorizeNode(const AgentIdentity& who, const std::string& node);

  // Test hooks: the token cache's keys (SHA-256 hex, never a token) and size.
  std::vector<std::string> CacheKeysForTest();

 private:
  struct Entry {
    std::chrono::steady_clock::time_point expires;
    Result<AgentIdentity> decision;
  };
  struct PodEntry {
    std::chrono::steady_clock::time_point expires;
    std::string node;
  };
  // The decision for a review; `cacheable` false for transient failures.
  Result<AgentIdentity> Decide(const TokenReviewResult& review, bool* cacheable);
  // The node of the token's pod, looked up (and cached) by uid.
  Result<std::string> NodeOfPod(const TokenReviewResult& review, bool* cacheable);

  AuthOptions options_;
  std::unique_ptr<TokenReviewer> reviewer_;
  AggregatorMetrics* metrics_;
  std::unique_ptr<PodLookup> pods_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;         // By SHA-256 of the token.
  std::unordered_map<std::string, PodEntry> pod_cache_;  // By pod uid.
};

// The namespace of a service account username
// ("system:serviceaccount:NS:NAME" -> "NS"); "" for any other user.
std::string ServiceAccountNamespace(const std::string& username);

}  // namespace ashiato
