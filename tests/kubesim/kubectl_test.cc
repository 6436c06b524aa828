// The real kubectl against kubesim (skipped when kubectl is not on PATH).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "tests/kubesim/kubesim_process.h"

namespace ashiato::testing {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

class KubectlTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!KubesimProcess::HaveKubectl()) GTEST_SKIP() << "kubectl not on PATH";
    auto sim = KubesimProcess::Start({.nodes = 3, .pods_per_node = 4, .tls = GetParam()});
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim).value();
  }
  CommandResult Run(const std::vector<std::string>& args) {
    CommandResult r = sim_->Kubectl(args);
    EXPECT_EQ(r.exit_code, 0) << "kubectl";
    for (const auto& a : args) std::cerr << " " << a;
    if (r.exit_code != 0)
      std::cerr << "\nstdout: " << r.out << "\nstderr: " << r.err << "\n";
    else
      std::cerr << "\n";
    return r;
  }
  std::unique_ptr<KubesimProcess> sim_;
};

TEST_P(KubectlTest, FieldSelectedListIsExactlyTheNodesPods) {
  auto r = Run({"get", "pods", "-A", "--field-selector", "spec.nodeName=node-2", "-o", "json"});
  json list = json::parse(r.out);
  std::set<std::string> got, want;
  for (const auto& p : list["items"]) {
    EXPECT_EQ(p["spec"]["nodeName"], "node-2");
    got.insert(p["metadata"]["namespace"].get<std::string>() + "/" +
               p["metadata"]["name"].get<std::string>());
  }
  auto all = sim_->KubeJson("GET", "/api/v1/pods");
  for (const auto& p : (*all)["items"]) {
    if (p["spec"]["nodeName"] == "node-2") {
      want.insert(p["metadata"]["namespace"].get<std::string>() + "/" +
                  p["metadata"]["name"].get<std::string>());
    }
  }
  EXPECT_EQ(got.size(), 4u);
  EXPECT_EQ(got, want);
  // Human output goes through the Table path.
  auto wide = Run({"get", "pods", "-A", "-o", "wide"});
  EXPECT_NE(wide.out.find("NOMINATED NODE"), std::string::npos);
  EXPECT_NE(wide.out.find("node-2"), std::string::npos);
  EXPECT_NE(wide.out.find("Running"), std::string::npos);
  auto nodes = Run({"get", "nodes"});
  EXPECT_NE(nodes.out.find("node-3   Ready"), std::string::npos) << nodes.out;
}

TEST_P(KubectlTest, WatchSeesCreatedPod) {
  auto watcher = sim_->StartKubectl({"get", "pods", "--watch", "--request-timeout", "30s"});
  ASSERT_TRUE(watcher);
  // The initial list is printed (header) before the watch starts.
  ASSERT_TRUE(
      WaitFor([&] { return !ReadLines(watcher->stdout_path()).empty(); }, milliseconds(20000)));
  std::string yaml = sim_->dir() + "/pod.yaml";
  std::ofstream(yaml)
      << "apiVersion: v1\nkind: Pod\nmetadata:\n  name: watched\n  labels: {app: demo}\n"
         "spec:\n  nodeName: node-1\n  containers:\n  - name: c\n    image: nginx:1.25.3\n";
  Run({"create", "-f", yaml});
  EXPECT_TRUE(WaitFor(
      [&] {
        for (const auto& l : ReadLines(watcher->stdout_path())) {
          if (l.rfind("watched ", 0) == 0) return true;
        }
        return false;
      },
      milliseconds(15000)));
  Run({"delete", "pod", "watched"});
  watcher->Kill();
  auto gone = sim_->Kubectl({"get", "pod", "watched"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("NotFound"), std::string::npos) << gone.err;
}

TEST_P(KubectlTest, ConfigMapsTokensAndDeletes) {
  Run({"create", "configmap", "settings", "--from-literal=a=1", "--from-literal=b=2"});
  Run({"label", "configmap", "settings", "app=pod-ashiato"});
  auto cms = Run({"get", "cm", "-l", "app=pod-ashiato", "-o", "json"});
  json list = json::parse(cms.out);
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["data"]["b"], "2");
  auto none = Run({"get", "cm", "-l", "app=nothing", "-o", "name"});
  EXPECT_EQ(none.out, "");
  std::string cm_yaml = sim_->dir() + "/cm.yaml";
  std::ofstream(cm_yaml)
      << "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k: v\n";
  Run({"apply", "--server-side", "-f", cm_yaml});
  EXPECT_EQ(Run({"get", "cm", "applied", "-o", "jsonpath={.data.k}"}).out, "v");

  auto pods = sim_->KubeJson("GET", "/api/v1/namespaces/team-a/pods");
  std::string victim = (*pods)["items"][0]["metadata"]["name"];
  Run({"delete", "pod", "-n", "team-a", victim});
  EXPECT_EQ((*sim_->KubeJson("GET", "/api/v1/namespaces/team-a/pods/" + victim))["code"], 404);

  std::string other = (*pods)["items"][1]["metadata"]["name"];
  auto token =
      Run({"create", "token", "default", "-n", "team-a", "--audience", "ashiato",
           "--bound-object-kind", "Pod", "--bound-object-name", other, "--duration", "20m"});
  std::string t = token.out.substr(0, token.out.find_last_not_of("\n") + 1);
  ASSERT_FALSE(t.empty());
  auto review = sim_->KubeJson("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                               json{{"spec", {{"token", t}, {"audiences", {"ashiato"}}}}}.dump());
  EXPECT_TRUE((*review)["status"].value("authenticated", false)) << review->dump();
  EXPECT_EQ((*review)["status"]["user"]["username"], "system:serviceaccount:team-a:default");
  auto missing = sim_->Kubectl({"create", "token", "nobody", "-n", "team-a"});
  EXPECT_NE(missing.exit_code, 0);
  Run({"create", "namespace", "scratch"});
  Run({"create", "serviceaccount", "agent", "-n", "scratch"});
  EXPECT_NE(Run({"get", "sa", "-n", "scratch"}).out.find("agent"), std::string::npos);
}

TEST_P(KubectlTest, RolesBindingsAndAuthCanI) {
  // As an operator would grant a team read access to its namespace.
  Run({"create", "serviceaccount", "reader", "-n", "team-a"});
  Run({"create", "role", "pod-reader", "-n", "team-a", "--verb=get,list", "--resource=pods"});
  Run({"create", "rolebinding", "pod-reader", "-n", "team-a", "--role=pod-reader",
       "--serviceaccount=team-a:reader"});
  Run({"create", "clusterrole", "metrics-reader", "--verb=get", "--non-resource-url=/metrics"});
  Run({"create", "clusterrolebinding", "prom", "--clusterrole=metrics-reader", "--user=prom"});
  EXPECT_NE(Run({"get", "rolebindings", "-n", "team-a"}).out.find("Role/pod-reader"),
            std::string::npos);
  auto role = Run({"get", "role", "pod-reader", "-n", "team-a", "-o", "json"});
  json r = json::parse(role.out);
  EXPECT_EQ(r["rules"][0]["verbs"], json({"get", "list"}));
  EXPECT_EQ(r["rules"][0]["resources"], json({"pods"}));
  auto can = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"auth", "can-i"});
    auto res = sim_->Kubectl(args);
    return res.out.substr(0, res.out.find('\n')) + " " + std::to_string(res.exit_code);
  };
  const std::string reader = "system:serviceaccount:team-a:reader";
  EXPECT_EQ(can({"list", "pods", "-n", "team-a", "--as", reader}), "yes 0");
  EXPECT_EQ(can({"list", "pods", "-n", "default", "--as", reader}), "no 1");
  EXPECT_EQ(can({"list", "pods", "-A", "--as", reader}), "no 1");
  EXPECT_EQ(can({"get", "/metrics", "--as", "prom"}), "yes 0");
  EXPECT_EQ(can({"get", "/metrics", "--as", reader}), "no 1");
  if (GetParam()) {
    EXPECT_EQ(can({"list", "pods", "-A"}), "yes 0");  // The admin, over TLS.
  }
}

INSTANTIATE_TEST_SUITE_P(HttpAndHttps, KubectlTest, ::testing::Values(false, true),
                         [](const auto& info) {
                           return info.param ? std::string("Https") : std::string("Http");
                         });

}  // namespace
}  // namespace ashiato::testing
