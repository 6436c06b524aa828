#include "aggregator/cm_api.h"
#include "common/http_client.h"
#include "common/kube_client.h"

namespace ashiato {

namespace {

// Shards are up to ~1 MiB each: small pages keep every answer bounded.
constexpr int kListPageSize = 16;

class KubeConfigMapApi : public ConfigMapApi {
 public:
  explicit KubeConfigMapApi(std::unique_ptr<KubeClient> client) : client_(std::move(client)) {}

  Result<nlohmann::json> Get(const std::string& ns, const std::string& name) override {
    return client_->Get(Collection(ns) + "/" + name);
  }

  Result<nlohmann::json> List(const std::string& ns, const std::string& selector) override {
    nlohmann::json out = {{"items", nlohmann::json::array()}};
    Status s = ListEach(ns, selector,
                        [&out](const nlohmann::json& item) { out["items"].push_back(item); });
    if (!s.ok()) return s;
    return out;
  }

  Status ListEach(const std::string& ns, const std::string& selector,
                  const std::function<void(const nlohmann::json&)>& fn) override {
    std::string cont;
    do {
      std::string path = Collection(ns) + "?limit=" + std::to_string(kListPageSize);
      if (!selector.empty()) path += "&labelSelector=" + UrlEncode(selector);
      if (!cont.empty()) path += "&continue=" + UrlEncode(cont);
      auto page = client_->Get(path);
      if (!page.ok()) return page.status();
      if (page->contains("items") && (*page)["items"].is_array()) {
        for (const auto& item : (*page)["items"]) fn(item);
      }
      cont.clear();
      if (page->contains("metadata") && (*page)["metadata"].is_object()) {
        cont = (*page)["metadata"].value("continue", "");
      }
    } while (!cont.empty());
    return Status::Ok();
  }

  Result<nlohmann::json> Create(const std::string& ns, const nlohmann::json& cm) override {
    auto r = client_->Request("POST", Collection(ns), &cm);
    // A POST can only conflict because the name exists (409 AlreadyExists).
    if (!r.ok() && r.status().code() == StatusCode::kConflict) {
      return Status(StatusCode::kAlreadyExists, r.status().message()).set_http_status(409);
    }
    return r;
  }

  Result<nlohmann::json> Update(const std::string& ns, const nlohmann::json& cm) override {
    std::string name = cm["metadata"].value("name", "");
    return client_->Request("PUT", Collection(ns) + "/" + name, &cm);
  }

  Status Delete(const std::string& ns, const std::string& name) override {
    auto r = client_->Request("DELETE", Collection(ns) + "/" + name);
    return r.ok() ? Status::Ok() : r.status();
  }

 private:
  static std::string Collection(const std::string& ns) {
    return "/api/v1/namespaces/" + ns + "/configmaps";
  }

  std::unique_ptr<KubeClient> client_;
};

}  // namespace

std::unique_ptr<ConfigMapApi> NewKubeConfigMapApi(std::unique_ptr<KubeClient> client) {
  return std::make_unique<KubeConfigMapApi>(std::move(client));
}

}  // namespace ashiato
