// KubeTokenReviewer: TokenReviewer over the Kubernetes API
// (POST /apis/authentication.k8s.io/v1/tokenreviews). The aggregator's own
// service account needs the `system:auth-delegator` ClusterRole for it.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "aggregator/auth.h"
#include "common/kube_client.h"

namespace ashiato {

class KubeTokenReviewer : public TokenReviewer {
 public:
  explicit KubeTokenReviewer(KubeConfig config);
  // Thread-safe: each call borrows a KubeClient from a small pool.
  Result<TokenReviewResult> Review(const std::string& token, const std::string& audience) override;

  // The request body and the parsing of the answer, exposed for tests.
  static nlohmann::json RequestBody(const std::string& token, const std::string& audience);
  static Result<TokenReviewResult> ParseResponse(const nlohmann::json& review,
                                                 const std::string& audience);

 private:
  KubeConfig config_;
  std::mutex mu_;
  std::vector<std::unique_ptr<KubeClient>> idle_;
};

}  // namespace ashiato
