#include "aggregator/token_review.h"

#include <algorithm>

namespace ashiato {

KubeTokenReviewer::KubeTokenReviewer(KubeConfig config) : config_(std::move(config)) {}

nlohmann::json KubeTokenReviewer::RequestBody(const std::string& token,
                                              const std::string& audience) {
  nlohmann::json body = {{"apiVersion", "authentication.k8s.io/v1"},
                         {"kind", "TokenReview"},
                         {"spec", {{"token", token}}}};
  if (!audience.empty()) body["spec"]["audiences"] = {audience};
  return body;
}

Result<TokenReviewResult> KubeTokenReviewer::ParseResponse(const nlohmann::json& review,
                                                           const std::string& audience) {
  if (!review.is_object() || !review.contains("status") || !review["status"].is_object()) {
    return Internal("TokenReview answer without status");
  }
  const auto& st = review["status"];
  TokenReviewResult r;
  r.authenticated = st.value("authenticated", false);
  r.error = st.value("error", "");
  if (st.contains("user") && st["user"].is_object()) {
    const auto& user = st["user"];
    r.username = user.value("username", "");
    if (user.contains("extra") && user["extra"].is_object()) {
      auto it = user["extra"].find("authentication.kubernetes.io/node-name");
      if (it != user["extra"].end() && it->is_array() && !it->empty() && (*it)[0].is_string()) {
        r.node_name = (*it)[0].get<std::string>();
      }
    }
  }
  // The API server echoes the audiences the token is valid for; when we
  // asked for one, it must be among them (a server that ignores
  // spec.audiences must not let a token for another audience through).
  if (r.authenticated && !audience.empty() && st.contains("audiences") &&
      st["audiences"].is_array()) {
    const auto& auds = st["audiences"];
    if (std::find(auds.begin(), auds.end(), nlohmann::json(audience)) == auds.end()) {
      r.authenticated = false;
      r.error = "token audience does not include \"" + audience + "\"";
    }
  }
  return r;
}

Result<TokenReviewResult> KubeTokenReviewer::Review(const std::string& token,
                                                    const std::string& audience) {
  std::unique_ptr<KubeClient> client;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      client = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!client) client = std::make_unique<KubeClient>(config_, "ashiato-aggregator");
  nlohmann::json body = RequestBody(token, audience);
  // Bounded: a hung API server must not hold an ingest thread for long.
  auto answer = client->Request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", &body,
                                "application/json", std::chrono::seconds(5));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < 8) idle_.push_back(std::move(client));
  }
  if (!answer.ok()) return answer.status();
  return ParseResponse(*answer, audience);
}

}  // namespace ashiato
