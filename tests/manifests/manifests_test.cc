// Renders daemonset/ with `kubectl kustomize` (offline) and checks what a cluster
// would run: the object set, least-privilege RBAC, env and token wiring, the
// aggregator's StatefulSet and its store volume, hardening of every container, the
// NetworkPolicy, and the monitoring and ephemeral overlays.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/manifests/command.h"
#include "tests/manifests/dockerfile.h"

namespace ashiato::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr char kNamespace[] = "ashiato";
// Where the aggregator keeps its SQLite store (Dockerfile.aggregator creates it).
constexpr char kDataDir[] = "/var/lib/ashiato";
// Aggregator flags that are deprecated no-ops since the SQLite store.
const char* const kDeprecatedAggregatorFlags[] = {"--state-file", "--history-size"};

// A node that tests false. (A default-constructed YAML::Node is a defined null node,
// which tests true: ASSERT_TRUE(Find(...)) would pass for a missing object.)
YAML::Node Absent() { return YAML::Node(YAML::NodeType::Undefined); }

struct Rendered {
  std::vector<YAML::Node> objects;

  // The object with this kind and name; Absent() if there is none.
  YAML::Node Find(const std::string& kind, const std::string& name) const {
    for (const auto& o : objects) {
      if (o["kind"].as<std::string>() == kind && o["metadata"]["name"].as<std::string>() == name) {
        return o;
      }
    }
    return Absent();
  }
  std::vector<YAML::Node> OfKind(const std::string& kind) const {
    std::vector<YAML::Node> out;
    for (const auto& o : objects) {
      if (o["kind"].as<std::string>() == kind) out.push_back(o);
    }
    return out;
  }
};

std::string Str(const YAML::Node& n) { return n && n.IsScalar() ? n.as<std::string>() : ""; }

// Bytes of a Kubernetes quantity such as "10Gi", "512Mi", "4G" or "1000"; -1 if it
// is not one of those forms (enough for storage sizes and --retention-bytes).
int64_t QuantityBytes(const std::string& q) {
  size_t digits = 0;
  while (digits < q.size() && q[digits] >= '0' && q[digits] <= '9') ++digits;
  if (digits == 0 || digits > 15) return -1;
  int64_t n = std::stoll(q.substr(0, digits));
  const std::map<std::string, int64_t> suffix = {{"", 1},
                                                 {"k", 1000},
                                                 {"M", 1000000},
                                                 {"G", 1000000000},
                                                 {"T", 1000000000000},
                                                 {"Ki", int64_t{1} << 10},
                                                 {"Mi", int64_t{1} << 20},
                                                 {"Gi", int64_t{1} << 30},
                                                 {"Ti", int64_t{1} << 40}};
  auto it = suffix.find(q.substr(digits));
  return it == suffix.end() ? -1 : n * it->second;
}

std::vector<std::string> Strings(const YAML::Node& n) {
  std::vector<std::string> out;
  if (n && n.IsSequence()) {
    for (const auto& v : n) out.push_back(v.as<std::string>());
  }
  return out;
}

class ManifestTest : public ::testing::Test {
 protected:
  // Renders in SetUp, not in a member initializer: without kubectl the test must be
  // skipped, not fail on a render that could not run.
  void SetUp() override {
    if (!OnPath("kubectl")) GTEST_SKIP() << "kubectl not on PATH: manifest checks skipped";
    rendered_ = Render("daemonset");
  }

  // Renders a kustomization under the repository root.
  static Rendered Render(const std::string& dir) {
    CommandResult r =
        RunCommand("kubectl kustomize " + ShellQuote(std::string(ASHIATO_SOURCE_DIR) + "/" + dir));
    EXPECT_EQ(r.exit_code, 0) << "kubectl kustomize " << dir << " failed";
    Rendered out;
    for (const auto& doc : YAML::LoadAll(r.out)) {
      if (doc.IsMap()) out.objects.push_back(doc);
    }
    return out;
  }

  // Containers and init containers of a pod template.
  static std::vector<YAML::Node> Containers(const YAML::Node& pod_spec) {
    std::vector<YAML::Node> out;
    for (const char* key : {"initContainers", "containers"}) {
      if (pod_spec[key]) {
        for (const auto& c : pod_spec[key]) out.push_back(c);
      }
    }
    return out;
  }

  // The value of `--flag=value` in a container's args; "" if absent.
  static std::string Arg(const YAML::Node& container, const std::string& flag) {
    for (const auto& a : Strings(container["args"])) {
      if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
    }
    return "";
  }
  static bool HasArg(const YAML::Node& container, const std::string& flag) {
    for (const auto& a : Strings(container["args"])) {
      if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
    }
    return false;
  }

  static YAML::Node Env(const YAML::Node& container, const std::string& name) {
    for (const auto& e : container["env"]) {
      if (Str(e["name"]) == name) return e;
    }
    return Absent();
  }

  // The aggregator's single container; Absent() (and a failure) if it is not so.
  static YAML::Node AggregatorContainer(const YAML::Node& sts) {
    YAML::Node containers = sts["spec"]["template"]["spec"]["containers"];
    EXPECT_TRUE(containers.IsSequence() && containers.size() == 1u);
    return containers.IsSequence() && containers.size() == 1u ? containers[0] : Absent();
  }

  // The name of the volume mounted exactly at `path` in container `c`; "" if none.
  static std::string VolumeMountedAt(const YAML::Node& c, const std::string& path) {
    for (const auto& m : c["volumeMounts"]) {
      if (Str(m["mountPath"]) == path) return Str(m["name"]);
    }
    return "";
  }

  // The pod volume (spec.template.spec.volumes) with this name; Absent() if none.
  static YAML::Node PodVolume(const YAML::Node& workload, const std::string& name) {
    for (const auto& v : workload["spec"]["template"]["spec"]["volumes"]) {
      if (Str(v["name"]) == name) return v;
    }
    return Absent();
  }

  Rendered rendered_;
};

TEST_F(ManifestTest, RendersExactlyTheExpectedObjects) {
  std::vector<std::string> got;
  for (const auto& o : rendered_.objects) {
    got.push_back(Str(o["kind"]) + "/" + Str(o["metadata"]["name"]));
  }
  EXPECT_THAT(
      got, UnorderedElementsAre("Namespace/ashiato", "ResourceQuota/ashiato-critical-pods",
                                "ServiceAccount/ashiato-agent", "ClusterRole/ashiato-agent",
                                "ClusterRoleBinding/ashiato-agent", "DaemonSet/ashiato-agent",
                                "ServiceAccount/ashiato-aggregator", "Role/ashiato-aggregator",
                                "RoleBinding/ashiato-aggregator",
                                "ClusterRole/ashiato-aggregator-tokenreview",
                                "ClusterRoleBinding/ashiato-aggregator-tokenreview",
                                "ClusterRole/ashiato-reader", "ClusterRole/ashiato-metrics-reader",
                                "StatefulSet/ashiato-aggregator", "Service/ashiato-aggregator",
                                "NetworkPolicy/ashiato-aggregator", "ConfigMap/ashiato-config",
                                "Role/ashiato-agent-config", "RoleBinding/ashiato-agent-config"));
}

TEST_F(ManifestTest, NamespacedObjectsLiveInAshiatoAndCarryCommonLabels) {
  const std::set<std::string> cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"};
  for (const auto& o : rendered_.objects) {
    std::string id = Str(o["kind"]) + "/" + Str(o["metadata"]["name"]);
    if (cluster_scoped.count(Str(o["kind"])) == 0) {
      EXPECT_EQ(Str(o["metadata"]["namespace"]), kNamespace) << id;
    } else {
      EXPECT_FALSE(o["metadata"]["namespace"]) << id;
    }
    EXPECT_EQ(Str(o["metadata"]["labels"]["app.kubernetes.io/part-of"]), "ashiato") << id;
    EXPECT_FALSE(Str(o["metadata"]["labels"]["app.kubernetes.io/name"]).empty()) << id;
  }
}

// Rules of a Role/ClusterRole as "group|resource|verb,verb" strings, verbs sorted,
// and "|name,name" after them when the rule names its objects (resourceNames).
std::vector<std::string> Rules(const YAML::Node& role) {
  std::vector<std::string> out;
  for (const auto& rule : role["rules"]) {
    std::set<std::string> verbs;
    for (const auto& v : Strings(rule["verbs"])) verbs.insert(v);
    std::string joined;
    for (const auto& v : verbs) joined += (joined.empty() ? "" : ",") + v;
    std::string names;
    for (const auto& n : Strings(rule["resourceNames"])) names += (names.empty() ? "|" : ",") + n;
    for (const auto& g : Strings(rule["apiGroups"])) {
      for (const auto& r : Strings(rule["resources"])) {
        out.push_back(g + "|" + r + "|" + joined + names);
      }
    }
    EXPECT_FALSE(rule["resourceNames"] && rule["nonResourceURLs"]);
  }
  return out;
}

TEST_F(ManifestTest, AgentRbacIsReadOnlyPods) {
  YAML::Node role = rendered_.Find("ClusterRole", "ashiato-agent");
  ASSERT_TRUE(role);
  EXPECT_THAT(Rules(role), ElementsAre("|pods|get,list,watch"));
}

TEST_F(ManifestTest, AggregatorRbacIsConfigMapsAndAgentPodsInItsNamespaceAndReviews) {
  YAML::Node role = rendered_.Find("Role", "ashiato-aggregator");
  ASSERT_TRUE(role);
  EXPECT_EQ(Str(role["metadata"]["namespace"]), kNamespace);
  // get pods (not list or watch): the pod a pod-bound push token names, in the
  // agents' namespace, binds the push to its node on Kubernetes < 1.30.
  // watch only on the live configuration (get/list it has for the hourly ConfigMaps).
  EXPECT_THAT(Rules(role), ElementsAre("|configmaps|create,delete,get,list,update",
                                       "|configmaps|watch|ashiato-config", "|pods|get"));
  YAML::Node tr = rendered_.Find("ClusterRole", "ashiato-aggregator-tokenreview");
  ASSERT_TRUE(tr);
  // What system:auth-delegator grants: TokenReview for every token, SubjectAccessReview
  // for what readers may see; and one cluster-wide Node list+watch for the nodes'
  // addresses and zone (no get, no write).
  EXPECT_THAT(Rules(tr),
              ElementsAre("authentication.k8s.io|tokenreviews|create",
                          "authorization.k8s.io|subjectaccessreviews|create", "|nodes|list,watch"));
  // The agents live in the aggregator's namespace, so a Role suffices.
  YAML::Node sts = rendered_.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(sts);
  YAML::Node c = AggregatorContainer(sts);
  EXPECT_EQ(Arg(c, "--agent-identity"), "system:serviceaccount:$(POD_NAMESPACE):ashiato-agent");
  EXPECT_FALSE(HasArg(c, "--allow-unbound-agent-tokens")) << "pushes must be node-bound";
}

TEST_F(ManifestTest, ReadersAndMetricsScrapersHaveRolesToBind) {
  // Exactly what the aggregator asks SubjectAccessReview about.
  YAML::Node reader = rendered_.Find("ClusterRole", "ashiato-reader");
  ASSERT_TRUE(reader);
  EXPECT_THAT(Rules(reader), ElementsAre("|pods|get,list"));
  YAML::Node metrics = rendered_.Find("ClusterRole", "ashiato-metrics-reader");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics["rules"].size(), 1u);
  EXPECT_THAT(Strings(metrics["rules"][0]["nonResourceURLs"]), ElementsAre("/metrics"));
  EXPECT_THAT(Strings(metrics["rules"][0]["verbs"]), ElementsAre("get"));
  EXPECT_FALSE(metrics["rules"][0]["resources"]);
  // Reads are authorized in the default install (and /metrics with them).
  YAML::Node sts = rendered_.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(sts);
  YAML::Node c = AggregatorContainer(sts);
  EXPECT_EQ(Arg(c, "--read-auth"), "tokenreview");
  EXPECT_FALSE(HasArg(c, "--metrics-auth")) << "/metrics follows --read-auth";
  // The examples bind these roles and nothing else.
  for (const char* example : {"reader-namespaced.yaml", "reader-cluster.yaml"}) {
    std::string text = ReadFile(std::string(ASHIATO_SOURCE_DIR) + "/daemonset/examples/" + example);
    ASSERT_FALSE(text.empty()) << example;
    int bindings = 0;
    for (const auto& doc : YAML::LoadAll(text)) {
      std::string kind = Str(doc["kind"]);
      if (kind != "RoleBinding" && kind != "ClusterRoleBinding") continue;
      ++bindings;
      EXPECT_EQ(Str(doc["roleRef"]["kind"]), "ClusterRole") << example;
      EXPECT_TRUE(rendered_.Find("ClusterRole", Str(doc["roleRef"]["name"])))
          << example << " binds a role the install does not have";
      if (kind == "RoleBinding") {
        EXPECT_FALSE(Str(doc["metadata"]["namespace"]).empty()) << example;
      }
    }
    EXPECT_GE(bindings, 1) << example;
  }
}

TEST_F(ManifestTest, EachServiceAccountIsBoundToExactlyItsRoles) {
  // subject -> "Kind/role" bound to it.
  std::map<std::string, std::set<std::string>> bound;
  for (const char* kind : {"RoleBinding", "ClusterRoleBinding"}) {
    for (const auto& b : rendered_.OfKind(kind)) {
      std::string role = Str(b["roleRef"]["kind"]) + "/" + Str(b["roleRef"]["name"]);
      ASSERT_TRUE(rendered_.Find(Str(b["roleRef"]["kind"]), Str(b["roleRef"]["name"])))
          << "binding " << Str(b["metadata"]["name"]) << " refers to a missing " << role;
      for (const auto& s : b["subjects"]) {
        EXPECT_EQ(Str(s["kind"]), "ServiceAccount");
        bound[Str(s["namespace"]) + "/" + Str(s["name"])].insert(role);
      }
    }
  }
  EXPECT_THAT(bound["ashiato/ashiato-agent"],
              UnorderedElementsAre("ClusterRole/ashiato-agent", "Role/ashiato-agent-config"));
  EXPECT_THAT(bound["ashiato/ashiato-aggregator"],
              UnorderedElementsAre("Role/ashiato-aggregator",
                                   "ClusterRole/ashiato-aggregator-tokenreview"));
  EXPECT_EQ(bound.size(), 2u);
}

TEST_F(ManifestTest, LiveConfigurationIsOneConfigMapReadByNameOnly) {
  YAML::Node cm = rendered_.Find("ConfigMap", "ashiato-config");
  ASSERT_TRUE(cm);
  // Shipped empty: the flags' values, and `kubectl apply` of a new release keeps
  // the keys an operator added with `kubectl edit` (they are not in last-applied).
  EXPECT_EQ(cm["data"].size(), 0u);
  YAML::Node role = rendered_.Find("Role", "ashiato-agent-config");
  ASSERT_TRUE(role);
  EXPECT_THAT(Rules(role), ElementsAre("|configmaps|get,list,watch|ashiato-config"));
  YAML::Node ds = rendered_.Find("DaemonSet", "ashiato-agent");
  YAML::Node sts = rendered_.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(ds && sts);
  EXPECT_EQ(Arg(ds["spec"]["template"]["spec"]["containers"][0], "--config-map"),
            "$(POD_NAMESPACE)/ashiato-config");
  EXPECT_EQ(Arg(AggregatorContainer(sts), "--config-map"), "$(POD_NAMESPACE)/ashiato-config");
}

TEST_F(ManifestTest, AgentDaemonSetWiring) {
  YAML::Node ds = rendered_.Find("DaemonSet", "ashiato-agent");
  ASSERT_TRUE(ds);
  YAML::Node spec = ds["spec"]["template"]["spec"];
  EXPECT_EQ(Str(spec["serviceAccountName"]), "ashiato-agent");
  EXPECT_EQ(Str(ds["spec"]["updateStrategy"]["type"]), "RollingUpdate");
  EXPECT_EQ(Str(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"]), "10%");
  EXPECT_EQ(Str(spec["priorityClassName"]), "system-node-critical");

  // Tolerates every taint: exactly one toleration, operator Exists, no key or effect.
  ASSERT_TRUE(spec["tolerations"].IsSequence());
  ASSERT_EQ(spec["tolerations"].size(), 1u);
  YAML::Node tol = spec["tolerations"][0];
  EXPECT_EQ(Str(tol["operator"]), "Exists");
  EXPECT_FALSE(tol["key"]);
  EXPECT_FALSE(tol["effect"]);

  ASSERT_EQ(spec["containers"].size(), 1u);
  YAML::Node c = spec["containers"][0];
  YAML::Node node_env = Env(c, "NODE_NAME");
  ASSERT_TRUE(node_env) << "NODE_NAME env missing";
  EXPECT_EQ(Str(node_env["valueFrom"]["fieldRef"]["fieldPath"]), "spec.nodeName");
  EXPECT_EQ(Arg(c, "--node"), "$(NODE_NAME)");
  EXPECT_EQ(Arg(c, "--aggregator"), "http://ashiato-aggregator.$(POD_NAMESPACE).svc:8080");
  // Plain HTTP in the base, so the agent must be told it may send its token so.
  EXPECT_TRUE(HasArg(c, "--allow-insecure-aggregator"));
  EXPECT_EQ(Arg(c, "--listen-health"), ":9090");

  // The push token: a projected service account token for audience "ashiato",
  // mounted where --aggregator-token-file points.
  std::string token_file = Arg(c, "--aggregator-token-file");
  ASSERT_FALSE(token_file.empty());
  bool found = false;
  for (const auto& m : c["volumeMounts"]) {
    std::string dir = Str(m["mountPath"]);
    if (token_file.rfind(dir + "/", 0) != 0) continue;
    for (const auto& v : spec["volumes"]) {
      if (Str(v["name"]) != Str(m["name"])) continue;
      ASSERT_TRUE(v["projected"]) << "token volume is not projected";
      for (const auto& src : v["projected"]["sources"]) {
        YAML::Node sat = src["serviceAccountToken"];
        if (!sat || dir + "/" + Str(sat["path"]) != token_file) continue;
        EXPECT_EQ(Str(sat["audience"]), "ashiato");
        EXPECT_EQ(sat["expirationSeconds"].as<int>(), 3600);
        found = true;
      }
    }
  }
  EXPECT_TRUE(found) << token_file << " is not a projected serviceAccountToken";

  // Probes and metrics on the health port.
  EXPECT_EQ(Str(c["livenessProbe"]["httpGet"]["path"]), "/healthz");
  EXPECT_EQ(Str(c["readinessProbe"]["httpGet"]["path"]), "/readyz");
  YAML::Node ann = ds["spec"]["template"]["metadata"]["annotations"];
  EXPECT_EQ(Str(ann["prometheus.io/scrape"]), "true");
  EXPECT_EQ(Str(ann["prometheus.io/port"]), "9090");

  EXPECT_EQ(Str(c["resources"]["requests"]["cpu"]), "10m");
  EXPECT_EQ(Str(c["resources"]["requests"]["memory"]), "16Mi");
  EXPECT_EQ(Str(c["resources"]["limits"]["cpu"]), "100m");
  EXPECT_EQ(Str(c["resources"]["limits"]["memory"]), "64Mi");
}

TEST_F(ManifestTest, CriticalPriorityIsAdmittedByQuota) {
  // Clusters that limit critical-priority consumption need a covering quota.
  YAML::Node q = rendered_.Find("ResourceQuota", "ashiato-critical-pods");
  ASSERT_TRUE(q);
  YAML::Node expr = q["spec"]["scopeSelector"]["matchExpressions"][0];
  EXPECT_EQ(Str(expr["scopeName"]), "PriorityClass");
  EXPECT_EQ(Str(expr["operator"]), "In");
  EXPECT_THAT(Strings(expr["values"]), ElementsAre("system-node-critical"));
}

TEST_F(ManifestTest, AggregatorStatefulSetAndServiceWiring) {
  // The old Deployment is gone: it would be a second writer of the store and the
  // ConfigMaps (upgrading deletes it first, docs/install.md).
  EXPECT_TRUE(rendered_.OfKind("Deployment").empty());
  YAML::Node sts = rendered_.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(sts);
  EXPECT_EQ(sts["spec"]["replicas"].as<int>(), 1);
  YAML::Node pod = sts["spec"]["template"];
  EXPECT_EQ(Str(pod["spec"]["serviceAccountName"]), "ashiato-aggregator");
  YAML::Node c = AggregatorContainer(sts);
  ASSERT_TRUE(c);
  EXPECT_EQ(Arg(c, "--listen"), ":8080");
  EXPECT_EQ(Arg(c, "--audience"), "ashiato");
  EXPECT_EQ(Arg(c, "--agent-identity"), "system:serviceaccount:$(POD_NAMESPACE):ashiato-agent");
  EXPECT_TRUE(HasArg(c, "--store-in-cm"));
  EXPECT_EQ(Arg(c, "--cm-namespace"), "$(POD_NAMESPACE)");
  YAML::Node ns_env = Env(c, "POD_NAMESPACE");
  ASSERT_TRUE(ns_env);
  EXPECT_EQ(Str(ns_env["valueFrom"]["fieldRef"]["fieldPath"]), "metadata.namespace");

  EXPECT_EQ(Str(c["readinessProbe"]["httpGet"]["path"]), "/readyz");
  EXPECT_EQ(Str(c["livenessProbe"]["httpGet"]["path"]), "/healthz");
  YAML::Node ann = pod["metadata"]["annotations"];
  EXPECT_EQ(Str(ann["prometheus.io/scrape"]), "true");
  EXPECT_EQ(Str(ann["prometheus.io/port"]), "8080");
  EXPECT_EQ(Str(ann["prometheus.io/path"]), "/metrics");

  // The Service reaches this pod on 8080 under the name the agents use, and it is the
  // StatefulSet's governing service.
  YAML::Node svc = rendered_.Find("Service", "ashiato-aggregator");
  ASSERT_TRUE(svc);
  EXPECT_EQ(Str(sts["spec"]["serviceName"]), Str(svc["metadata"]["name"]));
  for (const auto& kv : svc["spec"]["selector"]) {
    EXPECT_EQ(Str(pod["metadata"]["labels"][kv.first.as<std::string>()]), Str(kv.second));
  }
  ASSERT_EQ(svc["spec"]["ports"].size(), 1u);
  YAML::Node port = svc["spec"]["ports"][0];
  EXPECT_EQ(port["port"].as<int>(), 8080);
  std::string target = Str(port["targetPort"]);
  bool matches = false;
  for (const auto& p : c["ports"]) {
    if (Str(p["name"]) == target || Str(p["containerPort"]) == target) {
      matches = p["containerPort"].as<int>() == 8080;
    }
  }
  EXPECT_TRUE(matches) << "Service targetPort " << target << " is not container port 8080";
}

TEST_F(ManifestTest, DeploymentRecordTokenComesFromAnOptionalSecret) {
  // docs/deployment-records.md: records stay off until ORG is set; the token
  // is never in the manifest, and a missing Secret must not stop the pod.
  YAML::Node c = AggregatorContainer(rendered_.Find("StatefulSet", "ashiato-aggregator"));
  EXPECT_FALSE(Env(c, "ORG").IsDefined())
      << "ORG set in the base: records would be on for everyone";
  YAML::Node token = Env(c, "API_TOKEN");
  ASSERT_TRUE(token["name"].IsDefined()) << "API_TOKEN missing from the aggregator's env";
  EXPECT_FALSE(token["value"].IsDefined()) << "a literal token in the manifest";
  YAML::Node ref = token["valueFrom"]["secretKeyRef"];
  EXPECT_EQ(Str(ref["name"]), "ashiato-deployment-records");
  EXPECT_EQ(Str(ref["key"]), "api-token");
  EXPECT_TRUE(ref["optional"].as<bool>(false));
}

TEST_F(ManifestTest, AggregatorRolloutNeverRunsTwoPods) {
  // A StatefulSet deletes its pod and waits for it to be gone before creating the
  // replacement of the same identity: with one replica, Recreate semantics.
  YAML::Node sts = rendered_.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(sts);
  EXPECT_EQ(sts["spec"]["replicas"].as<int>(), 1);
  EXPECT_EQ(Str(sts["spec"]["podManagementPolicy"]), "OrderedReady");
  EXPECT_EQ(Str(sts["spec"]["updateStrategy"]["type"]), "RollingUpdate");
  // A partition would hold the pod back on the old template; maxUnavailable (alpha)
  // is irrelevant with one replica but must not be used to run pods in parallel.
  EXPECT_FALSE(sts["spec"]["updateStrategy"]["rollingUpdate"]) << "no rollingUpdate tuning";
  // Time for the final flush (store commit, ConfigMap shards) on SIGTERM.
  YAML::Node grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"];
  ASSERT_TRUE(grace);
  EXPECT_GE(grace.as<int>(), 60);
}

TEST_F(ManifestTest, AggregatorStoreIsAPersistentVolumeClaimAtTheDataDir) {
  YAML::Node sts = rendered_.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(sts);
  YAML::Node c = AggregatorContainer(sts);
  ASSERT_TRUE(c);
  EXPECT_EQ(Arg(c, "--data-dir"), kDataDir);
  std::string volume = VolumeMountedAt(c, kDataDir);
  EXPECT_EQ(volume, "data") << "nothing named data is mounted at " << kDataDir;

  // "data" comes from the claim template, not from a pod volume (which would shadow it).
  EXPECT_FALSE(PodVolume(sts, "data")) << "data is a pod volume, not the claim";
  YAML::Node templates = sts["spec"]["volumeClaimTemplates"];
  ASSERT_TRUE(templates.IsSequence());
  ASSERT_EQ(templates.size(), 1u);
  YAML::Node claim = templates[0];
  EXPECT_EQ(Str(claim["metadata"]["name"]), "data");
  EXPECT_THAT(Strings(claim["spec"]["accessModes"]), ElementsAre("ReadWriteOnce"));
  int64_t size = QuantityBytes(Str(claim["spec"]["resources"]["requests"]["storage"]));
  EXPECT_GE(size, int64_t{1} << 30) << "a store for 30 days needs more than that";
  // No storageClassName: the cluster's default class (overlays choose another).
  EXPECT_FALSE(claim["spec"]["storageClassName"]);
  // The claim template is immutable: the common label (free to change) stays out.
  EXPECT_FALSE(claim["metadata"]["labels"]["app.kubernetes.io/part-of"]);

  // Pruning by size starts before the volume is full.
  int64_t budget = QuantityBytes(Arg(c, "--retention-bytes"));
  ASSERT_GT(budget, 0) << "no --retention-bytes: a full volume stops ingest";
  EXPECT_LE(budget, size * 9 / 10) << "leave room for the WAL";

  // Writable by the image's nonroot user on a freshly provisioned volume.
  YAML::Node psc = sts["spec"]["template"]["spec"]["securityContext"];
  ASSERT_TRUE(psc["fsGroup"]);
  EXPECT_EQ(psc["fsGroup"].as<int>(), 65532);
  EXPECT_EQ(c["securityContext"]["runAsUser"].as<int>(), 65532);
}

TEST_F(ManifestTest, NoDeprecatedAggregatorFlags) {
  // --state-file and --history-size are no-ops since the store; the data dir replaces
  // the old dedup journal on an emptyDir.
  for (const char* dir : {"daemonset", "daemonset/overlays/monitoring",
                          "daemonset/overlays/ephemeral", "daemonset/overlays/tls"}) {
    Rendered r = dir == std::string("daemonset") ? rendered_ : Render(dir);
    int containers = 0;
    for (const auto& o : r.objects) {
      if (!o["spec"] || !o["spec"]["template"]) continue;
      for (const auto& c : Containers(o["spec"]["template"]["spec"])) {
        ++containers;
        for (const char* flag : kDeprecatedAggregatorFlags) {
          EXPECT_FALSE(HasArg(c, flag)) << dir << ": " << Str(o["kind"]) << "/"
                                        << Str(o["metadata"]["name"]) << " uses " << flag;
        }
      }
    }
    EXPECT_EQ(containers, 2) << dir;
  }
}

TEST_F(ManifestTest, EphemeralOverlayPutsTheStoreOnAnEmptyDir) {
  Rendered overlay = Render("daemonset/overlays/ephemeral");
  // The same objects as the base.
  std::set<std::string> base_ids, overlay_ids;
  for (const auto& o : rendered_.objects) {
    base_ids.insert(Str(o["kind"]) + "/" + Str(o["metadata"]["name"]));
  }
  for (const auto& o : overlay.objects) {
    overlay_ids.insert(Str(o["kind"]) + "/" + Str(o["metadata"]["name"]));
  }
  EXPECT_EQ(overlay_ids, base_ids);

  YAML::Node sts = overlay.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(sts);
  EXPECT_FALSE(sts["spec"]["volumeClaimTemplates"]) << "still claims a volume";
  YAML::Node c = AggregatorContainer(sts);
  ASSERT_TRUE(c);
  EXPECT_EQ(Arg(c, "--data-dir"), kDataDir);
  EXPECT_EQ(VolumeMountedAt(c, kDataDir), "data");
  YAML::Node data = PodVolume(sts, "data");
  ASSERT_TRUE(data) << "no pod volume named data";
  ASSERT_TRUE(data["emptyDir"]) << "data is not an emptyDir";
  EXPECT_FALSE(data["emptyDir"]["medium"]) << "a memory-backed store would count as memory";
  // Beyond sizeLimit the kubelet evicts the pod: the size budget must prune before.
  int64_t limit = QuantityBytes(Str(data["emptyDir"]["sizeLimit"]));
  ASSERT_GT(limit, 0) << "an unbounded emptyDir can fill the node's disk";
  int64_t budget = QuantityBytes(Arg(c, "--retention-bytes"));
  ASSERT_GT(budget, 0) << "no --retention-bytes (a size the aggregator and this test read)";
  EXPECT_LE(budget, limit * 9 / 10) << "leave room for the WAL";
  EXPECT_EQ(QuantityBytes(Str(c["resources"]["requests"]["ephemeral-storage"])), limit);

  // Everything else about the aggregator is the base's.
  YAML::Node base_sts = rendered_.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(base_sts);
  YAML::Node base_c = AggregatorContainer(base_sts);
  ASSERT_TRUE(base_c);
  std::vector<std::string> args, base_args;
  for (const auto& a : Strings(c["args"])) {
    if (a.rfind("--retention-bytes=", 0) != 0) args.push_back(a);
  }
  for (const auto& a : Strings(base_c["args"])) {
    if (a.rfind("--retention-bytes=", 0) != 0) base_args.push_back(a);
  }
  EXPECT_EQ(args, base_args);
  for (const char* key : {"replicas", "serviceName", "podManagementPolicy", "updateStrategy"}) {
    EXPECT_EQ(YAML::Dump(sts["spec"][key]), YAML::Dump(base_sts["spec"][key])) << key;
  }
  EXPECT_EQ(YAML::Dump(c["securityContext"]), YAML::Dump(base_c["securityContext"]));
  EXPECT_EQ(YAML::Dump(sts["spec"]["template"]["spec"]["securityContext"]),
            YAML::Dump(base_sts["spec"]["template"]["spec"]["securityContext"]));
}

TEST_F(ManifestTest, InstallPageNamesTheRenderedObjects) {
  // docs/install.md tells operators what to delete, back up and look at; the names it
  // uses are the ones a cluster gets.
  std::string doc = ReadFile(std::string(ASHIATO_SOURCE_DIR) + "/docs/install.md");
  ASSERT_FALSE(doc.empty());
  YAML::Node sts = rendered_.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(sts);
  std::string name = Str(sts["metadata"]["name"]);
  std::string ns = Str(sts["metadata"]["namespace"]);
  std::string claim = Str(sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]);
  // StatefulSet claims are named <template>-<statefulset>-<ordinal>.
  EXPECT_THAT(doc, ::testing::HasSubstr(claim + "-" + name + "-0"));
  EXPECT_THAT(doc, ::testing::HasSubstr("statefulset/" + name));
  EXPECT_THAT(doc, ::testing::HasSubstr("kubectl -n " + ns + " delete deployment " + name));
  EXPECT_THAT(doc, ::testing::HasSubstr("daemonset/overlays/ephemeral"));
  EXPECT_THAT(doc, ::testing::HasSubstr(std::string(kDataDir) + "/ashiato.db"));
}

TEST_F(ManifestTest, EveryContainerIsHardened) {
  int checked = 0;
  for (const char* kind : {"DaemonSet", "Deployment", "StatefulSet"}) {
    for (const auto& w : rendered_.OfKind(kind)) {
      std::string wid = std::string(kind) + "/" + Str(w["metadata"]["name"]);
      YAML::Node spec = w["spec"]["template"]["spec"];
      for (const char* host : {"hostNetwork", "hostPID", "hostIPC"}) {
        EXPECT_TRUE(!spec[host] || !spec[host].as<bool>()) << wid << " " << host;
      }
      EXPECT_EQ(Str(spec["securityContext"]["seccompProfile"]["type"]), "RuntimeDefault") << wid;
      for (const auto& v : spec["volumes"]) {
        EXPECT_FALSE(v["hostPath"]) << wid << " mounts a hostPath";
      }
      for (const auto& c : Containers(spec)) {
        std::string id = wid + " container " + Str(c["name"]);
        YAML::Node sc = c["securityContext"];
        ASSERT_TRUE(sc) << id;
        EXPECT_TRUE(sc["runAsNonRoot"].as<bool>()) << id;
        EXPECT_EQ(sc["runAsUser"].as<int>(), 65532) << id;
        EXPECT_EQ(sc["runAsGroup"].as<int>(), 65532) << id;
        EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>()) << id;
        EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true)) << id;
        EXPECT_FALSE(sc["privileged"].as<bool>(false)) << id;
        EXPECT_THAT(Strings(sc["capabilities"]["drop"]), ElementsAre("ALL")) << id;
        EXPECT_FALSE(sc["capabilities"]["add"]) << id;
        EXPECT_EQ(Str(sc["seccompProfile"]["type"]), "RuntimeDefault") << id;
        EXPECT_TRUE(c["resources"]["requests"] && c["resources"]["limits"]) << id;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 2);
}

TEST_F(ManifestTest, NetworkPolicyAdmitsOnlyAgentsAndQueryClientsOnPort8080) {
  YAML::Node np = rendered_.Find("NetworkPolicy", "ashiato-aggregator");
  ASSERT_TRUE(np);
  YAML::Node d = rendered_.Find("StatefulSet", "ashiato-aggregator");
  YAML::Node ds = rendered_.Find("DaemonSet", "ashiato-agent");
  ASSERT_TRUE(d && ds);
  // Selects the aggregator's pods, and only them.
  for (const auto& kv : np["spec"]["podSelector"]["matchLabels"]) {
    EXPECT_EQ(Str(d["spec"]["template"]["metadata"]["labels"][kv.first.as<std::string>()]),
              Str(kv.second));
    EXPECT_NE(Str(ds["spec"]["template"]["metadata"]["labels"][kv.first.as<std::string>()]),
              Str(kv.second));
  }
  EXPECT_THAT(Strings(np["spec"]["policyTypes"]), ElementsAre("Ingress"));
  ASSERT_EQ(np["spec"]["ingress"].size(), 1u);
  YAML::Node rule = np["spec"]["ingress"][0];
  ASSERT_EQ(rule["ports"].size(), 1u);
  EXPECT_EQ(rule["ports"][0]["port"].as<int>(), 8080);
  EXPECT_EQ(Str(rule["ports"][0]["protocol"]), "TCP");

  ASSERT_EQ(rule["from"].size(), 2u);
  // Peer 1: the agent pods of this namespace (no namespaceSelector = same namespace).
  YAML::Node agents = rule["from"][0];
  EXPECT_FALSE(agents["namespaceSelector"]);
  EXPECT_FALSE(agents["ipBlock"]);
  ASSERT_EQ(agents["podSelector"]["matchLabels"].size(), 1u);
  EXPECT_EQ(Str(agents["podSelector"]["matchLabels"]["app.kubernetes.io/name"]), "ashiato-agent");
  EXPECT_EQ(Str(ds["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]),
            "ashiato-agent");
  // Peer 2: opted-in query clients, in any namespace.
  YAML::Node query = rule["from"][1];
  EXPECT_FALSE(query["ipBlock"]);
  ASSERT_EQ(query["podSelector"]["matchLabels"].size(), 1u);
  EXPECT_EQ(Str(query["podSelector"]["matchLabels"]["ashiato.io/query"]), "true");
}

TEST_F(ManifestTest, MonitoringOverlayAddsMonitorsRulesAndDashboard) {
  // The rules and the dashboard's queries themselves are checked with promtool against
  // the real binaries by tests/monitoring (ctest -R Monitoring).
  Rendered overlay = Render("daemonset/overlays/monitoring");
  EXPECT_EQ(overlay.objects.size(), rendered_.objects.size() + 4);
  YAML::Node sm = overlay.Find("ServiceMonitor", "ashiato-aggregator");
  ASSERT_TRUE(sm);
  YAML::Node svc = overlay.Find("Service", "ashiato-aggregator");
  ASSERT_TRUE(svc);
  for (const auto& kv : sm["spec"]["selector"]["matchLabels"]) {
    EXPECT_EQ(Str(svc["metadata"]["labels"][kv.first.as<std::string>()]), Str(kv.second));
  }
  EXPECT_EQ(Str(sm["spec"]["endpoints"][0]["port"]), Str(svc["spec"]["ports"][0]["name"]));
  EXPECT_EQ(Str(sm["spec"]["endpoints"][0]["path"]), "/metrics");
  // /metrics needs a token (ClusterRole ashiato-metrics-reader): Prometheus sends its own.
  EXPECT_FALSE(Str(sm["spec"]["endpoints"][0]["bearerTokenFile"]).empty());
  YAML::Node pm = overlay.Find("PodMonitor", "ashiato-agent");
  ASSERT_TRUE(pm);
  EXPECT_EQ(Str(pm["spec"]["podMetricsEndpoints"][0]["port"]), "health");

  // The alerts select targets by job: the monitors set exactly those jobs.
  auto job_of = [](const YAML::Node& endpoint) {
    for (const auto& r : endpoint["relabelings"]) {
      if (Str(r["targetLabel"]) == "job") return Str(r["replacement"]);
    }
    return std::string();
  };
  EXPECT_EQ(job_of(sm["spec"]["endpoints"][0]), "ashiato-aggregator");
  EXPECT_EQ(job_of(pm["spec"]["podMetricsEndpoints"][0]), "ashiato-agent");
  YAML::Node rule = overlay.Find("PrometheusRule", "ashiato");
  ASSERT_TRUE(rule);
  EXPECT_EQ(Str(rule["metadata"]["namespace"]), kNamespace);
  std::set<std::string> alerts;
  std::string exprs;
  for (const auto& group : rule["spec"]["groups"]) {
    for (const auto& r : group["rules"]) {
      alerts.insert(Str(r["alert"]));
      exprs += Str(r["expr"]) + "\n";
      EXPECT_TRUE(r["labels"]["severity"]) << Str(r["alert"]);
      EXPECT_TRUE(r["annotations"]["summary"]) << Str(r["alert"]);
    }
  }
  for (const char* a :
       {"AshiatoAgentDown", "AshiatoAgentStale", "AshiatoAgentPushFailing",
        "AshiatoTokenReviewErrors", "AshiatoAgentApiErrors", "AshiatoConfigMapWriteFailures",
        "AshiatoStoreErrors", "AshiatoConfigMapBudgetPruning", "AshiatoDeploymentRecordsFailing"}) {
    EXPECT_TRUE(alerts.count(a)) << a;
  }
  EXPECT_THAT(exprs, ::testing::HasSubstr("job=\"ashiato-agent\""));
  EXPECT_THAT(exprs, ::testing::HasSubstr("job=\"ashiato-aggregator\""));

  // The dashboard, for Grafana's sidecar (label grafana_dashboard: "1").
  YAML::Node cm = overlay.Find("ConfigMap", "ashiato-grafana-dashboard");
  ASSERT_TRUE(cm);
  EXPECT_EQ(Str(cm["metadata"]["namespace"]), kNamespace);
  EXPECT_EQ(Str(cm["metadata"]["labels"]["grafana_dashboard"]), "1");
  EXPECT_EQ(Str(cm["metadata"]["labels"]["app.kubernetes.io/part-of"]), "ashiato");
  EXPECT_THAT(Str(cm["data"]["ashiato-dashboard.json"]),
              ::testing::HasSubstr("\"uid\": \"ashiato\""));
}

TEST_F(ManifestTest, RenamedNamespaceLeavesNoAshiatoNamespace) {
  // docs/install.md promises that an overlay with another `namespace:` moves
  // everything: nothing may still point at "ashiato" as a namespace.
  const std::string dir = "daemonset/examples/renamed-namespace";
  const std::string ns = "observability";
  CommandResult raw =
      RunCommand("kubectl kustomize " + ShellQuote(std::string(ASHIATO_SOURCE_DIR) + "/" + dir));
  ASSERT_EQ(raw.exit_code, 0);
  for (const char* left : {"namespace: ashiato\n", ".ashiato.svc",
                           ".ashiato:", ":ashiato:", "matchNames", "[ashiato]"}) {
    EXPECT_EQ(raw.out.find(left), std::string::npos) << "still in the render: " << left;
  }
  Rendered renamed = Render(dir);
  // The monitoring overlay's objects, all of them moved.
  EXPECT_EQ(renamed.objects.size(), Render("daemonset/overlays/monitoring").objects.size());
  for (const auto& o : renamed.objects) {
    std::string id = Str(o["kind"]) + "/" + Str(o["metadata"]["name"]);
    if (Str(o["kind"]) == "Namespace") {
      EXPECT_EQ(Str(o["metadata"]["name"]), ns);
      continue;
    }
    if (o["metadata"]["namespace"]) {
      EXPECT_EQ(Str(o["metadata"]["namespace"]), ns) << id;
    }
    for (const auto& subject : o["subjects"]) {
      if (Str(subject["kind"]) == "ServiceAccount") {
        EXPECT_EQ(Str(subject["namespace"]), ns) << id;
      }
    }
  }
  // The agents find the aggregator in their own namespace.
  YAML::Node ds = renamed.Find("DaemonSet", "ashiato-agent");
  ASSERT_TRUE(ds);
  YAML::Node agent = ds["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(Arg(agent, "--aggregator"), "http://ashiato-aggregator.$(POD_NAMESPACE).svc:8080");
  EXPECT_EQ(Str(Env(agent, "POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"]),
            "metadata.namespace");
  // The monitors select their own namespace (no namespaceSelector).
  for (const char* kind : {"ServiceMonitor", "PodMonitor"}) {
    for (const auto& o : renamed.objects) {
      if (Str(o["kind"]) == kind) {
        EXPECT_FALSE(o["spec"]["namespaceSelector"]) << kind;
      }
    }
  }
}

TEST_F(ManifestTest, RenamedNamespaceWithTlsNamesItsServiceInTheCertificate) {
  // The TLS overlay's Certificate names the Service's DNS name, which has the
  // namespace in it: the example's replacements must follow the rename.
  const std::string dir = "daemonset/examples/renamed-namespace-tls";
  const std::string ns = "observability";
  CommandResult raw =
      RunCommand("kubectl kustomize " + ShellQuote(std::string(ASHIATO_SOURCE_DIR) + "/" + dir));
  ASSERT_EQ(raw.exit_code, 0) << raw.out;
  for (const char* left : {"namespace: ashiato\n", ".ashiato.svc", "ashiato-aggregator.ashiato",
                           ".ashiato:", ":ashiato:", "[ashiato]"}) {
    EXPECT_EQ(raw.out.find(left), std::string::npos) << "still in the render: " << left;
  }
  Rendered renamed = Render(dir);
  EXPECT_EQ(renamed.objects.size(), Render("daemonset/overlays/tls").objects.size());
  YAML::Node cert = renamed.Find("Certificate", "ashiato-aggregator");
  ASSERT_TRUE(cert);
  EXPECT_EQ(Str(cert["metadata"]["namespace"]), ns);
  EXPECT_EQ(Str(cert["spec"]["commonName"]), "ashiato-aggregator." + ns + ".svc");
  std::vector<std::string> names;
  for (const auto& n : cert["spec"]["dnsNames"]) names.push_back(Str(n));
  EXPECT_EQ(names, (std::vector<std::string>{"ashiato-aggregator", "ashiato-aggregator." + ns,
                                             "ashiato-aggregator." + ns + ".svc",
                                             "ashiato-aggregator." + ns + ".svc.cluster.local"}));
  // The agents verify the name they dial: the Service in their own namespace.
  YAML::Node ds = renamed.Find("DaemonSet", "ashiato-agent");
  ASSERT_TRUE(ds);
  EXPECT_EQ(Arg(ds["spec"]["template"]["spec"]["containers"][0], "--aggregator"),
            "https://ashiato-aggregator.$(POD_NAMESPACE).svc:8080");
}

TEST_F(ManifestTest, TlsOverlayServesHttpsWithCertManagerAndAgentsVerifyIt) {
  Rendered overlay = Render("daemonset/overlays/tls");
  // The base's objects plus the cert-manager ones.
  std::set<std::string> base_ids, overlay_ids;
  for (const auto& o : rendered_.objects) {
    base_ids.insert(Str(o["kind"]) + "/" + Str(o["metadata"]["name"]));
  }
  for (const auto& o : overlay.objects) {
    overlay_ids.insert(Str(o["kind"]) + "/" + Str(o["metadata"]["name"]));
  }
  std::set<std::string> added;
  std::set_difference(overlay_ids.begin(), overlay_ids.end(), base_ids.begin(), base_ids.end(),
                      std::inserter(added, added.end()));
  EXPECT_EQ(added, (std::set<std::string>{"Issuer/ashiato-selfsigned", "Certificate/ashiato-ca",
                                          "Issuer/ashiato-ca", "Certificate/ashiato-aggregator"}));
  for (const auto& o : overlay.objects) {
    if (Str(o["apiVersion"]).rfind("cert-manager.io/", 0) == 0) {
      EXPECT_EQ(Str(o["metadata"]["namespace"]), kNamespace) << Str(o["metadata"]["name"]);
    }
  }
  // The serving certificate: from the namespace's CA, for the name agents use.
  YAML::Node cert = overlay.Find("Certificate", "ashiato-aggregator");
  ASSERT_TRUE(cert);
  const std::string secret = Str(cert["spec"]["secretName"]);
  EXPECT_EQ(Str(cert["spec"]["issuerRef"]["name"]), "ashiato-ca");
  YAML::Node ca = overlay.Find("Certificate", "ashiato-ca");
  ASSERT_TRUE(ca);
  EXPECT_TRUE(ca["spec"]["isCA"].as<bool>());
  EXPECT_EQ(Str(overlay.Find("Issuer", "ashiato-ca")["spec"]["ca"]["secretName"]),
            Str(ca["spec"]["secretName"]));
  EXPECT_FALSE(Str(cert["spec"]["renewBefore"]).empty()) << "renewed before it expires";

  // Aggregator: HTTPS from that Secret, re-read on rotation; probes and scraping in HTTPS.
  YAML::Node sts = overlay.Find("StatefulSet", "ashiato-aggregator");
  ASSERT_TRUE(sts);
  YAML::Node c = AggregatorContainer(sts);
  ASSERT_TRUE(c);
  std::string cert_file = Arg(c, "--tls-cert-file"), key_file = Arg(c, "--tls-key-file");
  ASSERT_FALSE(cert_file.empty());
  ASSERT_FALSE(key_file.empty());
  std::string dir = cert_file.substr(0, cert_file.rfind('/'));
  EXPECT_EQ(key_file.substr(0, key_file.rfind('/')), dir);
  std::string volume = VolumeMountedAt(c, dir);
  ASSERT_FALSE(volume.empty()) << "nothing mounted at " << dir;
  YAML::Node v = PodVolume(sts, volume);
  ASSERT_TRUE(v["secret"]);
  EXPECT_EQ(Str(v["secret"]["secretName"]), secret);
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
    EXPECT_EQ(Str(c[probe]["httpGet"]["scheme"]), "HTTPS") << probe;
  }
  EXPECT_EQ(Str(sts["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scheme"]),
            "https");
  // Everything else about the aggregator is the base's.
  YAML::Node base_c = AggregatorContainer(rendered_.Find("StatefulSet", "ashiato-aggregator"));
  std::vector<std::string> args = Strings(c["args"]), base_args = Strings(base_c["args"]);
  ASSERT_GE(args.size(), base_args.size());
  EXPECT_EQ(std::vector<std::string>(args.begin(), args.begin() + base_args.size()), base_args);

  // Agents: https to a name in the certificate, trusting only its CA, never plain HTTP.
  YAML::Node ds = overlay.Find("DaemonSet", "ashiato-agent");
  ASSERT_TRUE(ds);
  YAML::Node a = ds["spec"]["template"]["spec"]["containers"][0];
  std::string url = Arg(a, "--aggregator");
  ASSERT_EQ(url.rfind("https://", 0), 0u) << url;
  std::string host = url.substr(8, url.rfind(':') - 8);
  // $(POD_NAMESPACE) is the agents' own namespace (downward API).
  const std::string var = "$(POD_NAMESPACE)";
  ASSERT_EQ(Str(Env(a, "POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"]),
            "metadata.namespace");
  if (size_t at = host.find(var); at != std::string::npos) {
    host.replace(at, var.size(), Str(ds["metadata"]["namespace"]));
  }
  EXPECT_THAT(Strings(cert["spec"]["dnsNames"]), ::testing::Contains(host));
  EXPECT_FALSE(HasArg(a, "--allow-insecure-aggregator"));
  std::string ca_file = Arg(a, "--aggregator-ca-file");
  ASSERT_FALSE(ca_file.empty());
  std::string ca_dir = ca_file.substr(0, ca_file.rfind('/'));
  std::string ca_volume = VolumeMountedAt(a, ca_dir);
  ASSERT_FALSE(ca_volume.empty());
  YAML::Node cv = PodVolume(ds, ca_volume);
  ASSERT_TRUE(cv["secret"]);
  EXPECT_EQ(Str(cv["secret"]["secretName"]), secret);
  // Only ca.crt reaches the agents' nodes, never the serving key.
  ASSERT_EQ(cv["secret"]["items"].size(), 1u);
  EXPECT_EQ(Str(cv["secret"]["items"][0]["key"]), "ca.crt");
  EXPECT_EQ(ca_dir + "/" + Str(cv["secret"]["items"][0]["path"]), ca_file);
}

}  // namespace
}  // namespace ashiato::testing
