// The aggregator's calls to the Kubernetes API for authentication and
// authorization, each borrowing a KubeClient from a small pool (thread-safe):
//  - KubeTokenReviewer: POST authentication.k8s.io/v1 tokenreviews;
//  - KubeAccessReviewer: POST authorization.k8s.io/v1 subjectaccessreviews;
//  - KubePodLookup: GET one pod (binding pod-bound agent tokens to a node).
// The aggregator's service account needs `create` on tokenreviews and
// subjectaccessreviews (what `system:auth-delegator` grants) and `get` on
// pods in the agents' namespace.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "aggregator/auth.h"
#include "aggregator/authz.h"
#include "common/kube_client.h"

namespace ashiato {

// A few KubeClients shared by threads.
class KubeClientPool {
 public:
  explicit KubeClientPool(KubeConfig config) : config_(std::move(config)) {}
  // One request on a pooled client; bounded by `timeout`.
  Result<nlohmann::json> Request(const std::string& method, const std::string& path,
                                 const nlohmann::json* body, std::chrono::milliseconds timeout);

 private:
  KubeConfig config_;
  std::mutex mu_;
  std::vector<std::unique_ptr<KubeClient>> idle_;
};

class KubeTokenReviewer : public TokenReviewer {
 public:
  explicit KubeTokenReviewer(KubeConfig config) : pool_(std::move(config)) {}
  Result<TokenReviewResult> Review(const std::string& token, const std::string& audience) override;

  // The request body and the parsing of the answer, exposed for tests.
  static nlohmann::json RequestBody(const std::string& token, const std::string& audience);
  static Result<TokenReviewResult> ParseResponse(const nlohmann::json& review,
                                                 const std::string& audience);

 private:
  KubeClientPool pool_;
};

class KubeAccessReviewer : public AccessReviewer {
 public:
  explicit KubeAccessReviewer(KubeConfig config) : pool_(std::move(config)) {}
  Result<bool> Review(const UserInfo& user, const AccessQuestion& question) override;

  // The request body and the parsing of the answer, exposed for tests.
  static nlohmann::json RequestBody(const UserInfo& user, const AccessQuestion& question);
  static Result<bool> ParseResponse(const nlohmann::json& review);

 private:
  KubeClientPool pool_;
};

class KubePodLookup : public PodLookup {
 public:
  explicit KubePodLookup(KubeConfig config) : pool_(std::move(config)) {}
  Result<std::optional<PodPlacement>> Get(const std::string& ns, const std::string& name) override;

 private:
  KubeClientPool pool_;
};

}  // namespace ashiato
