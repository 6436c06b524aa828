// PodApi: the two API server calls the reflector makes (GET a list, open a
// watch), behind an interface so reflector tests can script the server.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/kube_client.h"
#include "common/status.h"

namespace ashiato {

class PodApi {
 public:
  virtual ~PodApi() = default;
  virtual Result<nlohmann::json> Get(const std::string& path_and_query) = 0;
  // As KubeClient::Watch.
  virtual Status Watch(const std::string& path_and_query,
                       const std::function<bool(const nlohmann::json& event)>& on_event,
                       std::chrono::milliseconds timeout) = 0;
  // Aborts the call in flight and every later one. Thread-safe.
  virtual void Cancel() = 0;
};

// PodApi over a real KubeClient.
class KubePodApi : public PodApi {
 public:
  explicit KubePodApi(KubeClient* client) : client_(client) {}
  Result<nlohmann::json> Get(const std::string& path_and_query) override {
    return client_->Get(path_and_query);
  }
  Status Watch(const std::string& path_and_query,
               const std::function<bool(const nlohmann::json& event)>& on_event,
               std::chrono::milliseconds timeout) override {
    return client_->Watch(path_and_query, on_event, timeout);
  }
  void Cancel() override { client_->Cancel(); }

 private:
  KubeClient* client_;
};

}  // namespace ashiato
