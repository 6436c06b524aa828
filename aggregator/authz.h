// Authorization of readers (the query API and /metrics), the way the API
// server's delegated authorization (and kube-rbac-proxy) does it: the bearer
// token is checked with TokenReview, then what that user may do with
// SubjectAccessReview:
//  - the query API answers only about namespaces the user may `list pods`
//    in (cluster-wide when the user may list pods in all namespaces);
//  - /metrics needs `get` on the non-resource URL /metrics.
// Both reviews are cached briefly (per token hash; per user and question),
// in bounded caches. Calls are made on the caller's thread with no lock held.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "aggregator/auth.h"
#include "aggregator/metrics.h"
#include "common/status.h"

namespace ashiato {

// Who a reader is (from TokenReview), as SubjectAccessReview wants it.
struct UserInfo {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
};

// The question a SubjectAccessReview asks: a resource (namespace "" = all
// namespaces) or, when `path` is set, a non-resource URL.
struct AccessQuestion {
  std::string verb;
  std::string group;  // API group, "" = core.
  std::string resource;
  std::string ns;
  std::string path;  // Non-resource URL, e.g. "/metrics".
};

// The API call, behind an interface so tests need no API server.
class AccessReviewer {
 public:
  virtual ~AccessReviewer() = default;
  // true iff allowed. An error when the API server could not answer.
  virtual Result<bool> Review(const UserInfo& user, const AccessQuestion& question) = 0;
};

// The namespaces a reader may see: all, or a set (maybe empty).
struct NamespaceAccess {
  bool all = false;
  std::vector<std::string> namespaces;  // Sorted, when !all.

  static NamespaceAccess All() { return NamespaceAccess{true, {}}; }
  bool Allows(const std::string& ns) const;
  // nullptr for all namespaces, else the sorted list (for filters).
  const std::vector<std::string>* filter() const { return all ? nullptr : &namespaces; }
};

struct ReadAuthOptions {
  // Audience reader tokens must carry ("" = the API server's own).
  std::string audience = "ashiato";
  // Users that may never read (the agent identity: a stolen push token
  // must not read the cluster's history).
  std::vector<std::string> denied_users;
  // Reuse of a TokenReview answer: positive, negative.
  std::chrono::milliseconds token_ttl{std::chrono::seconds(30)};
  std::chrono::milliseconds negative_token_ttl{std::chrono::seconds(5)};
  // Reuse of a SubjectAccessReview answer (allowed or denied alike).
  std::chrono::milliseconds access_ttl{std::chrono::seconds(10)};
  // Entries at most in each cache; a full cache is cleared.
  size_t max_token_entries = 10000;
  size_t max_access_entries = 100000;
  // SubjectAccessReviews in flight at once for one request.
  unsigned parallel_reviews = 8;
};

class ReadAuthorizer {
 public:
  ReadAuthorizer(ReadAuthOptions options, std::unique_ptr<TokenReviewer> tokens,
                 std::unique_ptr<AccessReviewer> access, AggregatorMetrics* metrics = nullptr);

  // The user behind an Authorization header value, reviewed for `audience`
  // ("" = the API server's own). Unauthenticated (401) when missing or
  // rejected, PermissionDenied (403) for a denied user, Unavailable (503).
  Result<UserInfo> Authenticate(const std::string& authorization_header,
                                const std::string& audience);
  // Same, for the configured reader audience.
  Result<UserInfo> Authenticate(const std::string& authorization_header) {
    return Authenticate(authorization_header, options_.audience);
  }

  // May `user` do this? Cached; Unavailable when the API server could not say.
  Result<bool> Allowed(const UserInfo& user, const AccessQuestion& question);
  // May `user` list pods in `ns` ("" = in all namespaces)?
  Result<bool> MayListPods(const UserInfo& user, const std::string& ns);
  // The namespaces among `candidates` whose pods `user` may list, or all of
  // them when the user may list pods cluster-wide.
  Result<NamespaceAccess> PodAccess(const UserInfo& user,
                                    const std::vector<std::string>& candidates);

  // Test hook: the token cache's keys (SHA-256 hex, never a token).
  std::vector<std::string> TokenCacheKeysForTest();

 private:
  struct TokenEntry {
    std::chrono::steady_clock::time_point expires;
    Result<UserInfo> user;
  };
  struct AccessEntry {
    std::chrono::steady_clock::time_point expires;
    bool allowed;
  };
  static std::string AccessKey(const UserInfo& user, const AccessQuestion& q);

  ReadAuthOptions options_;
  std::unique_ptr<TokenReviewer> tokens_;
  std::unique_ptr<AccessReviewer> access_;
  AggregatorMetrics* metrics_;
  std::mutex mu_;
  std::unordered_map<std::string, TokenEntry> token_cache_;    // By SHA-256(audience, token).
  std::unordered_map<std::string, AccessEntry> access_cache_;  // By SHA-256(user, question).
};

}  // namespace ashiato
