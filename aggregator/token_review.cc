#include "aggregator/token_review.h"

#include <algorithm>

#include "common/http_client.h"

namespace ashiato {
namespace {

// The first string of extra[key], "" if none.
std::string FirstExtra(const std::map<std::string, std::vector<std::string>>& extra,
                       const std::string& key) {
  auto it = extra.find(key);
  return it == extra.end() || it->second.empty() ? "" : it->second[0];
}

}  // namespace

Result<nlohmann::json> KubeClientPool::Request(const std::string& method, const std::string& path,
                                               const nlohmann::json* body,
                                               std::chrono::milliseconds timeout) {
  std::unique_ptr<KubeClient> client;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      client = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!client) client = std::make_unique<KubeClient>(config_, "ashiato-aggregator");
  auto answer = client->Request(method, path, body, "application/json", timeout);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < 8) idle_.push_back(std::move(client));
  }
  return answer;
}

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
    r.uid = user.value("uid", "");
    if (user.contains("groups") && user["groups"].is_array()) {
      for (const auto& g : user["groups"]) {
        if (g.is_string()) r.groups.push_back(g.get<std::string>());
      }
    }
    if (user.contains("extra") && user["extra"].is_object()) {
      for (const auto& [k, v] : user["extra"].items()) {
        if (!v.is_array()) continue;
        auto& values = r.extra[k];
        for (const auto& s : v) {
          if (s.is_string()) values.push_back(s.get<std::string>());
        }
      }
    }
    r.node_name = FirstExtra(r.extra, "authentication.kubernetes.io/node-name");
    r.pod_name = FirstExtra(r.extra, "authentication.kubernetes.io/pod-name");
    r.pod_uid = FirstExtra(r.extra, "authentication.kubernetes.io/pod-uid");
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
  nlohmann::json body = RequestBody(token, audience);
  // Bounded: a hung API server must not hold an ingest thread for long.
  auto answer = pool_.Request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", &body,
                              std::chrono::seconds(5));
  if (!answer.ok()) return answer.status();
  return ParseResponse(*answer, audience);
}

nlohmann::json KubeAccessReviewer::RequestBody(const UserInfo& user, const AccessQuestion& q) {
  nlohmann::json spec = {{"user", user.username}};
  if (!user.uid.empty()) spec["uid"] = user.uid;
  if (!user.groups.empty()) spec["groups"] = user.groups;
  if (!user.extra.empty()) spec["extra"] = user.extra;
  if (!q.path.empty()) {
    spec["nonResourceAttributes"] = {{"path", q.path}, {"verb", q.verb}};
  } else {
    spec["resourceAttributes"] = {
        {"namespace", q.ns}, {"verb", q.verb}, {"group", q.group}, {"resource", q.resource}};
  }
  return {{"apiVersion", "authorization.k8s.io/v1"},
          {"kind", "SubjectAccessReview"},
          {"spec", std::move(spec)}};
}

Result<bool> KubeAccessReviewer::ParseResponse(const nlohmann::json& review) {
  if (!review.is_object() || !review.contains("status") || !review["status"].is_object()) {
    return Internal("SubjectAccessReview answer without status");
  }
  const auto& st = review["status"];
  // `denied` wins over `allowed`; an evaluation error with neither is a no.
  return st.value("allowed", false) && !st.value("denied", false);
}

Result<bool> KubeAccessReviewer::Review(const UserInfo& user, const AccessQuestion& q) {
  nlohmann::json body = RequestBody(user, q);
  auto answer = pool_.Request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", &body,
                              std::chrono::seconds(5));
  if (!answer.ok()) return answer.status();
  return ParseResponse(*answer);
}

Result<std::optional<PodPlacement>> KubePodLookup::Get(const std::string& ns,
                                                       const std::string& name) {
  auto pod =
      pool_.Request("GET", "/api/v1/namespaces/" + UrlEncode(ns) + "/pods/" + UrlEncode(name),
                    nullptr, std::chrono::seconds(5));
  if (!pod.ok()) {
    if (pod.status().code() == StatusCode::kNotFound) return std::optional<PodPlacement>();
    return pod.status();
  }
  PodPlacement p;
  if (pod->contains("metadata") && (*pod)["metadata"].is_object()) {
    p.uid = (*pod)["metadata"].value("uid", "");
  }
  if (pod->contains("spec") && (*pod)["spec"].is_object()) {
    p.node = (*pod)["spec"].value("nodeName", "");
  }
  return std::optional<PodPlacement>(std::move(p));
}

}  // namespace ashiato
