// Kubesim: a Kubernetes API server simulator for tests, the demo and
// benchmarks. Serves discovery, pods/nodes/configmaps/namespaces/
// serviceaccounts with list/watch semantics of the real server, TokenRequest
// and TokenReview, plus control endpoints under /kubesim/v1/ (faults,
// recorded requests, stats). See docs/kubesim.md.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/http_server.h"
#include "common/status.h"
#include "tests/kubesim/fixtures.h"
#include "tests/kubesim/list_semantics.h"
#include "tests/kubesim/store.h"
#include "tests/kubesim/tls_cert.h"
#include "tests/kubesim/tokens.h"

namespace kubesim {

struct KubesimOptions {
  // Address to serve on; port 0 picks a free port.
  std::string listen = "127.0.0.1:0";
  // Starting cluster: node-1..node-N with this many pods each.
  int nodes = 3;
  int pods_per_node = 4;
  // Where to write the kubeconfig once serving ("" = don't).
  std::string kubeconfig_out;
  // Serve HTTPS with a generated CA.
  bool tls = false;
  // Pod changes per second made by the churn generator (0 = none).
  double churn = 0;
  // Seed for names, UIDs and churn choices.
  uint64_t seed = 1;
  // Load state from here at start if present; save on Stop().
  std::string state_file;
  // Watch history window (events) for resuming watches.
  size_t history_size = 100000;
  // BOOKMARK interval for watches with allowWatchBookmarks.
  int bookmark_interval_ms = 1000;
  // Append one JSON line per request to this file ("" = off).
  std::string request_log;
  // Requests kept for GET /kubesim/v1/requests.
  size_t request_ring = 20000;
  // Admin bearer token ("" = random, or the one in the state file).
  std::string admin_token;
  // The API server's own audience for service account tokens.
  std::string api_audience = "https://kubernetes.default.svc.cluster.local";
  // Bind unscheduled pods and mark created pods Running after this delay,
  // like a scheduler and kubelet would (< 0 = off).
  int kubelet_delay_ms = -1;
  // A graceful pod delete sets deletionTimestamp and removes the pod after
  // this delay, like a kubelet (0 = pods are removed at once).
  int pod_deletion_delay_ms = 0;
  // Faults active from the start (also settable at /kubesim/v1/faults).
  double error_rate = 0;
  int error_code = 500;
  int latency_ms = 0;
  double drop_watches_every_seconds = 0;
  // Requests without a token are served as "system:anonymous" (full access,
  // there is no RBAC). kubectl sends no credentials over plain HTTP
  // (client-go applies auth info only with TLS), so this defaults to on
  // without --tls and off with it. A bad token is always 401.
  std::optional<bool> anonymous_auth;
  // HTTP server event threads and connection limit.
  unsigned threads = 1;
  unsigned max_connections = 30000;
  // The Kubernetes version served ("1.32"): /version, and the shape of
  // TokenReview answers for pod-bound tokens (< 1.30: only the pod-name and
  // pod-uid extras; >= 1.30: also credential-id, node-name, node-uid).
  std::string kube_version = "1.32";
  // "AlwaysAllow" (default: any authenticated user may do anything) or
  // "RBAC" (kubesim's own requests are authorized against its Roles and
  // bindings, as the API server does; system:masters may do anything).
  // SubjectAccessReview evaluates RBAC either way.
  std::string authorization_mode = "AlwaysAllow";
};

class Kubesim {
 public:
  static ashiato::Result<std::unique_ptr<Kubesim>> Start(KubesimOptions options);
  ~Kubesim();

  // Closes watches, stops serving, saves the state file. Idempotent.
  void Stop();

  uint16_t port() const { return server_->port(); }
  std::string url() const;
  const std::string& admin_token() const { return admin_token_; }
  const std::string& ca_pem() const { return tls_.ca_pem; }
  Store& store() { return *store_; }

  // The kubeconfig text pointing at this instance.
  std::string KubeconfigYaml() const;

 private:
  struct Faults {
    double error_rate = 0;
    int error_code = 500;
    int retry_after_seconds = 1;
    std::string error_path;  // Only paths containing this fail ("" = all API paths).
    int latency_ms = 0;
    double drop_watches_every_seconds = 0;
    int64_t token_clock_offset_seconds = 0;
  };
  struct User {
    std::string name;
    bool admin = false;  // The admin token (system:masters) or anonymous over plain HTTP.
    std::vector<std::string> groups;
    std::string uid;
    std::map<std::string, std::vector<std::string>> extra;
  };
  struct Route {
    std::string verb;  // get list watch create update patch delete deletecollection
    std::string resource, ns, name, subresource;
    std::optional<Kind> kind;
    std::string group;  // API group of the resource, "" = core.
  };
  // Lists answered, by where the real server would read them.
  struct ListSourceStats {
    uint64_t requests = 0, bytes = 0;
    std::map<std::string, uint64_t> by_semantics;  // ListSemanticsName -> requests.
    uint64_t objects_read = 0;                     // etcd only: see ListResult::range_read.
  };
  struct ListStats {
    ListSourceStats cache, etcd;
    uint64_t expired = 0;  // Answered 410 (compacted RV or continue token).
  };
  struct Delayed {
    std::chrono::steady_clock::time_point due;
    std::shared_ptr<ashiato::ResponseStream> stream;
    std::string body;
  };

  explicit Kubesim(KubesimOptions options);
  ashiato::HttpResponse Handle(const ashiato::HttpRequest& req);
  ashiato::HttpResponse Dispatch(const ashiato::HttpRequest& req, Route* route, User* user);
  ashiato::HttpResponse Control(const ashiato::HttpRequest& req);
  // A resource request under `prefix` ("/api/v1/" or "/apis/GROUP/v1/").
  ashiato::HttpResponse Resource(const ashiato::HttpRequest& req, Route& route, const User& user,
                                 const std::string& prefix, const std::string& group);
  // With --authorization-mode RBAC: the 403 for a request the user may not make.
  std::optional<ashiato::HttpResponse> Forbid(const Route& route, const User& user);
  ashiato::HttpResponse SubjectAccessReview(const ashiato::HttpRequest& req, const User& user,
                                            bool self);
  // The user a request acts as: `who`, or whom it impersonates (Impersonate-User).
  std::optional<User> Impersonated(const ashiato::HttpRequest& req, const User& who,
                                   ashiato::HttpResponse* error);
  // True iff the served version is older than 1.`minor`.
  bool OlderThan(int minor) const;
  ashiato::HttpResponse List(const ashiato::HttpRequest& req, const Route& route);
  ashiato::HttpResponse Watch(const ashiato::HttpRequest& req, const Route& route);
  ashiato::HttpResponse Create(const ashiato::HttpRequest& req, const Route& route);
  ashiato::HttpResponse Replace(const ashiato::HttpRequest& req, const Route& route);
  ashiato::HttpResponse Patch(const ashiato::HttpRequest& req, const Route& route);
  ashiato::HttpResponse Delete(const ashiato::HttpRequest& req, const Route& route);
  ashiato::HttpResponse DeleteCollection(const ashiato::HttpRequest& req, const Route& route);
  ashiato::HttpResponse TokenRequest(const ashiato::HttpRequest& req, const Route& route);
  ashiato::HttpResponse TokenReview(const ashiato::HttpRequest& req);
  std::optional<User> Authenticate(const std::string& token);
  // Checks a service account token; on failure `error` says why.
  std::optional<TokenInfo> CheckToken(const std::string& token, std::string* error);
  int64_t TokenNow() const;
  void CountList(const std::string& resource, const ListPlan& plan, size_t bytes,
                 uint64_t range_read, bool expired);
  nlohmann::json ListStatsJson();
  void Record(const ashiato::HttpRequest& req, const Route& route, const User& user, int code,
              size_t bytes);
  void Ticker();
  void Churn();
  void ScheduleKubelet(const std::string& ns, const std::string& name);
  Faults faults();
  ashiato::Status SaveState();
  ashiato::Status LoadState();
  ashiato::Status WriteKubeconfig();

  KubesimOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ashiato::HttpServer> server_;
  TokenTable tokens_;
  TlsMaterial tls_;
  std::string admin_token_;
  bool loaded_state_ = false;

  std::mutex fixtures_mu_;
  std::unique_ptr<Fixtures> fixtures_;

  std::mutex faults_mu_;
  Faults faults_;
  std::mt19937_64 fault_rng_;

  std::mutex record_mu_;
  std::deque<nlohmann::json> requests_;
  uint64_t request_seq_ = 0;
  std::map<std::string, std::map<std::string, std::pair<uint64_t, uint64_t>>>
      stats_;  // verb -> resource -> (n, bytes)
  uint64_t requests_total_ = 0, bytes_total_ = 0;
  std::map<std::string, ListStats> list_stats_;  // By resource.
  FILE* request_log_ = nullptr;

  std::mutex work_mu_;
  std::condition_variable work_cv_;
  bool stopping_ = false;
  std::vector<Delayed> delayed_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::pair<std::string, std::string>>>
      kubelet_queue_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::pair<std::string, std::string>>>
      pending_deletes_;
  std::thread ticker_, churn_;
  std::atomic<bool> stopped_{false};
};

}  // namespace kubesim
