// Deployment records end to end, real processes over loopback: kubesim +
// one ashiato-agent + ashiato-aggregator configured as deployment-tracker
// (ORG, BASE_URL, CLUSTER, ... in its environment), posting to a test
// artifact-metadata server (tests/artifact_metadata) that fails on demand.
// A Deployment's pods are created as the ReplicaSet controller would
// (ownerReferences to <deploy>-<hash>, label pod-template-hash), made
// Running with an imageID digest, rolled to a new image and scaled to zero.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/http_client.h"
#include "tests/artifact_metadata/artifact_metadata_server.h"
#include "tests/kubesim/kubesim_process.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/tcp_proxy.h"

namespace ashiato {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ArtifactMetadataServer;
using testing::KubesimProcess;
using testing::Subprocess;
constexpr auto Bin = testing::BinFromEnv;

const std::string kV1 = "sha256:" + std::string(64, '1');
const std::string kV2 = "sha256:" + std::string(64, '2');
const std::string kDn = "default/shop/shop";

class DeployE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!KubesimProcess::HaveKubectl()) GTEST_SKIP() << "kubectl not on PATH";
    auto sim = KubesimProcess::Start(
        {.nodes = 1, .pods_per_node = 1, .extra_args = {"--bookmark-interval-ms", "200"}});
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim.value());
    dir_ = testing::MakeTempDir("ashiato-deploy-e2e");
    ASSERT_EQ(
        sim_->Kubectl({"create", "serviceaccount", "ashiato-agent", "-n", "ashiato"}).exit_code, 0);
    auto t = sim_->Kubectl(
        {"create", "token", "ashiato-agent", "-n", "ashiato", "--audience", "ashiato"});
    std::string token = t.out;
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
    ASSERT_FALSE(token.empty());
    token_file_ = dir_ + "/agent-token";
    std::ofstream(token_file_) << token;
    am_ = ArtifactMetadataServer::Start();
    ASSERT_TRUE(am_ != nullptr);
    // The agent's one address: each aggregator incarnation binds port 0.
    front_ = std::make_unique<testing::TcpProxy>();
    ASSERT_TRUE(front_->Start());
    url_ = "http://127.0.0.1:" + std::to_string(front_->port());
    StartAggregator();
    agent_ = Subprocess::Start(
        {Bin("ASHIATO_AGENT_BIN", AGENT_BIN), "--kubeconfig", sim_->kubeconfig_path(), "--node",
         "node-1", "--aggregator", url_, "--allow-insecure-aggregator", "--aggregator-token-file",
         token_file_, "--batch-delay", "50ms", "--interval", "1h"},
        dir_ + "/agent.out", dir_ + "/agent.err");
    ASSERT_TRUE(agent_ != nullptr);
  }

  void TearDown() override {
    if (agent_) agent_->Stop(5000ms);
    if (agg_) agg_->Stop(15000ms);
    if (!dir_.empty() && !HasFailure()) testing::RemoveTree(dir_);
    if (HasFailure()) std::fprintf(stderr, "e2e files kept in %s\n", dir_.c_str());
  }

  void StartAggregator() {
    const std::string err = dir_ + "/aggregator.err";
    const uint64_t from = testing::FileSize(err);
    agg_ = Subprocess::Start(
        {Bin("ASHIATO_AGGREGATOR_BIN", AGGREGATOR_BIN),
         "--listen",
         "127.0.0.1:0",
         "--kubeconfig",
         sim_->kubeconfig_path(),
         "--auth",
         "tokenreview",
         "--data-dir",
         dir_ + "/data",
         "--read-auth",
         "none",
         "--allow-unbound-agent-tokens",
         "--deployment-request-timeout",
         "1s",
         "--deployment-backoff-initial",
         "200ms",
         "--deployment-backoff-max",
         "1s",
         "--deployment-drain-timeout",
         "2s"},
        dir_ + "/aggregator.out", err,
        {"ORG=acme", "BASE_URL=" + am_->url(), "CLUSTER=e2e-cluster", "LOGICAL_ENVIRONMENT=test",
         "PHYSICAL_ENVIRONMENT=kubesim", "API_TOKEN=secret-token"});
    ASSERT_TRUE(agg_ != nullptr);
    uint16_t port = testing::WaitForReportedPort(err, from, "serving on port ", 20000ms);
    ASSERT_NE(port, 0) << "aggregator reported no port; see " << err;
    front_->SetTarget(port);
    HttpClient c({.base_url = url_});
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          auto r = c.Do("GET", "/readyz");
          return r.ok() && r->status == 200;
        },
        20000ms))
        << "aggregator did not come up; see " << dir_ << "/aggregator.err";
  }

  // A pod of Deployment "shop" through ReplicaSet shop-<hash>, Running with `digest`.
  void RunPod(const std::string& name, const std::string& hash, const std::string& tag,
              const std::string& digest) {
    json pod = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", name},
          {"namespace", "default"},
          {"labels", {{"app", "shop"}, {"pod-template-hash", hash}}},
          {"ownerReferences",
           {{{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"name", "shop-" + hash},
             {"uid", "rs-uid-" + hash},
             {"controller", true}}}}}},
        {"spec",
         {{"nodeName", "node-1"},
          {"containers", {{{"name", "shop"}, {"image", "registry.example/acme/shop:" + tag}}}}}}};
    auto created = sim_->KubeJson("POST", "/api/v1/namespaces/default/pods", pod.dump());
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    json status = {{"status",
                    {{"phase", "Running"},
                     {"podIP", "10.1.0." + std::to_string(++ip_)},
                     {"containerStatuses",
                      {{{"name", "shop"},
                        {"image", "registry.example/acme/shop:" + tag},
                        {"imageID", "registry.example/acme/shop@" + digest},
                        {"ready", true},
                        {"restartCount", 0},
                        {"state", {{"running", {{"startedAt", "2026-12-01T00:00:00Z"}}}}}}}}}}};
    auto patched = sim_->KubeJson("PATCH", "/api/v1/namespaces/default/pods/" + name + "/status",
                                  status.dump(), "application/merge-patch+json");
    ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  }
  void DeletePod(const std::string& name) {
    auto r = sim_->KubeJson("DELETE", "/api/v1/namespaces/default/pods/" + name);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // "deployed sha256:1111... registry.example/acme/shop 1.0" per accepted record of kDn.
  std::vector<std::string> Accepted() {
    std::vector<std::string> out;
    for (const auto& j : am_->Accepted()) {
      if (j.value("deployment_name", "") != kDn) continue;
      out.push_back(j.value("status", "") + " " + j.value("digest", "") + " " +
                    j.value("name", "") + " " + j.value("version", ""));
    }
    return out;
  }
  bool WaitAccepted(size_t n, std::chrono::milliseconds timeout = 30000ms) {
    return testing::WaitFor([&] { return Accepted().size() >= n; }, timeout);
  }
  size_t Attempts(int status) {
    size_t n = 0;
    for (const auto& r : am_->Requests()) {
      n += r.body.is_object() && r.body.value("deployment_name", "") == kDn && r.answered == status;
    }
    return n;
  }
  std::string Metrics() {
    HttpClient c({.base_url = url_});
    auto r = c.Do("GET", "/metrics");
    return r.ok() ? r->body : "";
  }
  // The durable outbox is empty: every record the pod changes so far made
  // (they commit with the change) has been delivered or dropped, so none
  // can come later. Call it once the last change has visibly been handled.
  bool WaitOutboxEmpty() {
    const std::string gauge = "\nashiato_deployment_records_queue_depth ";
    return testing::WaitFor(
        [&] {
          std::string m = Metrics();
          size_t at = m.find(gauge);
          return at != std::string::npos && std::atof(m.c_str() + at + gauge.size()) == 0;
        },
        30000ms);
  }

  std::unique_ptr<KubesimProcess> sim_;
  std::unique_ptr<ArtifactMetadataServer> am_;
  std::string dir_, token_file_, url_;
  std::unique_ptr<testing::TcpProxy> front_;
  int ip_ = 0;
  std::unique_ptr<Subprocess> agg_, agent_;
  using V = std::vector<std::string>;
  const std::string d1 = "deployed " + kV1 + " registry.example/acme/shop 1.0";
  const std::string d2 = "deployed " + kV2 + " registry.example/acme/shop 2.0";
  const std::string x2 = "decommissioned " + kV2 + " registry.example/acme/shop 2.0";
};

TEST_F(DeployE2E, RolloutAndScaleToZeroSendExactlyTheRecords) {
  RunPod("shop-5d8f7c9b6d-aaaaa", "5d8f7c9b6d", "1.0", kV1);
  RunPod("shop-5d8f7c9b6d-bbbbb", "5d8f7c9b6d", "1.0", kV1);
  ASSERT_TRUE(WaitAccepted(1)) << "no record; see " << dir_;
  // Rollout to 2.0: new ReplicaSet up, old one down.
  RunPod("shop-7c6b5f4d9x-ccccc", "7c6b5f4d9x", "2.0", kV2);
  ASSERT_TRUE(WaitAccepted(2));
  DeletePod("shop-5d8f7c9b6d-aaaaa");
  DeletePod("shop-5d8f7c9b6d-bbbbb");
  RunPod("shop-7c6b5f4d9x-ddddd", "7c6b5f4d9x", "2.0", kV2);
  // Scale to zero.
  DeletePod("shop-7c6b5f4d9x-ccccc");
  DeletePod("shop-7c6b5f4d9x-ddddd");
  ASSERT_TRUE(WaitAccepted(3));
  ASSERT_TRUE(WaitOutboxEmpty());  // Nothing more may come.
  EXPECT_EQ(Accepted(), (V{d1, d2, x2}));

  // The request as GitHub documents it.
  bool seen = false, reconciled = false;
  for (const auto& r : am_->Requests()) {
    if (r.path == "/orgs/acme/artifacts/metadata/deployment-record") {
      seen = true;
      EXPECT_EQ(r.method, "POST");
      EXPECT_EQ(r.headers.at("authorization"), "Bearer secret-token");
      EXPECT_EQ(r.headers.at("accept"), "application/vnd.github+json");
      EXPECT_EQ(r.headers.at("x-github-api-version"), "2022-11-28");
      if (r.body.value("deployment_name", "") == kDn) {
        EXPECT_EQ(r.body["logical_environment"], "test");
        EXPECT_EQ(r.body["physical_environment"], "kubesim");
        EXPECT_EQ(r.body["cluster"], "e2e-cluster");
      }
    }
    if (r.path == "/orgs/acme/artifacts/metadata/deployment-record/cluster/e2e-cluster") {
      reconciled = true;
      EXPECT_TRUE(r.body["deployments"].is_array()) << r.body.dump();
    }
  }
  EXPECT_TRUE(seen);
  EXPECT_TRUE(reconciled) << "no reconciliation at start";
  // deployment-tracker's lines, on stderr (stdout is the unified JSON log).
  bool line = false;
  for (const auto& l : testing::ReadLines(dir_ + "/aggregator.err")) {
    line |= l.find("] OK CREATED name=registry.example/acme/shop deployment_name=" + kDn +
                   " digest=" + kV1 + " status=deployed") != std::string::npos;
  }
  EXPECT_TRUE(line) << "see " << dir_ << "/aggregator.err";
  for (const auto& l : testing::ReadLines(dir_ + "/aggregator.out")) {
    EXPECT_TRUE(json::parse(l, nullptr, false).is_object()) << "not JSON on stdout: " << l;
  }
  EXPECT_NE(Metrics().find("ashiato_deployment_records_sent_total"), std::string::npos);
}

TEST_F(DeployE2E, RetriesThroughFailuresAndAKill9) {
  am_->Answer({.status = 500, .body = "{\"message\":\"boom\"}"});
  RunPod("shop-5d8f7c9b6d-aaaaa", "5d8f7c9b6d", "1.0", kV1);
  ASSERT_TRUE(testing::WaitFor([&] { return Attempts(500) >= 2; }, 20000ms));
  am_->Answer({.status = 429, .headers = {{"Retry-After", "1"}}, .body = "{}"});
  ASSERT_TRUE(testing::WaitFor([&] { return Attempts(429) >= 1; }, 20000ms));
  am_->Answer({.status = 0});  // Hang: the request times out.
  ASSERT_TRUE(testing::WaitFor([&] { return Attempts(0) >= 1; }, 20000ms));
  std::string metrics = Metrics();
  EXPECT_NE(metrics.find("ashiato_deployment_records_retried_total"), std::string::npos);
  EXPECT_TRUE(Accepted().empty());
  // kill -9 mid-retry; the record is in the outbox on disk.
  agg_->Kill();
  agg_.reset();
  am_->Answer({});
  StartAggregator();
  ASSERT_TRUE(WaitAccepted(1)) << "the outbox was not resumed; see " << dir_;
  DeletePod("shop-5d8f7c9b6d-aaaaa");
  ASSERT_TRUE(WaitAccepted(2));
  ASSERT_TRUE(WaitOutboxEmpty());
  const std::string x1 = "decommissioned " + kV1 + " registry.example/acme/shop 1.0";
  EXPECT_EQ(Accepted(), (V{d1, x1}));
  bool failed_line = false;
  for (const auto& l : testing::ReadLines(dir_ + "/aggregator.err")) {
    failed_line |=
        l.find("] FAILED CREATED name=registry.example/acme/shop") != std::string::npos &&
        l.find("error=status 500") != std::string::npos;
  }
  EXPECT_TRUE(failed_line);
}

TEST_F(DeployE2E, ClientErrorsAreDroppedNotRetried) {
  am_->Answer({.status = 422, .body = "{\"message\":\"Validation Failed\"}"});
  RunPod("shop-5d8f7c9b6d-aaaaa", "5d8f7c9b6d", "1.0", kV1);
  ASSERT_TRUE(testing::WaitFor([&] { return Attempts(422) >= 1; }, 20000ms));
  ASSERT_TRUE(WaitOutboxEmpty());  // Dropped, not waiting for a retry.
  EXPECT_EQ(Attempts(422), 1u);
  bool logged = false;
  for (const auto& l : testing::ReadLines(dir_ + "/aggregator.err")) {
    logged |= l.find("Validation Failed") != std::string::npos &&
              l.find("] FAILED CREATED") != std::string::npos;
  }
  EXPECT_TRUE(logged) << "the response body is logged; see " << dir_;
  // One failure per record refused (the fixture's own pods' records too).
  int failed_lines = 0;
  for (const auto& l : testing::ReadLines(dir_ + "/aggregator.err")) {
    failed_lines += l.find("] FAILED CREATED") != std::string::npos;
  }
  const std::string metrics = Metrics();
  const std::string name = "\nashiato_deployment_records_failed_total ";
  size_t at = metrics.find(name);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_EQ(std::stod(metrics.substr(at + name.size())), failed_lines);
}

}  // namespace
}  // namespace ashiato
