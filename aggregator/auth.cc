#include "aggregator/auth.h"

#include "common/sha256.h"

namespace ashiato {

std::string ServiceAccountNamespace(const std::string& username) {
  static const std::string kPrefix = "system:serviceaccount:";
  if (username.compare(0, kPrefix.size(), kPrefix) != 0) return "";
  size_t colon = username.find(':', kPrefix.size());
  if (colon == std::string::npos) return "";
  return username.substr(kPrefix.size(), colon - kPrefix.size());
}

Authenticator::Authenticator(AuthOptions options, std::unique_ptr<TokenReviewer> reviewer,
                             AggregatorMetrics* metrics, std::unique_ptr<PodLookup> pods)
    : options_(std::move(options)),
      reviewer_(std::move(reviewer)),
      metrics_(metrics),
      pods_(std::move(pods)) {}

Result<std::string> Authenticator::NodeOfPod(const TokenReviewResult& review, bool* cacheable) {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pod_cache_.find(review.pod_uid);
    if (it != pod_cache_.end() && it->second.expires > now) return it->second.node;
  }
  if (!pods_) {
    *cacheable = false;
    return Status(StatusCode::kUnavailable, "token names pod " + review.pod_name +
                                                " but no node, and pods cannot be looked up");
  }
  std::string ns = ServiceAccountNamespace(review.username);
  if (metrics_) metrics_->agent_pod_lookups->Increment();
  auto pod = pods_->Get(ns, review.pod_name);
  if (!pod.ok()) {
    if (metrics_) metrics_->agent_pod_lookup_errors->Increment();
    *cacheable = false;
    return Status(StatusCode::kUnavailable, "looking up the token's pod " + ns + "/" +
                                                review.pod_name + ": " + pod.status().message());
  }
  if (!pod->has_value()) {
    return Status(StatusCode::kPermissionDenied,
                  "the token's pod " + ns + "/" + review.pod_name + " does not exist");
  }
  const PodPlacement& p = **pod;
  if (p.uid != review.pod_uid) {
    // The pod was deleted and recreated under the same name: the token
    // belongs to the old one, whatever node the new one runs on.
    return Status(StatusCode::kPermissionDenied,
                  "the token's pod " + ns + "/" + review.pod_name + " has uid " + p.uid +
                      ", the token was issued for uid " + review.pod_uid);
  }
  if (p.node.empty()) {
    *cacheable = false;
    return Status(StatusCode::kPermissionDenied,
                  "the token's pod " + ns + "/" + review.pod_name + " is not scheduled to a node");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (pod_cache_.size() >= options_.max_pod_cache_entries) pod_cache_.clear();
  pod_cache_.insert_or_assign(review.pod_uid, PodEntry{now + options_.pod_cache_ttl, p.node});
  return p.node;
}

Result<AgentIdentity> Authenticator::Decide(const TokenReviewResult& review, bool* cacheable) {
  if (!review.authenticated) {
    return Status(StatusCode::kUnauthenticated,
                  "token rejected" + (review.error.empty() ? "" : ": " + review.error));
  }
  if (review.username != options_.agent_identity) {
    return Status(StatusCode::kPermissionDenied, "identity \"" + review.username +
                                                     "\" may not push reports (want \"" +
                                                     options_.agent_identity + "\")");
  }
  // Kubernetes >= 1.30: the node is in the review.
  if (!review.node_name.empty()) return AgentIdentity{review.username, review.node_name};
  // Older servers name the pod: its node is the binding.
  if (!review.pod_name.empty() && !review.pod_uid.empty()) {
    auto node = NodeOfPod(review, cacheable);
    if (!node.ok()) return node.status();
    return AgentIdentity{review.username, *node};
  }
  if (options_.allow_unbound) return AgentIdentity{review.username, ""};
  return Status(StatusCode::kPermissionDenied,
                "the token is not bound to a pod, so its pushes cannot be bound to a node (use "
                "the pod's projected token, or start the aggregator with "
                "--allow-unbound-agent-tokens)");
}

Result<AgentIdentity> Authenticator::Authenticate(const std::string& header) {
  static const std::string kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) {
    return Status(StatusCode::kUnauthenticated, "missing bearer token");
  }
  std::string key = Sha256Hex(header.substr(kBearer.size()));
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.expires > now) {
      if (metrics_) metrics_->token_cache_hits->Increment();
      return it->second.decision;
    }
  }
  if (metrics_) metrics_->tokenreview_requests->Increment();
  auto review = reviewer_->Review(header.substr(kBearer.size()), options_.audience);
  if (!review.ok()) {
    if (metrics_) metrics_->tokenreview_errors->Increment();
    return Status(StatusCode::kUnavailable, "TokenReview failed: " + review.status().message());
  }
  bool cacheable = true;
  Result<AgentIdentity> decision = Decide(*review, &cacheable);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= options_.max_cache_entries) cache_.clear();
    auto ttl = decision.ok() ? options_.cache_ttl : options_.negative_cache_ttl;
    cache_.insert_or_assign(key, Entry{now + ttl, decision});
  }
  return decision;
}

Status Authenticator::AuthorizeNode(const AgentIdentity& who, const std::string& node) {
  if (!who.node_name.empty() && who.node_name != node) {
    return Status(StatusCode::kPermissionDenied, "token is bound to node \"" + who.node_name +
                                                     "\" but the report is for \"" + node + "\"");
  }
  return Status::Ok();
}

std::vector<std::string> Authenticator::CacheKeysForTest() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> keys;
  for (const auto& [k, e] : cache_) keys.push_back(k);
  return keys;
}

}  // namespace ashiato
