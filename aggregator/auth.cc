#include "aggregator/auth.h"

#include <openssl/evp.h>

#include <cstdio>

namespace ashiato {

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  hex.reserve(len * 2);
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", md[i]);
    hex += buf;
  }
  return hex;
}

Authenticator::Authenticator(AuthOptions options, std::unique_ptr<TokenReviewer> reviewer,
                             AggregatorMetrics* metrics)
    : options_(std::move(options)), reviewer_(std::move(reviewer)), metrics_(metrics) {}

Result<AgentIdentity> Authenticator::Decide(const TokenReviewResult& review) const {
  if (!review.authenticated) {
    return Status(StatusCode::kUnauthenticated,
                  "token rejected" + (review.error.empty() ? "" : ": " + review.error));
  }
  if (review.username != options_.agent_identity) {
    return Status(StatusCode::kPermissionDenied, "identity \"" + review.username +
                                                     "\" may not push reports (want \"" +
                                                     options_.agent_identity + "\")");
  }
  return AgentIdentity{review.username, review.node_name};
}

Result<AgentIdentity> Authenticator::Authenticate(const std::string& header) {
  static const std::string kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) {
    return Status(StatusCode::kUnauthenticated, "missing bearer token");
  }
  std::string token = header.substr(kBearer.size());
  std::string key = Sha256Hex(token);
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.expires > now) {
      if (metrics_) metrics_->token_cache_hits->Increment();
      return Decide(it->second.review);
    }
  }
  if (metrics_) metrics_->tokenreview_requests->Increment();
  auto review = reviewer_->Review(token, options_.audience);
  if (!review.ok()) {
    if (metrics_) metrics_->tokenreview_errors->Increment();
    return Status(StatusCode::kUnavailable, "TokenReview failed: " + review.status().message());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= options_.max_cache_entries) cache_.clear();
    auto ttl = review->authenticated ? options_.cache_ttl : options_.negative_cache_ttl;
    cache_[key] = Entry{now + ttl, review->authenticated, *review};
  }
  return Decide(*review);
}

Status Authenticator::AuthorizeNode(const AgentIdentity& who, const std::string& node) {
  if (!who.node_name.empty() && who.node_name != node) {
    return Status(StatusCode::kPermissionDenied, "token is bound to node \"" + who.node_name +
                                                     "\" but the report is for \"" + node + "\"");
  }
  return Status::Ok();
}

}  // namespace ashiato
