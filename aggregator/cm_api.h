// The five ConfigMap calls the hourly writer needs, behind an interface so
// unit tests use FakeConfigMapApi (cm_fake_api.h) and production the API
// server through KubeClient. Errors follow common/status.h: NotFound (404),
// AlreadyExists (create of an existing name), Conflict (409 stale
// resourceVersion), Unavailable (retry later), others.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace ashiato {

class KubeClient;

class ConfigMapApi {
 public:
  virtual ~ConfigMapApi() = default;

  virtual Result<nlohmann::json> Get(const std::string& ns, const std::string& name) = 0;
  // Returns {"items": [...]} with every ConfigMap matching `label_selector`
  // (Kubernetes selector syntax), following continue tokens.
  virtual Result<nlohmann::json> List(const std::string& ns, const std::string& label_selector) = 0;
  // Calls `fn` with each ConfigMap matching `label_selector`. Implementations
  // that page (the production one) hold one page in memory at a time, so
  // listing every hourly ConfigMap (hundreds of MiB) stays cheap. On error
  // `fn` may already have seen some items. The default calls List.
  virtual Status ListEach(const std::string& ns, const std::string& label_selector,
                          const std::function<void(const nlohmann::json&)>& fn) {
    auto list = List(ns, label_selector);
    if (!list.ok()) return list.status();
    for (const auto& item : (*list)["items"]) fn(item);
    return Status::Ok();
  }
  // POST; returns the stored object (with its resourceVersion).
  virtual Result<nlohmann::json> Create(const std::string& ns, const nlohmann::json& cm) = 0;
  // PUT with metadata.resourceVersion: Conflict when it is stale.
  virtual Result<nlohmann::json> Update(const std::string& ns, const nlohmann::json& cm) = 0;
  virtual Status Delete(const std::string& ns, const std::string& name) = 0;
};

// The production implementation (cm_api_kube.cc): /api/v1/namespaces/NS/configmaps.
// Needs get, list, create, update and delete on configmaps in `ns` (a Role).
// Lists page with limit/continue so no single answer is huge.
std::unique_ptr<ConfigMapApi> NewKubeConfigMapApi(std::unique_ptr<KubeClient> client);

}  // namespace ashiato
