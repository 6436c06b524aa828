#include "aggregator/authz.h"

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/sha256.h"

namespace ashiato {

bool NamespaceAccess::Allows(const std::string& ns) const {
  return all || std::binary_search(namespaces.begin(), namespaces.end(), ns);
}

ReadAuthorizer::ReadAuthorizer(ReadAuthOptions options, std::unique_ptr<TokenReviewer> tokens,
                               std::unique_ptr<AccessReviewer> access, AggregatorMetrics* metrics)
    : options_(std::move(options)),
      tokens_(std::move(tokens)),
      access_(std::move(access)),
      metrics_(metrics) {}

Result<UserInfo> ReadAuthorizer::Authenticate(const std::string& header,
                                              const std::string& audience) {
  static const std::string kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) {
    return Status(StatusCode::kUnauthenticated,
                  "a bearer token is required (Authorization: Bearer ...)");
  }
  // The audience is part of the key: a token valid for one is not for another.
  std::string key = Sha256Hex(audience + '\n' + header.substr(kBearer.size()));
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = token_cache_.find(key);
    if (it != token_cache_.end() && it->second.expires > now) {
      if (metrics_) metrics_->token_cache_hits->Increment();
      return it->second.user;
    }
  }
  if (metrics_) metrics_->tokenreview_requests->Increment();
  auto review = tokens_->Review(header.substr(kBearer.size()), audience);
  if (!review.ok()) {
    if (metrics_) metrics_->tokenreview_errors->Increment();
    return Status(StatusCode::kUnavailable, "TokenReview failed: " + review.status().message());
  }
  Result<UserInfo> user =
      Status(StatusCode::kUnauthenticated,
             "token rejected" + (review->error.empty() ? "" : ": " + review->error));
  if (review->authenticated) {
    if (std::find(options_.denied_users.begin(), options_.denied_users.end(), review->username) !=
        options_.denied_users.end()) {
      user = Status(StatusCode::kPermissionDenied,
                    "\"" + review->username + "\" may push reports but not read");
    } else {
      user = UserInfo{review->username, review->uid, review->groups, review->extra};
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (token_cache_.size() >= options_.max_token_entries) token_cache_.clear();
  token_cache_.insert_or_assign(
      key, TokenEntry{now + (user.ok() ? options_.token_ttl : options_.negative_token_ttl), user});
  return user;
}

std::string ReadAuthorizer::AccessKey(const UserInfo& u, const AccessQuestion& q) {
  nlohmann::json j = {u.username, u.uid,      u.groups, u.extra, q.verb,
                      q.group,    q.resource, q.ns,     q.path};
  return Sha256Hex(j.dump());
}

Result<bool> ReadAuthorizer::Allowed(const UserInfo& user, const AccessQuestion& q) {
  std::string key = AccessKey(user, q);
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = access_cache_.find(key);
    if (it != access_cache_.end() && it->second.expires > now) {
      if (metrics_) metrics_->access_cache_hits->Increment();
      return it->second.allowed;
    }
  }
  if (metrics_) metrics_->sar_requests->Increment();
  auto allowed = access_->Review(user, q);
  if (!allowed.ok()) {
    if (metrics_) metrics_->sar_errors->Increment();
    return Status(StatusCode::kUnavailable,
                  "SubjectAccessReview failed: " + allowed.status().message());
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (access_cache_.size() >= options_.max_access_entries) access_cache_.clear();
  access_cache_.insert_or_assign(key, AccessEntry{now + options_.access_ttl, *allowed});
  return *allowed;
}

Result<bool> ReadAuthorizer::MayListPods(const UserInfo& user, const std::string& ns) {
  return Allowed(user, AccessQuestion{"list", "", "pods", ns, ""});
}

Result<NamespaceAccess> ReadAuthorizer::PodAccess(const UserInfo& user,
                                                  const std::vector<std::string>& candidates) {
  auto all = MayListPods(user, "");
  if (!all.ok()) return all.status();
  if (*all) return NamespaceAccess::All();
  std::vector<std::string> sorted = candidates;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  // One review per namespace, a few at a time, for those the cache does not
  // know: the first request of a user in a cluster with many namespaces.
  std::vector<char> allowed(sorted.size(), 0);
  std::vector<Status> errors(sorted.size());
  std::vector<size_t> misses;
  {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < sorted.size(); ++i) {
      auto it =
          access_cache_.find(AccessKey(user, AccessQuestion{"list", "", "pods", sorted[i], ""}));
      if (it != access_cache_.end() && it->second.expires > now) {
        allowed[i] = it->second.allowed ? 1 : 0;
      } else {
        misses.push_back(i);
      }
    }
    if (metrics_)
      metrics_->access_cache_hits->Increment(static_cast<double>(sorted.size() - misses.size()));
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t m; (m = next.fetch_add(1)) < misses.size();) {
      size_t i = misses[m];
      auto r = MayListPods(user, sorted[i]);
      if (r.ok()) {
        allowed[i] = *r ? 1 : 0;
      } else {
        errors[i] = r.status();
      }
    }
  };
  size_t helpers = std::min<size_t>(std::max(1u, options_.parallel_reviews), misses.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < helpers; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  NamespaceAccess out;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (!errors[i].ok()) return errors[i];
    if (allowed[i]) out.namespaces.push_back(sorted[i]);
  }
  return out;
}

std::vector<std::string> ReadAuthorizer::TokenCacheKeysForTest() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> keys;
  for (const auto& [k, e] : token_cache_) keys.push_back(k);
  return keys;
}

}  // namespace ashiato
