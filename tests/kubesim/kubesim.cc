#include "tests/kubesim/kubesim.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/time_util.h"
#include "tests/kubesim/patch.h"
#include "tests/kubesim/protobuf.h"
#include "tests/kubesim/rbac.h"
#include "tests/kubesim/tables.h"

namespace kubesim {
namespace {

using ashiato::HttpRequest;
using ashiato::HttpResponse;
using json = nlohmann::json;

HttpResponse ErrorResponse(const ApiError& e) {
  HttpResponse r = HttpResponse::Json(e.code, e.ToString());
  if (e.retry_after_seconds > 0)
    r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_seconds));
  return r;
}

// Reads labelSelector and fieldSelector; returns the 400 to send when either
// is invalid.
std::optional<HttpResponse> ParseSelectors(const HttpRequest& req, Kind kind, LabelSelector* labels,
                                           FieldSelector* fields) {
  auto ls = ParseLabelSelector(req.Query("labelSelector"));
  if (!ls.ok()) return ErrorResponse(ls.error());
  auto fs = FieldSelector::Parse(req.Query("fieldSelector"), kind);
  if (!fs.ok()) return ErrorResponse(fs.error());
  *labels = *ls;
  *fields = *fs;
  return std::nullopt;
}

HttpResponse NotFoundPath() {
  return ErrorResponse(
      {404, "NotFound", "the server could not find the requested resource", json::object()});
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream ss(path);
  std::string seg;
  while (std::getline(ss, seg, '/')) {
    if (!seg.empty()) out.push_back(seg);
  }
  return out;
}

bool Truthy(const std::string& v) { return v == "1" || v == "true" || v == "True"; }

std::string QueryString(const HttpRequest& req) {
  std::string q;
  for (const auto& [k, v] : req.query) {
    if (!q.empty()) q += "&";
    q += k + "=" + v;
  }
  return q;
}

ApiOr<json> ParseBody(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    auto y = ParseJsonOrYaml(body);
    if (!y || !y->is_object()) {
      return BadRequestError(
          "the body of the request was in an unknown format - accepted media types include: "
          "application/json, application/yaml");
    }
    return *y;
  }
  return j;
}

bool WantsTable(const HttpRequest& req) {
  return req.Header("accept").find("as=Table") != std::string::npos;
}

json ApiResource(const char* name, const char* singular, bool namespaced, const char* kind,
                 std::vector<std::string> verbs, std::vector<std::string> short_names = {}) {
  json r = {{"name", name},
            {"singularName", singular},
            {"namespaced", namespaced},
            {"kind", kind},
            {"verbs", verbs}};
  if (!short_names.empty()) r["shortNames"] = short_names;
  return r;
}

const std::vector<std::string> kAllVerbs = {"create", "delete", "deletecollection", "get",
                                            "list",   "patch",  "update",           "watch"};

std::string CoreResourceList() {
  json pods = ApiResource("pods", "pod", true, "Pod", kAllVerbs, {"po"});
  pods["categories"] = {"all"};
  json resources = json::array({
      ApiResource("configmaps", "configmap", true, "ConfigMap", kAllVerbs, {"cm"}),
      ApiResource("namespaces", "namespace", false, "Namespace",
                  {"create", "delete", "get", "list", "patch", "update", "watch"}, {"ns"}),
      ApiResource("namespaces/status", "", false, "Namespace", {"get", "patch", "update"}),
      ApiResource("nodes", "node", false, "Node", kAllVerbs, {"no"}),
      ApiResource("nodes/status", "", false, "Node", {"get", "patch", "update"}),
      pods,
      ApiResource("pods/status", "", true, "Pod", {"get", "patch", "update"}),
      ApiResource("serviceaccounts", "serviceaccount", true, "ServiceAccount", kAllVerbs, {"sa"}),
  });
  json token = ApiResource("serviceaccounts/token", "", true, "TokenRequest", {"create"});
  token["group"] = "authentication.k8s.io";
  token["version"] = "v1";
  resources.push_back(token);
  return json{{"kind", "APIResourceList"}, {"groupVersion", "v1"}, {"resources", resources}}.dump();
}

// A minimal OpenAPI v3 document per group-version: enough for kubectl to see
// that PATCH supports `fieldValidation` (server-side validation), so it
// needs no schemas for client-side validation.
std::string OpenApiV3(const std::string& gv) {
  json paths = json::object();
  std::string group = gv == "api/v1"              ? ""
                      : gv.rfind("apis/", 0) == 0 ? gv.substr(5, gv.size() - 8)
                                                  : "-";
  if (gv == "api/v1" || gv == "apis/rbac.authorization.k8s.io/v1") {
    for (int i = 0; i < kKindCount; ++i) {
      Kind k = static_cast<Kind>(i);
      if (group != Info(k).group) continue;
      std::string base = "/" + gv + "/";
      std::string path = Info(k).namespaced
                             ? base + "namespaces/{namespace}/" + Info(k).resource + "/{name}"
                             : base + Info(k).resource + "/{name}";
      json params = json::array();
      for (const char* q : {"dryRun", "fieldManager", "fieldValidation", "force"}) {
        params.push_back({{"name", q},
                          {"in", "query"},
                          {"schema", {{"type", "string"}}},
                          {"uniqueItems", true}});
      }
      json op = {{"operationId",
                  std::string(group.empty() ? "patchCoreV1" : "patchRbacV1") + Info(k).kind},
                 {"parameters", params},
                 {"responses", {{"200", {{"description", "OK"}}}}},
                 {"x-kubernetes-action", "patch"},
                 {"x-kubernetes-group-version-kind",
                  {{"group", group}, {"version", "v1"}, {"kind", Info(k).kind}}}};
      paths[path] = {{"patch", op}};
    }
  }
  return json{{"openapi", "3.0.0"},
              {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
              {"paths", paths},
              {"components", {{"schemas", json::object()}}}}
      .dump();
}

// The API groups besides the core one, each served at v1.
const char* const kGroups[] = {"authentication.k8s.io", "authorization.k8s.io",
                               "rbac.authorization.k8s.io"};

json GroupJson(const std::string& group) {
  json gv = {{"groupVersion", group + "/v1"}, {"version", "v1"}};
  return json{{"name", group}, {"versions", {gv}}, {"preferredVersion", gv}};
}

std::string GroupResourceList(const std::string& group) {
  json resources = json::array();
  if (group == "authentication.k8s.io") {
    resources.push_back(
        ApiResource("tokenreviews", "tokenreview", false, "TokenReview", {"create"}));
  } else if (group == "authorization.k8s.io") {
    resources.push_back(ApiResource("selfsubjectaccessreviews", "selfsubjectaccessreview", false,
                                    "SelfSubjectAccessReview", {"create"}));
    resources.push_back(ApiResource("subjectaccessreviews", "subjectaccessreview", false,
                                    "SubjectAccessReview", {"create"}));
  } else {
    for (int i = 0; i < kKindCount; ++i) {
      Kind k = static_cast<Kind>(i);
      if (group != Info(k).group) continue;
      std::string singular = Info(k).kind;
      std::transform(singular.begin(), singular.end(), singular.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      resources.push_back(ApiResource(Info(k).resource, singular.c_str(), Info(k).namespaced,
                                      Info(k).kind, kAllVerbs));
    }
  }
  return json{{"kind", "APIResourceList"},
              {"apiVersion", "v1"},
              {"groupVersion", group + "/v1"},
              {"resources", resources}}
      .dump();
}

bool WriteFileAtomic(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return false;
    f << data;
    if (!f.good()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Fields the server defaults on a new pod, as the real defaulting does.
void DefaultPod(json& pod) {
  auto& spec = pod["spec"];
  if (!spec.is_object()) return;
  if (!spec.contains("restartPolicy")) spec["restartPolicy"] = "Always";
  if (!spec.contains("schedulerName")) spec["schedulerName"] = "default-scheduler";
  if (!spec.contains("serviceAccountName")) spec["serviceAccountName"] = "default";
  if (!spec.contains("terminationGracePeriodSeconds")) spec["terminationGracePeriodSeconds"] = 30;
  if (!spec.contains("dnsPolicy")) spec["dnsPolicy"] = "ClusterFirst";
  if (spec.contains("containers") && spec["containers"].is_array()) {
    for (auto& c : spec["containers"]) {
      if (!c.is_object()) continue;
      if (!c.contains("terminationMessagePath"))
        c["terminationMessagePath"] = "/dev/termination-log";
      if (!c.contains("terminationMessagePolicy")) c["terminationMessagePolicy"] = "File";
      if (!c.contains("imagePullPolicy")) {
        std::string image = c.value("image", "");
        bool latest =
            image.find(':') == std::string::npos || image.rfind(":latest") == image.size() - 7;
        c["imagePullPolicy"] = latest ? "Always" : "IfNotPresent";
      }
    }
  }
  pod["status"] = {{"phase", "Pending"}, {"qosClass", "BestEffort"}};
}

}  // namespace

Kubesim::Kubesim(KubesimOptions options)
    : options_(std::move(options)), fault_rng_(options_.seed ^ 0x5eed) {
  StoreOptions so;
  so.history_size = options_.history_size;
  so.bookmark_interval = std::chrono::milliseconds(options_.bookmark_interval_ms);
  so.seed = options_.seed;
  store_ = std::make_unique<Store>(so);
  fixtures_ = std::make_unique<Fixtures>(store_.get(), options_.seed);
  faults_.error_rate = options_.error_rate;
  faults_.error_code = options_.error_code;
  faults_.latency_ms = options_.latency_ms;
  faults_.drop_watches_every_seconds = options_.drop_watches_every_seconds;
}

ashiato::Result<std::unique_ptr<Kubesim>> Kubesim::Start(KubesimOptions options) {
  std::unique_ptr<Kubesim> k(new Kubesim(std::move(options)));
  if (!k->options_.state_file.empty() && access(k->options_.state_file.c_str(), R_OK) == 0) {
    if (auto s = k->LoadState(); !s.ok()) return s;
    k->loaded_state_ = true;
  } else {
    k->fixtures_->SeedCluster(k->options_.nodes, k->options_.pods_per_node);
    // Start of history: a watch from before the simulator started gets 410.
    k->store_->Compact();
  }
  if (k->admin_token_.empty()) k->admin_token_ = k->options_.admin_token;
  if (k->admin_token_.empty()) k->admin_token_ = "kubesim-admin-" + RandomHex(16);
  if (k->options_.tls && k->tls_.cert_pem.empty()) {
    auto m = GenerateTlsMaterial();
    if (!m.ok()) return m.status();
    k->tls_ = *m;
  }
  if (!k->options_.request_log.empty()) {
    k->request_log_ = std::fopen(k->options_.request_log.c_str(), "a");
    if (k->request_log_ == nullptr)
      return ashiato::InvalidArgument("cannot open --request-log " + k->options_.request_log);
  }
  ashiato::HttpServerOptions hso;
  hso.listen = k->options_.listen;
  hso.max_connections = k->options_.max_connections;
  hso.max_body_bytes = 16 << 20;  // We answer 413 ourselves above 3 MiB, as a Status.
  hso.threads = k->options_.threads;
  if (k->options_.tls) {
    hso.tls_cert_pem = k->tls_.cert_pem;
    hso.tls_key_pem = k->tls_.key_pem;
  }
  Kubesim* self = k.get();
  auto server =
      ashiato::HttpServer::Start(hso, [self](const HttpRequest& req) { return self->Handle(req); });
  if (!server.ok()) return server.status();
  k->server_ = std::move(server).value();
  k->ticker_ = std::thread([self] { self->Ticker(); });
  if (k->options_.churn > 0) k->churn_ = std::thread([self] { self->Churn(); });
  if (!k->options_.kubeconfig_out.empty()) {
    if (auto s = k->WriteKubeconfig(); !s.ok()) return s;
  }
  spdlog::info("kubesim serving on {} ({} nodes, {} pods, rv {}{})", k->url(),
               k->store_->count(Kind::kNode), k->store_->count(Kind::kPod), k->store_->current_rv(),
               k->loaded_state_ ? ", state loaded" : "");
  return k;
}

Kubesim::~Kubesim() { Stop(); }

void Kubesim::Stop() {
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(work_mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (churn_.joinable()) churn_.join();
  if (ticker_.joinable()) ticker_.join();
  store_->DropWatches();
  {
    std::lock_guard<std::mutex> lock(work_mu_);
    for (auto& d : delayed_) d.stream->Close();
    delayed_.clear();
  }
  if (server_) server_->Stop();
  if (!options_.state_file.empty()) {
    if (auto s = SaveState(); !s.ok()) spdlog::error("saving state: {}", s.ToString());
  }
  if (request_log_) {
    std::fclose(request_log_);
    request_log_ = nullptr;
  }
}

std::string Kubesim::url() const {
  return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port());
}

std::string Kubesim::KubeconfigYaml() const {
  std::string s =
      "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: " + url() +
      "\n";
  if (options_.tls) s += "    certificate-authority-data: " + Base64Encode(tls_.ca_pem) + "\n";
  s += "contexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim-admin\n    "
       "namespace: default\n";
  s += "current-context: kubesim\npreferences: {}\nusers:\n- name: kubesim-admin\n  user:\n    "
       "token: " +
       admin_token_ + "\n";
  return s;
}

ashiato::Status Kubesim::WriteKubeconfig() {
  if (!WriteFileAtomic(options_.kubeconfig_out, KubeconfigYaml())) {
    return ashiato::InvalidArgument("cannot write kubeconfig to " + options_.kubeconfig_out);
  }
  return ashiato::Status::Ok();
}

ashiato::Status Kubesim::SaveState() {
  json state = store_->Dump();
  state["tokens"] = tokens_.Dump();
  state["adminToken"] = admin_token_;
  if (options_.tls)
    state["tls"] = {{"ca", tls_.ca_pem}, {"cert", tls_.cert_pem}, {"key", tls_.key_pem}};
  if (!WriteFileAtomic(options_.state_file, state.dump())) {
    return ashiato::Internal("cannot write state file " + options_.state_file);
  }
  spdlog::info("state saved to {} (rv {})", options_.state_file,
               state["resourceVersion"].get<uint64_t>());
  return ashiato::Status::Ok();
}

ashiato::Status Kubesim::LoadState() {
  std::ifstream f(options_.state_file, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  json state = json::parse(ss.str(), nullptr, false);
  if (state.is_discarded() || !state.is_object()) {
    return ashiato::InvalidArgument("state file " + options_.state_file + " is not valid JSON");
  }
  store_->Load(state);
  tokens_.Load(state.value("tokens", json::array()));
  admin_token_ = state.value("adminToken", "");
  if (state.contains("tls")) {
    tls_.ca_pem = state["tls"].value("ca", "");
    tls_.cert_pem = state["tls"].value("cert", "");
    tls_.key_pem = state["tls"].value("key", "");
  }
  std::lock_guard<std::mutex> lock(fixtures_mu_);
  fixtures_->set_node_count(static_cast<int>(store_->count(Kind::kNode)));
  return ashiato::Status::Ok();
}

Kubesim::Faults Kubesim::faults() {
  std::lock_guard<std::mutex> lock(faults_mu_);
  return faults_;
}

int64_t Kubesim::TokenNow() const {
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(faults_mu_));
  return now + faults_.token_clock_offset_seconds;
}

// ---------------------------------------------------------------- dispatch

HttpResponse Kubesim::Handle(const HttpRequest& req) {
  Route route;
  User user;
  HttpResponse resp;
  try {
    resp = Dispatch(req, &route, &user);
  } catch (const std::exception& e) {
    resp = ErrorResponse(
        {500, "InternalError", std::string("Internal error occurred: ") + e.what(), {}});
  }
  if (resp.content_type == "application/json" && resp.body.empty() && !resp.stream)
    resp.body = "{}";
  Record(req, route, user, resp.status, resp.stream ? 0 : resp.body.size());
  return resp;
}

HttpResponse Kubesim::Dispatch(const HttpRequest& req, Route* route, User* user) {
  const std::string& path = req.path;
  if (path == "/healthz" || path == "/livez" || path == "/readyz")
    return HttpResponse::Text(200, "ok");
  if (path == "/version") {
    std::string minor = options_.kube_version.substr(options_.kube_version.find('.') + 1);
    return HttpResponse::Json(200, json{{"major", "1"},
                                        {"minor", minor},
                                        {"gitVersion", "v1." + minor + ".0-kubesim"},
                                        {"gitCommit", "0000000000000000000000000000000000000000"},
                                        {"gitTreeState", "clean"},
                                        {"buildDate", "2024-12-11T00:00:00Z"},
                                        {"goVersion", "go1.23.3"},
                                        {"compiler", "gc"},
                                        {"platform", "linux/amd64"}}
                                       .dump());
  }
  std::string authz = req.Header("authorization");
  std::string token;
  if (authz.rfind("Bearer ", 0) == 0) token = authz.substr(7);
  std::optional<User> who;
  if (!token.empty()) {
    who = Authenticate(token);
  } else if (options_.anonymous_auth.value_or(!options_.tls)) {
    // Full access unless RBAC is enforced (as --authorization-mode=AlwaysAllow).
    who = User{"system:anonymous",
               options_.authorization_mode != "RBAC",
               {"system:unauthenticated"},
               "",
               {}};
  }
  if (!who) return ErrorResponse({401, "Unauthorized", "Unauthorized", {}});
  *user = *who;
  if (!req.Header("impersonate-user").empty()) {
    HttpResponse error;
    auto as = Impersonated(req, *user, &error);
    if (!as) return error;
    *user = *as;
  }

  if (path.rfind("/kubesim/v1/", 0) == 0) {
    if (!user->admin)
      return ErrorResponse(
          {403, "Forbidden", "kubesim control endpoints need the admin token", {}});
    return Control(req);
  }
  bool api_path = path.rfind("/api", 0) == 0;
  Faults f = faults();
  if (api_path && f.error_rate > 0 &&
      (f.error_path.empty() || path.find(f.error_path) != std::string::npos)) {
    bool fail;
    {
      std::lock_guard<std::mutex> lock(faults_mu_);
      fail = std::uniform_real_distribution<double>(0, 1)(fault_rng_) < f.error_rate;
    }
    if (fail) {
      if (f.error_code == 429) {
        ApiError e{429,
                   "TooManyRequests",
                   "Too many requests, please try again later.",
                   {{"retryAfterSeconds", f.retry_after_seconds}}};
        e.retry_after_seconds = f.retry_after_seconds;
        return ErrorResponse(e);
      }
      return ErrorResponse({f.error_code,
                            f.error_code == 503 ? "ServiceUnavailable" : "InternalError",
                            "Internal error occurred: kubesim injected fault",
                            {}});
    }
  }
  if (req.body.size() > kMaxRequestBodyBytes) {
    return ErrorResponse(
        {413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728", {}});
  }
  HttpRequest decoded;
  const HttpRequest* rq = &req;
  if (IsProtobuf(req.Header("content-type")) && !req.body.empty()) {
    auto j = DecodeProtobuf(req.body);
    if (!j) {
      return ErrorResponse(
          {415,
           "UnsupportedMediaType",
           "the body of the request was in an unknown format - accepted media types include: "
           "application/json, application/yaml",
           {}});
    }
    decoded = req;
    decoded.body = j->dump();
    decoded.headers["content-type"] = "application/json";
    rq = &decoded;
  }
  HttpResponse resp;
  if (path == "/openapi/v3") {
    resp = HttpResponse::Json(
        200,
        json{{"paths",
              {{"api/v1", {{"serverRelativeURL", "/openapi/v3/api/v1?hash=KUBESIM1"}}},
               {"apis/authentication.k8s.io/v1",
                {{"serverRelativeURL", "/openapi/v3/apis/authentication.k8s.io/v1?hash=KUBESIM1"}}},
               {"apis/rbac.authorization.k8s.io/v1",
                {{"serverRelativeURL",
                  "/openapi/v3/apis/rbac.authorization.k8s.io/v1?hash=KUBESIM1"}}}}}}
            .dump());
  } else if (path.rfind("/openapi/v3/", 0) == 0) {
    resp = HttpResponse::Json(200, OpenApiV3(path.substr(12)));
  } else if (path == "/api" || path == "/api/") {
    resp =
        HttpResponse::Json(200, json{{"kind", "APIVersions"},
                                     {"versions", {"v1"}},
                                     {"serverAddressByClientCIDRs",
                                      {{{"clientCIDR", "0.0.0.0/0"},
                                        {"serverAddress", "127.0.0.1:" + std::to_string(port())}}}}}
                                    .dump());
  } else if (path == "/api/v1" || path == "/api/v1/") {
    resp = HttpResponse::Json(200, CoreResourceList());
  } else if (path == "/apis" || path == "/apis/") {
    json groups = json::array();
    for (const char* g : kGroups) groups.push_back(GroupJson(g));
    resp = HttpResponse::Json(
        200, json{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}}.dump());
  } else if (path.rfind("/apis/", 0) == 0 && std::find(std::begin(kGroups), std::end(kGroups),
                                                       path.substr(6)) != std::end(kGroups)) {
    json g = GroupJson(path.substr(6));
    g["kind"] = "APIGroup";
    g["apiVersion"] = "v1";
    resp = HttpResponse::Json(200, g.dump());
  } else if (path.rfind("/apis/", 0) == 0 && path.size() > 9 &&
             path.compare(path.size() - 3, 3, "/v1") == 0 &&
             std::find(std::begin(kGroups), std::end(kGroups), path.substr(6, path.size() - 9)) !=
                 std::end(kGroups)) {
    resp = HttpResponse::Json(200, GroupResourceList(path.substr(6, path.size() - 9)));
  } else if (path == "/apis/authentication.k8s.io/v1/tokenreviews") {
    route->verb = "create";
    route->resource = "tokenreviews";
    route->group = "authentication.k8s.io";
    if (auto denied = Forbid(*route, *user)) return *denied;
    resp = req.method == "POST" ? TokenReview(*rq) : ErrorResponse(MethodNotAllowedError());
  } else if (path == "/apis/authorization.k8s.io/v1/subjectaccessreviews" ||
             path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") {
    bool self = path.find("/selfsubject") != std::string::npos;
    route->verb = "create";
    route->resource = self ? "selfsubjectaccessreviews" : "subjectaccessreviews";
    route->group = "authorization.k8s.io";
    // Anyone authenticated may ask about themselves (system:basic-user).
    if (!self) {
      if (auto denied = Forbid(*route, *user)) return *denied;
    }
    resp = req.method == "POST" ? SubjectAccessReview(*rq, *user, self)
                                : ErrorResponse(MethodNotAllowedError());
  } else if (path.rfind("/apis/rbac.authorization.k8s.io/v1/", 0) == 0) {
    resp = Resource(*rq, *route, *user, "/apis/rbac.authorization.k8s.io/v1/", kRbacGroup);
  } else if (path.rfind("/api/v1/", 0) == 0) {
    resp = Resource(*rq, *route, *user, "/api/v1/", "");
  } else {
    return NotFoundPath();
  }
  if (api_path && f.latency_ms > 0 && !resp.stream) {
    // Delay without blocking the event loop: stream the body later.
    auto stream = std::make_shared<ashiato::ResponseStream>();
    {
      std::lock_guard<std::mutex> lock(work_mu_);
      delayed_.push_back(
          {std::chrono::steady_clock::now() + std::chrono::milliseconds(f.latency_ms), stream,
           std::move(resp.body)});
    }
    work_cv_.notify_all();
    resp.body.clear();
    resp.stream = stream;
  }
  return resp;
}

HttpResponse Kubesim::Resource(const HttpRequest& req, Route& r, const User& user,
                               const std::string& prefix, const std::string& group) {
  r.group = group;
  std::vector<std::string> seg = Split(req.path.substr(prefix.size()));
  bool watch_path = !seg.empty() && seg[0] == "watch";
  if (watch_path) seg.erase(seg.begin());
  if (seg.empty()) return NotFoundPath();
  size_t i = 0;
  if (seg[0] == "namespaces" && seg.size() >= 3) {
    auto k = KindFromResource(seg[2], group);
    if (k && Info(*k).namespaced) {
      r.ns = seg[1];
      i = 2;
    }
  }
  r.resource = seg[i];
  r.kind = KindFromResource(r.resource, group);
  if (!r.kind) return NotFoundPath();
  if (Info(*r.kind).namespaced && r.ns.empty() && seg.size() > 1) return NotFoundPath();
  if (seg.size() > i + 1) r.name = seg[i + 1];
  if (seg.size() > i + 2) r.subresource = seg[i + 2];
  if (seg.size() > i + 3) return NotFoundPath();
  bool is_watch = watch_path || Truthy(req.Query("watch"));
  const std::string& m = req.method;
  // The verb, as the API server's request info resolves it.
  if (!r.subresource.empty()) {
    if (r.subresource == "token" && *r.kind == Kind::kServiceAccount) {
      if (m != "POST") return ErrorResponse(MethodNotAllowedError());
      r.verb = "create";
      r.resource = "serviceaccounts/token";
      if (auto denied = Forbid(r, user)) return *denied;
      return TokenRequest(req, r);
    }
    if (r.subresource != "status" ||
        (*r.kind != Kind::kPod && *r.kind != Kind::kNode && *r.kind != Kind::kNamespace)) {
      return NotFoundPath();
    }
    r.resource += "/status";
  }
  if (r.name.empty()) {
    if (m == "GET") {
      r.verb = is_watch ? "watch" : "list";
    } else if (m == "POST") {
      r.verb = "create";
    } else if (m == "DELETE") {
      r.verb = "deletecollection";
    } else {
      return ErrorResponse(MethodNotAllowedError());
    }
  } else if (m == "GET") {
    r.verb = "get";
  } else if (m == "PUT") {
    r.verb = "update";
  } else if (m == "PATCH") {
    r.verb = "patch";
  } else if (m == "DELETE" && r.subresource.empty()) {
    r.verb = "delete";
  } else {
    return ErrorResponse(MethodNotAllowedError());
  }
  Route authz = r;
  if (r.name.empty()) {
    // As the API server's request info: a collection request selecting one
    // object by fieldSelector=metadata.name=X is authorised as a request for
    // X, so that RBAC resourceNames can allow list/watch of a single object.
    auto fields = FieldSelector::Parse(req.Query("fieldSelector"), *r.kind);
    if (fields.ok()) {
      auto name = fields->Exact("metadata.name");
      // path.IsValidPathSegmentName, as the API server checks it.
      if (name && !name->empty() && *name != "." && *name != ".." &&
          name->find_first_of("/%") == std::string::npos) {
        authz.name = *name;
      }
    }
  }
  if (auto denied = Forbid(authz, user)) return *denied;
  if (r.verb == "watch") return Watch(req, r);
  if (r.verb == "list") return List(req, r);
  if (r.verb == "create") return Create(req, r);
  if (r.verb == "deletecollection") return DeleteCollection(req, r);
  if (r.verb == "update") return Replace(req, r);
  if (r.verb == "patch") return Patch(req, r);
  if (r.verb == "delete") return Delete(req, r);
  auto o = store_->Get(*r.kind, r.ns, r.name);
  if (!o.ok()) return ErrorResponse(o.error());
  if (WantsTable(req)) {
    return HttpResponse::Json(200, TableListJson(*r.kind, {*o}, (*o)->rv, "",
                                                 ParseIncludeObject(req.Query("includeObject"))));
  }
  return HttpResponse::Json(200, (*o)->json);
}

std::optional<HttpResponse> Kubesim::Forbid(const Route& r, const User& user) {
  if (options_.authorization_mode != "RBAC" || user.admin) return std::nullopt;
  RbacRequest q;
  q.verb = r.verb;
  q.group = r.group;
  q.resource = r.resource.substr(0, r.resource.find('/'));
  q.subresource = r.subresource;
  q.ns = r.ns;
  q.name = r.name;
  RbacUser u{user.name, user.groups};
  if (Authorize(*store_, u, q).allowed) return std::nullopt;
  json details = {{"kind", q.resource}};
  if (!r.name.empty()) details["name"] = r.name;
  if (!r.group.empty()) details["group"] = r.group;
  return ErrorResponse({403, "Forbidden", ForbiddenMessage(u, q), details});
}

std::optional<Kubesim::User> Kubesim::Impersonated(const HttpRequest& req, const User& who,
                                                   HttpResponse* error) {
  std::string as = req.Header("impersonate-user");
  // Impersonation needs `impersonate` on users; kubesim grants it to the
  // admin (and to anonymous requests while they have full access).
  if (!who.admin) {
    *error = ErrorResponse({403,
                            "Forbidden",
                            "users \"" + as + "\" is forbidden: User \"" + who.name +
                                "\" cannot impersonate resource \"users\" in API group \"\" at the "
                                "cluster scope",
                            {{"name", as}, {"kind", "users"}}});
    return std::nullopt;
  }
  User u;
  u.name = as;
  std::string ns =
      as.rfind("system:serviceaccount:", 0) == 0
          ? as.substr(22, as.find(':', 22) == std::string::npos ? std::string::npos
                                                                : as.find(':', 22) - 22)
          : "";
  if (!ns.empty()) {
    u.groups = ServiceAccountGroups(ns);
  } else {
    u.groups = {"system:authenticated"};
  }
  std::string g = req.Header("impersonate-group");
  if (!g.empty()) u.groups.insert(u.groups.begin(), g);
  return u;
}

bool Kubesim::OlderThan(int minor) const {
  auto dot = options_.kube_version.find('.');
  int have = std::atoi(options_.kube_version.c_str() + (dot == std::string::npos ? 0 : dot + 1));
  return have < minor;
}

HttpResponse Kubesim::SubjectAccessReview(const HttpRequest& req, const User& user, bool self) {
  auto body = ParseBody(req.body);
  if (!body.ok()) return ErrorResponse(body.error());
  const char* kind = self ? "SelfSubjectAccessReview" : "SubjectAccessReview";
  json spec = body->value("spec", json::object());
  if (!spec.is_object()) spec = json::object();
  auto invalid = [&](const std::string& field, const std::string& message) {
    return ErrorResponse(
        {422,
         "Invalid",
         std::string(kind) + ".authorization.k8s.io \"\" is invalid: " + field + ": " + message,
         {{"kind", kind}, {"group", "authorization.k8s.io"}}});
  };
  RbacUser who;
  if (self) {
    who = {user.name, user.groups};
  } else {
    who.name = spec.value("user", "");
    who.groups = spec.value("groups", std::vector<std::string>{});
    if (who.name.empty() && who.groups.empty()) {
      return invalid("spec.user,spec.groups",
                     "Invalid value: \"\": at least one of user or group must be specified");
    }
  }
  bool has_ra = spec.contains("resourceAttributes") && spec["resourceAttributes"].is_object();
  bool has_nra =
      spec.contains("nonResourceAttributes") && spec["nonResourceAttributes"].is_object();
  if (has_ra == has_nra) {
    return invalid("spec.resourceAttributes",
                   "Invalid value: \"null\": exactly one of nonResourceAttributes or "
                   "resourceAttributes must be specified");
  }
  RbacRequest q;
  if (has_ra) {
    const json& a = spec["resourceAttributes"];
    q.verb = a.value("verb", "");
    q.group = a.value("group", "");
    q.resource = a.value("resource", "");
    q.subresource = a.value("subresource", "");
    q.ns = a.value("namespace", "");
    q.name = a.value("name", "");
  } else {
    q.verb = spec["nonResourceAttributes"].value("verb", "");
    q.path = spec["nonResourceAttributes"].value("path", "");
  }
  RbacDecision d = Authorize(*store_, who, q);
  json status = {{"allowed", d.allowed}};
  if (!d.reason.empty()) status["reason"] = d.reason;
  json out = {{"kind", kind},
              {"apiVersion", "authorization.k8s.io/v1"},
              {"metadata", {{"creationTimestamp", nullptr}}},
              {"spec", spec},
              {"status", status}};
  return HttpResponse::Json(201, out.dump());
}

HttpResponse Kubesim::List(const HttpRequest& req, const Route& r) {
  ListOptions lo;
  lo.ns = r.ns;
  if (auto bad = ParseSelectors(req, *r.kind, &lo.labels, &lo.fields)) return *bad;
  std::string limit = req.Query("limit");
  if (!limit.empty()) lo.limit = std::atoll(limit.c_str());
  lo.continue_token = req.Query("continue");
  std::string rv = req.Query("resourceVersion");
  auto plan = PlanList({rv, req.Query("resourceVersionMatch"), lo.limit > 0,
                        !lo.continue_token.empty(), !OlderThan(31)});
  if (!plan.ok()) return ErrorResponse(plan.error());
  const std::string& resource = Info(*r.kind).resource;
  if (plan->rv > store_->current_rv()) {
    return ErrorResponse(
        {504,
         "Timeout",
         "Timeout: Too large resource version: " + rv +
             ", current: " + std::to_string(store_->current_rv()),
         {{"causes",
           {{{"reason", "ResourceVersionTooLarge"}, {"message", "Too large resource version"}}}},
          {"retryAfterSeconds", 1}}});
  }
  if (plan->semantics == ListSemantics::kExact && plan->rv < store_->oldest_rv()) {
    // etcd compacted that revision: what the real server answers.
    CountList(resource, *plan, 0, 0, /*expired=*/true);
    return ErrorResponse(ExpiredError("The resourceVersion for the provided list is too old."));
  }
  auto res = store_->List(*r.kind, lo);
  if (!res.ok()) {
    CountList(resource, *plan, 0, 0, res.error().code == 410);
    return ErrorResponse(res.error());
  }
  if (WantsTable(req)) {
    std::string table = TableListJson(*r.kind, res->items, res->rv, res->continue_token,
                                      ParseIncludeObject(req.Query("includeObject")));
    CountList(resource, *plan, table.size(), res->range_read, false);
    return HttpResponse::Json(200, std::move(table));
  }
  std::string out;
  size_t est = 128;
  for (const auto& o : res->items) est += o->json.size() + 1;
  out.reserve(est);
  out += "{\"kind\":\"";
  out += Info(*r.kind).list_kind;
  out += "\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"" + std::to_string(res->rv) +
         "\"";
  if (!res->continue_token.empty()) {
    out += ",\"continue\":\"" + res->continue_token + "\"";
    if (res->remaining >= 0) out += ",\"remainingItemCount\":" + std::to_string(res->remaining);
  }
  out += "},\"items\":[";
  bool first = true;
  for (const auto& o : res->items) {
    if (!first) out.push_back(',');
    first = false;
    o->AppendListItem(&out);
  }
  out += "]}";
  CountList(resource, *plan, out.size(), res->range_read, false);
  return HttpResponse::Json(200, std::move(out));
}

HttpResponse Kubesim::Watch(const HttpRequest& req, const Route& r) {
  WatchOptions wo;
  wo.ns = r.ns;
  if (auto bad = ParseSelectors(req, *r.kind, &wo.labels, &wo.fields)) return *bad;
  std::string rv = req.Query("resourceVersion");
  if (!rv.empty() && rv != "0") {
    if (rv.find_first_not_of("0123456789") != std::string::npos) {
      return ErrorResponse(BadRequestError("invalid resource version: " + rv));
    }
    wo.from_rv = std::strtoull(rv.c_str(), nullptr, 10);
  }
  wo.bookmarks = Truthy(req.Query("allowWatchBookmarks"));
  std::string timeout = req.Query("timeoutSeconds");
  long secs =
      timeout.empty() ? 1800 + static_cast<long>(fault_rng_() % 1800) : std::atol(timeout.c_str());
  wo.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(secs);
  if (WantsTable(req)) wo.table = ParseIncludeObject(req.Query("includeObject"));
  size_t cap = 64u << 20;
  if (!wo.from_rv && wo.fields.empty()) cap = std::max(cap, store_->count(*r.kind) * 8192);
  auto stream = std::make_shared<ashiato::ResponseStream>(cap);
  if (auto err = store_->Watch(*r.kind, std::move(wo), stream)) return ErrorResponse(*err);
  HttpResponse resp;
  resp.status = 200;
  resp.stream = stream;
  return resp;
}

HttpResponse Kubesim::Create(const HttpRequest& req, const Route& r) {
  auto body = ParseBody(req.body);
  if (!body.ok()) return ErrorResponse(body.error());
  json& obj = *body;
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
  if (Info(*r.kind).namespaced) {
    std::string ns = obj["metadata"].value("namespace", "");
    if (!ns.empty() && ns != r.ns) {
      return ErrorResponse(BadRequestError(
          "the namespace of the provided object does not match the namespace sent on the request"));
    }
    obj["metadata"]["namespace"] = r.ns;
  }
  if (obj.contains("kind") && obj["kind"] != Info(*r.kind).kind) {
    return ErrorResponse(BadRequestError("the API version in the data (" +
                                         obj.value("apiVersion", "") +
                                         ") does not match the expected API version (v1)"));
  }
  if (*r.kind == Kind::kPod) DefaultPod(obj);
  if (*r.kind == Kind::kNamespace) {
    obj["status"] = {{"phase", "Active"}};
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = obj["metadata"].value("name", "");
  }
  if (req.query.count("dryRun")) {
    if (auto err = Validate(*r.kind, obj)) return ErrorResponse(*err);
    return HttpResponse::Json(201, obj.dump());
  }
  auto o = store_->Create(*r.kind, std::move(obj));
  if (!o.ok()) return ErrorResponse(o.error());
  if (*r.kind == Kind::kNamespace) {
    (void)store_->Create(Kind::kServiceAccount,
                         {{"metadata", {{"name", "default"}, {"namespace", (*o)->name}}}});
  }
  if (*r.kind == Kind::kPod && options_.kubelet_delay_ms >= 0)
    ScheduleKubelet((*o)->ns, (*o)->name);
  return HttpResponse::Json(201, (*o)->json);
}

HttpResponse Kubesim::Replace(const HttpRequest& req, const Route& r) {
  auto body = ParseBody(req.body);
  if (!body.ok()) return ErrorResponse(body.error());
  json obj = *body;
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
  std::string name = obj["metadata"].value("name", "");
  if (name != r.name) {
    return ErrorResponse(BadRequestError("the name of the object (" + name +
                                         ") does not match the name on the URL (" + r.name + ")"));
  }
  if (Info(*r.kind).namespaced) {
    std::string ns = obj["metadata"].value("namespace", "");
    if (!ns.empty() && ns != r.ns) {
      return ErrorResponse(BadRequestError(
          "the namespace of the provided object does not match the namespace sent on the request"));
    }
  }
  std::string want_rv = obj["metadata"].value("resourceVersion", "");
  bool status = !r.subresource.empty();
  Kind kind = *r.kind;
  auto o = store_->Update(kind, r.ns, r.name, [&](json& cur) -> std::optional<ApiError> {
    if (!want_rv.empty() && want_rv != cur["metadata"].value("resourceVersion", ""))
      return ConflictError(kind, r.name);
    if (status) {
      cur["status"] = obj.value("status", json::object());
    } else {
      json keep_status = cur.value("status", json());
      cur = obj;
      if (kind == Kind::kPod || kind == Kind::kNode || kind == Kind::kNamespace) {
        if (keep_status.is_null())
          cur.erase("status");
        else
          cur["status"] = keep_status;
      }
    }
    return std::nullopt;
  });
  if (!o.ok()) return ErrorResponse(o.error());
  return HttpResponse::Json(200, (*o)->json);
}

HttpResponse Kubesim::Patch(const HttpRequest& req, const Route& r) {
  auto type = ParsePatchType(req.Header("content-type"));
  if (!type) {
    return ErrorResponse(
        {415,
         "UnsupportedMediaType",
         "the body of the request was in an unknown format - accepted media types include: "
         "application/json-patch+json, application/merge-patch+json, "
         "application/apply-patch+yaml, application/strategic-merge-patch+json",
         {}});
  }
  std::optional<json> patch = *type == PatchType::kApply
                                  ? ParseJsonOrYaml(req.body)
                                  : std::optional<json>(json::parse(req.body, nullptr, false));
  if (!patch || patch->is_discarded() || (*type != PatchType::kJsonPatch && !patch->is_object()) ||
      (*type == PatchType::kJsonPatch && !patch->is_array())) {
    return ErrorResponse(BadRequestError("error decoding patch: invalid JSON"));
  }
  Kind kind = *r.kind;
  if (*type == PatchType::kApply) {
    if (req.Query("fieldManager").empty()) {
      return ErrorResponse({422,
                            "Invalid",
                            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                            "value: is required for apply patch",
                            {}});
    }
    auto existing = store_->Get(kind, r.ns, r.name);
    if (!existing.ok() && r.subresource.empty()) {
      json obj = *patch;
      if (!obj.contains("metadata") || !obj["metadata"].is_object())
        obj["metadata"] = json::object();
      if (obj["metadata"].value("name", r.name) != r.name) {
        return ErrorResponse(
            BadRequestError("the name of the object (" + obj["metadata"].value("name", "") +
                            ") does not match the name on the URL (" + r.name + ")"));
      }
      obj["metadata"]["name"] = r.name;
      if (Info(kind).namespaced) obj["metadata"]["namespace"] = r.ns;
      if (kind == Kind::kPod) DefaultPod(obj);
      auto o = store_->Create(kind, std::move(obj));
      if (!o.ok()) return ErrorResponse(o.error());
      return HttpResponse::Json(201, (*o)->json);
    }
  }
  bool status = !r.subresource.empty();
  std::optional<ApiError> patch_error;
  auto o = store_->Update(kind, r.ns, r.name, [&](json& cur) -> std::optional<ApiError> {
    std::string cur_rv = cur["metadata"].value("resourceVersion", "");
    json result = cur;
    try {
      switch (*type) {
        case PatchType::kMerge:
          MergePatch(result, *patch);
          break;
        case PatchType::kStrategic:
          StrategicMergePatch(result, *patch);
          break;
        case PatchType::kApply:
          ApplyPatch(result, *patch);
          break;
        case PatchType::kJsonPatch:
          result = result.patch(*patch);
          break;
      }
    } catch (const std::exception& e) {
      return ApiError{
          422,
          "Invalid",
          std::string("the server rejected our request due to an error in our request: ") +
              e.what(),
          {}};
    }
    if (!result.is_object()) return BadRequestError("patch result is not an object");
    if (!result.contains("metadata") || !result["metadata"].is_object())
      result["metadata"] = json::object();
    std::string new_rv = result["metadata"].value("resourceVersion", "");
    if (!new_rv.empty() && new_rv != cur_rv) return ConflictError(kind, r.name);
    if (status) {
      cur["status"] = result.value("status", json::object());
    } else {
      if (kind == Kind::kPod || kind == Kind::kNode || kind == Kind::kNamespace) {
        if (cur.contains("status"))
          result["status"] = cur["status"];
        else
          result.erase("status");
      }
      cur = result;
    }
    return std::nullopt;
  });
  (void)patch_error;
  if (!o.ok()) return ErrorResponse(o.error());
  return HttpResponse::Json(200, (*o)->json);
}

HttpResponse Kubesim::Delete(const HttpRequest& req, const Route& r) {
  json opts = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
  if (opts.is_discarded()) opts = json::object();
  long grace = -1;
  if (opts.contains("gracePeriodSeconds") && opts["gracePeriodSeconds"].is_number())
    grace = opts["gracePeriodSeconds"].get<long>();
  if (!req.Query("gracePeriodSeconds").empty())
    grace = std::atol(req.Query("gracePeriodSeconds").c_str());
  std::string pre_uid, pre_rv;
  if (opts.contains("preconditions") && opts["preconditions"].is_object()) {
    pre_uid = opts["preconditions"].value("uid", "");
    pre_rv = opts["preconditions"].value("resourceVersion", "");
  }
  Kind kind = *r.kind;
  if (kind == Kind::kPod && options_.pod_deletion_delay_ms > 0 && grace != 0) {
    auto cur = store_->Get(kind, r.ns, r.name);
    if (!cur.ok()) return ErrorResponse(cur.error());
    if (!(*cur)->node.empty()) {
      long g = grace;
      auto o = store_->Update(kind, r.ns, r.name, [&](json& obj) -> std::optional<ApiError> {
        if (!pre_uid.empty() && pre_uid != obj["metadata"].value("uid", ""))
          return ConflictError(kind, r.name);
        if (obj["metadata"].contains("deletionTimestamp")) return std::nullopt;
        if (g < 0) g = obj["spec"].value("terminationGracePeriodSeconds", 30L);
        obj["metadata"]["deletionTimestamp"] =
            ashiato::FormatRfc3339(std::chrono::system_clock::now() + std::chrono::seconds(g));
        obj["metadata"]["deletionGracePeriodSeconds"] = g;
        return std::nullopt;
      });
      if (!o.ok()) return ErrorResponse(o.error());
      {
        std::lock_guard<std::mutex> lock(work_mu_);
        pending_deletes_.push_back({std::chrono::steady_clock::now() +
                                        std::chrono::milliseconds(options_.pod_deletion_delay_ms),
                                    {r.ns, r.name}});
      }
      return HttpResponse::Json(200, (*o)->json);
    }
  }
  auto o = store_->Delete(kind, r.ns, r.name, pre_uid, pre_rv);
  if (!o.ok()) return ErrorResponse(o.error());
  if (kind == Kind::kPod || kind == Kind::kNamespace) return HttpResponse::Json(200, (*o)->json);
  return HttpResponse::Json(
      200, json{{"kind", "Status"},
                {"apiVersion", "v1"},
                {"metadata", json::object()},
                {"status", "Success"},
                {"details", {{"name", r.name}, {"kind", Info(kind).resource}, {"uid", (*o)->uid}}}}
               .dump());
}

HttpResponse Kubesim::DeleteCollection(const HttpRequest& req, const Route& r) {
  ListOptions lo;
  lo.ns = r.ns;
  if (auto bad = ParseSelectors(req, *r.kind, &lo.labels, &lo.fields)) return *bad;
  auto res = store_->List(*r.kind, lo);
  if (!res.ok()) return ErrorResponse(res.error());
  std::string out = "{\"kind\":\"" + std::string(Info(*r.kind).list_kind) +
                    "\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":[";
  bool first = true;
  for (const auto& o : res->items) {
    auto d = store_->Delete(*r.kind, o->ns, o->name);
    if (!d.ok()) continue;
    if (!first) out.push_back(',');
    first = false;
    (*d)->AppendListItem(&out);
  }
  out += "]}";
  return HttpResponse::Json(200, out);
}

// ---------------------------------------------------------------- tokens

std::optional<Kubesim::User> Kubesim::Authenticate(const std::string& token) {
  if (token == admin_token_) {
    return User{"kubesim-admin", true, {"system:masters", "system:authenticated"}, "", {}};
  }
  std::string err;
  auto info = CheckToken(token, &err);
  if (!info) return std::nullopt;
  if (std::find(info->audiences.begin(), info->audiences.end(), options_.api_audience) ==
      info->audiences.end()) {
    return std::nullopt;
  }
  return User{"system:serviceaccount:" + info->ns + ":" + info->service_account,
              false,
              ServiceAccountGroups(info->ns),
              info->service_account_uid,
              {}};
}

std::optional<TokenInfo> Kubesim::CheckToken(const std::string& token, std::string* error) {
  auto info = tokens_.Lookup(token);
  if (!info) {
    *error = "[invalid bearer token, token lookup failed]";
    return std::nullopt;
  }
  if (TokenNow() >= info->expires_at) {
    *error = "[invalid bearer token, service account token has expired]";
    return std::nullopt;
  }
  auto sa = store_->Get(Kind::kServiceAccount, info->ns, info->service_account);
  if (!sa.ok() || (*sa)->uid != info->service_account_uid) {
    *error = "[invalid bearer token, service account " + info->ns + "/" + info->service_account +
             " has been deleted]";
    return std::nullopt;
  }
  if (!info->pod_name.empty()) {
    auto pod = store_->Get(Kind::kPod, info->ns, info->pod_name);
    if (!pod.ok() || (*pod)->uid != info->pod_uid) {
      *error = "[invalid bearer token, pod \"" + info->pod_name + "\" not found]";
      return std::nullopt;
    }
  }
  return info;
}

HttpResponse Kubesim::TokenRequest(const HttpRequest& req, const Route& r) {
  auto sa = store_->Get(Kind::kServiceAccount, r.ns, r.name);
  if (!sa.ok()) return ErrorResponse(sa.error());
  json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return ErrorResponse(BadRequestError("invalid TokenRequest body"));
  json spec = body.value("spec", json::object());
  if (!spec.is_object()) spec = json::object();
  // kubectl sends unset fields as null in JSON bodies.
  for (auto it = spec.begin(); it != spec.end();) it = it->is_null() ? spec.erase(it) : ++it;
  int64_t exp = spec.value("expirationSeconds", int64_t{3600});
  if (exp == 0) exp = 3600;
  if (exp < 600) {
    return ErrorResponse(
        InvalidError(Kind::kServiceAccount, r.name,
                     {{{"reason", "FieldValueInvalid"},
                       {"field", "spec.expirationSeconds"},
                       {"message", "Invalid value: " + std::to_string(exp) +
                                       ": may not specify a duration less than 10 minutes"}}}));
  }
  TokenInfo info;
  info.ns = r.ns;
  info.service_account = r.name;
  info.service_account_uid = (*sa)->uid;
  info.audiences = spec.value("audiences", std::vector<std::string>{});
  if (info.audiences.empty()) info.audiences = {options_.api_audience};
  info.issued_at = TokenNow();
  info.expires_at = info.issued_at + exp;
  json bound = spec.value("boundObjectRef", json());
  if (bound.is_object()) {
    std::string bkind = bound.value("kind", "");
    std::string bname = bound.value("name", "");
    if (bkind == "Pod") {
      auto pod = store_->Get(Kind::kPod, r.ns, bname);
      if (!pod.ok()) return ErrorResponse(pod.error());
      if (!bound.value("uid", "").empty() && bound.value("uid", "") != (*pod)->uid) {
        return ErrorResponse({409,
                              "Conflict",
                              "the UID in the bound object reference (" + bound.value("uid", "") +
                                  ") does not match the UID in record. The object might have been "
                                  "deleted and then recreated",
                              {}});
      }
      info.pod_name = bname;
      info.pod_uid = (*pod)->uid;
      // The node of a pod-bound token (claim and review extra) came in 1.30.
      if (!OlderThan(30)) info.node_name = (*pod)->node;
      if (!info.node_name.empty()) {
        auto node = store_->Get(Kind::kNode, "", info.node_name);
        if (node.ok()) info.node_uid = (*node)->uid;
      }
      bound["uid"] = info.pod_uid;
    } else if (bkind == "Node") {
      auto node = store_->Get(Kind::kNode, "", bname);
      if (!node.ok()) return ErrorResponse(node.error());
      info.node_name = bname;
      info.node_uid = (*node)->uid;
      bound["uid"] = info.node_uid;
    } else if (!bkind.empty()) {
      return ErrorResponse(BadRequestError("cannot bind token to object of type " + bkind));
    }
  }
  std::string token = tokens_.Issue(info);
  json out_spec = {{"audiences", info.audiences}, {"expirationSeconds", exp}};
  if (bound.is_object()) out_spec["boundObjectRef"] = bound;
  auto exp_time = std::chrono::system_clock::time_point(
      std::chrono::seconds(info.expires_at - faults().token_clock_offset_seconds));
  json resp = {
      {"kind", "TokenRequest"},
      {"apiVersion", "authentication.k8s.io/v1"},
      {"metadata", {{"name", r.name}, {"namespace", r.ns}, {"creationTimestamp", nullptr}}},
      {"spec", out_spec},
      {"status", {{"token", token}, {"expirationTimestamp", ashiato::FormatRfc3339(exp_time)}}}};
  return HttpResponse::Json(201, resp.dump());
}

HttpResponse Kubesim::TokenReview(const HttpRequest& req) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return ErrorResponse(BadRequestError("invalid TokenReview body"));
  json spec = body.value("spec", json::object());
  std::string token = spec.value("token", "");
  std::vector<std::string> wanted = spec.value("audiences", std::vector<std::string>{});
  json out = {{"kind", "TokenReview"},
              {"apiVersion", "authentication.k8s.io/v1"},
              {"metadata", {{"creationTimestamp", nullptr}}},
              {"spec", spec}};
  std::vector<std::string> targets =
      wanted.empty() ? std::vector<std::string>{options_.api_audience} : wanted;
  auto fail = [&](const std::string& why) {
    out["status"] = {{"user", json::object()}, {"error", why}};
    return HttpResponse::Json(201, out.dump());
  };
  if (token.empty()) {
    return ErrorResponse(InvalidError(Kind::kServiceAccount, "",
                                      {{{"reason", "FieldValueRequired"},
                                        {"field", "spec.token"},
                                        {"message", "Required value"}}}));
  }
  if (token == admin_token_) {
    // Static tokens are audience-agnostic: valid only for the API server's audience.
    if (std::find(targets.begin(), targets.end(), options_.api_audience) == targets.end()) {
      return fail("[invalid bearer token, token audiences is invalid for the target audiences]");
    }
    out["status"] = {
        {"authenticated", true},
        {"user",
         {{"username", "kubesim-admin"}, {"groups", {"system:masters", "system:authenticated"}}}},
        {"audiences", {options_.api_audience}}};
    return HttpResponse::Json(201, out.dump());
  }
  std::string err;
  auto info = CheckToken(token, &err);
  if (!info) return fail(err);
  std::vector<std::string> common;
  for (const auto& a : targets) {
    if (std::find(info->audiences.begin(), info->audiences.end(), a) != info->audiences.end())
      common.push_back(a);
  }
  if (common.empty())
    return fail("[invalid bearer token, token audiences is invalid for the target audiences]");
  // Before 1.30 a pod-bound token's review names the pod only (pod-name,
  // pod-uid); 1.30 added credential-id (ServiceAccountTokenJTI) and the
  // pod's node (ServiceAccountTokenPodNodeInfo).
  bool pre130 = OlderThan(30);
  json extra = json::object();
  if (!pre130) extra["authentication.kubernetes.io/credential-id"] = {"JTI=" + info->jti};
  if (!info->pod_name.empty()) {
    extra["authentication.kubernetes.io/pod-name"] = {info->pod_name};
    extra["authentication.kubernetes.io/pod-uid"] = {info->pod_uid};
  }
  if (!info->node_name.empty() && !pre130) {
    extra["authentication.kubernetes.io/node-name"] = {info->node_name};
    if (!info->node_uid.empty()) extra["authentication.kubernetes.io/node-uid"] = {info->node_uid};
  }
  out["status"] = {
      {"authenticated", true},
      {"user",
       {{"username", "system:serviceaccount:" + info->ns + ":" + info->service_account},
        {"uid", info->service_account_uid},
        {"groups",
         {"system:serviceaccounts", "system:serviceaccounts:" + info->ns, "system:authenticated"}},
        {"extra", extra}}},
      {"audiences", common}};
  if (extra.empty()) out["status"]["user"].erase("extra");
  return HttpResponse::Json(201, out.dump());
}

// ---------------------------------------------------------------- control

HttpResponse Kubesim::Control(const HttpRequest& req) {
  std::string what = req.path.substr(12);
  if (what == "faults") {
    if (req.method == "POST" || req.method == "PUT") {
      json j = json::parse(req.body, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return ErrorResponse(BadRequestError("faults: want a JSON object"));
      {
        std::lock_guard<std::mutex> lock(faults_mu_);
        if (j.value("reset", false)) faults_ = Faults{};
        faults_.error_rate = j.value("error_rate", faults_.error_rate);
        faults_.error_code = j.value("error_code", faults_.error_code);
        faults_.retry_after_seconds = j.value("retry_after_seconds", faults_.retry_after_seconds);
        faults_.error_path = j.value("error_path", faults_.error_path);
        faults_.latency_ms = j.value("latency_ms", faults_.latency_ms);
        faults_.drop_watches_every_seconds =
            j.value("drop_watches_every_seconds", faults_.drop_watches_every_seconds);
        faults_.token_clock_offset_seconds =
            j.value("token_clock_offset_seconds", faults_.token_clock_offset_seconds);
      }
      if (j.value("compact", false)) store_->Compact();
      if (j.value("drop_watches", false)) store_->DropWatches();
      spdlog::info("faults set: {}", j.dump());
    } else if (req.method != "GET") {
      return ErrorResponse(MethodNotAllowedError());
    }
    Faults f = faults();
    return HttpResponse::Json(200,
                              json{{"error_rate", f.error_rate},
                                   {"error_code", f.error_code},
                                   {"retry_after_seconds", f.retry_after_seconds},
                                   {"error_path", f.error_path},
                                   {"latency_ms", f.latency_ms},
                                   {"drop_watches_every_seconds", f.drop_watches_every_seconds},
                                   {"token_clock_offset_seconds", f.token_clock_offset_seconds},
                                   {"resource_version", store_->current_rv()},
                                   {"oldest_resource_version", store_->oldest_rv()}}
                                  .dump());
  }
  if (what == "requests") {
    std::lock_guard<std::mutex> lock(record_mu_);
    if (req.method == "DELETE") {
      requests_.clear();
      return HttpResponse::Json(200, json{{"next", request_seq_}}.dump());
    }
    uint64_t since = std::strtoull(req.Query("since", "0").c_str(), nullptr, 10);
    json arr = json::array();
    for (const auto& r : requests_) {
      if (r["seq"].get<uint64_t>() >= since) arr.push_back(r);
    }
    return HttpResponse::Json(200, json{{"requests", arr}, {"next", request_seq_}}.dump());
  }
  if (what == "stats") {
    json by = json::object();
    uint64_t total, bytes;
    {
      std::lock_guard<std::mutex> lock(record_mu_);
      for (const auto& [verb, m] : stats_) {
        for (const auto& [res, nb] : m)
          by[verb][res] = {{"requests", nb.first}, {"bytes", nb.second}};
      }
      total = requests_total_;
      bytes = bytes_total_;
    }
    json lists = ListStatsJson();
    auto wc = store_->watch_counters();
    json watch = json::object();
    uint64_t wev = 0, wbytes = 0;
    json objects = json::object();
    for (int i = 0; i < kKindCount; ++i) {
      Kind k = static_cast<Kind>(i);
      watch[Info(k).resource] = {{"events", wc[i].events}, {"bytes", wc[i].bytes}};
      wev += wc[i].events;
      wbytes += wc[i].bytes;
      objects[Info(k).resource] = store_->count(k);
    }
    return HttpResponse::Json(200, json{{"requests_total", total},
                                        {"response_bytes_total", bytes + wbytes},
                                        {"by_verb", by},
                                        {"watch_events_sent", wev},
                                        {"watch_bytes_sent", wbytes},
                                        {"watch_by_resource", watch},
                                        {"lists", lists},
                                        {"open_watches", store_->open_watches()},
                                        {"resource_version", store_->current_rv()},
                                        {"objects", objects}}
                                       .dump());
  }
  return NotFoundPath();
}

void Kubesim::CountList(const std::string& resource, const ListPlan& plan, size_t bytes,
                        uint64_t range_read, bool expired) {
  std::lock_guard<std::mutex> lock(record_mu_);
  ListStats& ls = list_stats_[resource];
  if (expired) {
    ++ls.expired;
    return;
  }
  ListSourceStats& src = plan.from_etcd ? ls.etcd : ls.cache;
  ++src.requests;
  src.bytes += bytes;
  ++src.by_semantics[ListSemanticsName(plan.semantics)];
  if (plan.from_etcd) src.objects_read += range_read;
}

json Kubesim::ListStatsJson() {
  auto source = [](const ListSourceStats& s) {
    json j = {{"requests", s.requests}, {"bytes", s.bytes}, {"by_semantics", s.by_semantics}};
    return j;
  };
  std::lock_guard<std::mutex> lock(record_mu_);
  json out = json::object();
  for (const auto& [resource, ls] : list_stats_) {
    json etcd = source(ls.etcd);
    etcd["objects_read"] = ls.etcd.objects_read;
    out[resource] = {{"cache", source(ls.cache)}, {"etcd", etcd}, {"expired", ls.expired}};
  }
  return out;
}

void Kubesim::Record(const HttpRequest& req, const Route& route, const User& user, int code,
                     size_t bytes) {
  if (req.path.rfind("/kubesim/", 0) == 0) return;  // Don't record the observers.
  std::string verb = route.verb.empty() ? "get" : route.verb;
  std::string resource = route.resource.empty() ? req.path : route.resource;
  std::lock_guard<std::mutex> lock(record_mu_);
  ++requests_total_;
  bytes_total_ += bytes;
  auto& s = stats_[verb][resource];
  s.first++;
  s.second += bytes;
  json rec = {{"seq", request_seq_++},
              {"time", ashiato::FormatRfc3339Micros(std::chrono::system_clock::now())},
              {"method", req.method},
              {"path", req.path},
              {"query", QueryString(req)},
              {"user", user.name},
              {"verb", verb},
              {"resource", route.resource},
              {"namespace", route.ns},
              {"name", route.name},
              {"watch", verb == "watch"},
              {"code", code},
              {"user_agent", req.Header("user-agent")}};
  if (request_log_) {
    std::string line = rec.dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), request_log_);
    std::fflush(request_log_);
  }
  requests_.push_back(std::move(rec));
  while (requests_.size() > options_.request_ring) requests_.pop_front();
}

// ---------------------------------------------------------------- background

void Kubesim::ScheduleKubelet(const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> lock(work_mu_);
  kubelet_queue_.push_back(
      {std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.kubelet_delay_ms),
       {ns, name}});
}

void Kubesim::Ticker() {
  auto last_drop = std::chrono::steady_clock::now();
  while (true) {
    std::vector<Delayed> due;
    std::vector<std::pair<std::string, std::string>> run, remove;
    {
      std::unique_lock<std::mutex> lock(work_mu_);
      work_cv_.wait_for(lock, std::chrono::milliseconds(20));
      if (stopping_) return;
      auto now = std::chrono::steady_clock::now();
      for (auto it = delayed_.begin(); it != delayed_.end();) {
        if (it->due <= now) {
          due.push_back(std::move(*it));
          it = delayed_.erase(it);
        } else {
          ++it;
        }
      }
      while (!kubelet_queue_.empty() && kubelet_queue_.front().first <= now) {
        run.push_back(kubelet_queue_.front().second);
        kubelet_queue_.pop_front();
      }
      for (auto it = pending_deletes_.begin(); it != pending_deletes_.end();) {
        if (it->first <= now) {
          remove.push_back(it->second);
          it = pending_deletes_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& d : due) {
      d.stream->Write(std::move(d.body));
      d.stream->Close();
    }
    for (const auto& [ns, name] : run) {
      std::lock_guard<std::mutex> lock(fixtures_mu_);
      auto cur = store_->Get(Kind::kPod, ns, name);
      if (!cur.ok()) continue;
      if ((*cur)->node.empty()) {
        std::string node = fixtures_->RandomNode();
        if (node.empty()) continue;
        (void)store_->Update(Kind::kPod, ns, name, [&](json& pod) -> std::optional<ApiError> {
          pod["spec"]["nodeName"] = node;
          pod["status"]["conditions"] = {
              {{"type", "PodScheduled"},
               {"status", "True"},
               {"lastProbeTime", nullptr},
               {"lastTransitionTime", ashiato::FormatRfc3339(std::chrono::system_clock::now())}}};
          return std::nullopt;
        });
      }
      (void)store_->Update(Kind::kPod, ns, name, [&](json& pod) -> std::optional<ApiError> {
        if (pod["status"].value("phase", "") != "Pending") return std::nullopt;
        fixtures_->MarkRunning(pod);
        return std::nullopt;
      });
    }
    for (const auto& [ns, name] : remove) (void)store_->Delete(Kind::kPod, ns, name);
    auto now = std::chrono::steady_clock::now();
    Faults f = faults();
    if (f.drop_watches_every_seconds > 0 &&
        now - last_drop >= std::chrono::duration<double>(f.drop_watches_every_seconds)) {
      store_->DropWatches();
      last_drop = now;
    }
    store_->Tick(now);
  }
}

void Kubesim::Churn() {
  std::vector<std::pair<std::string, std::string>> pods;  // ns, name
  for (const auto& o : store_->Snapshot(Kind::kPod)) pods.emplace_back(o->ns, o->name);
  std::deque<std::pair<std::string, std::string>> pending;
  auto last = std::chrono::steady_clock::now();
  double budget = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(work_mu_);
      work_cv_.wait_for(lock, std::chrono::milliseconds(10));
      if (stopping_) return;
    }
    auto now = std::chrono::steady_clock::now();
    budget += options_.churn * std::chrono::duration<double>(now - last).count();
    last = now;
    budget = std::min(budget, options_.churn + 1);
    std::lock_guard<std::mutex> lock(fixtures_mu_);
    auto& rng = fixtures_->rng();
    while (budget >= 1) {
      budget -= 1;
      if (!pending.empty()) {
        auto [ns, name] = pending.front();
        pending.pop_front();
        (void)store_->Update(Kind::kPod, ns, name, [&](json& pod) -> std::optional<ApiError> {
          fixtures_->MarkRunning(pod);
          return std::nullopt;
        });
        continue;
      }
      int op = static_cast<int>(rng() % 3);
      if (op == 0 || pods.empty()) {
        std::string node = fixtures_->RandomNode();
        if (node.empty()) continue;
        json pod = fixtures_->NewPod(node);
        auto o = store_->Create(Kind::kPod, pod);
        if (o.ok()) {
          pods.emplace_back((*o)->ns, (*o)->name);
          pending.emplace_back((*o)->ns, (*o)->name);
        }
      } else if (op == 1) {
        size_t i = rng() % pods.size();
        auto key = pods[i];
        pods[i] = pods.back();
        pods.pop_back();
        (void)store_->Delete(Kind::kPod, key.first, key.second);
      } else {
        size_t i = rng() % pods.size();
        auto r = store_->Update(
            Kind::kPod, pods[i].first, pods[i].second, [&](json& pod) -> std::optional<ApiError> {
              auto& st = pod["status"];
              if (!st.contains("conditions")) return std::nullopt;
              std::string t = ashiato::FormatRfc3339(std::chrono::system_clock::now());
              bool ready = false;
              for (auto& c : st["conditions"]) {
                if (c.value("type", "") == "Ready") ready = c.value("status", "") == "True";
              }
              for (auto& c : st["conditions"]) {
                std::string type = c.value("type", "");
                if (type == "Ready" || type == "ContainersReady") {
                  c["status"] = ready ? "False" : "True";
                  c["lastTransitionTime"] = t;
                }
              }
              if (st.contains("containerStatuses")) {
                for (auto& cs : st["containerStatuses"]) cs["ready"] = !ready;
              }
              return std::nullopt;
            });
        if (!r.ok() && r.error().code == 404) {
          pods[i] = pods.back();
          pods.pop_back();
        }
      }
    }
  }
}

}  // namespace kubesim
