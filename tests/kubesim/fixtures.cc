#include "tests/kubesim/fixtures.h"

#include <openssl/sha.h>

#include "common/time_util.h"

namespace kubesim {
namespace {

using json = nlohmann::json;

struct Template {
  const char* ns;
  const char* owner_kind;  // ReplicaSet, StatefulSet, DaemonSet
  const char* owner_name;
  const char* app;
  const char* container;
  const char* image;
  const char* image_repo;  // Canonical repository for imageID.
};

// Slot 0 of every node is the DaemonSet pod; the others cycle through these.
const Template kDaemonSet = {"kube-system",
                             "DaemonSet",
                             "node-exporter",
                             "node-exporter",
                             "node-exporter",
                             "quay.io/prometheus/node-exporter:v1.7.0",
                             "quay.io/prometheus/node-exporter"};
const Template kTemplates[] = {
    {"default", "ReplicaSet", "web-7d4b9c8f6d", "web", "nginx", "nginx:1.25.3",
     "docker.io/library/nginx"},
    {"team-a", "ReplicaSet", "api-5f9c6d7b8c", "api", "api", "ghcr.io/team-a/api:2.4.1",
     "ghcr.io/team-a/api"},
    {"team-a", "StatefulSet", "db", "db", "postgres", "postgres:16.2",
     "docker.io/library/postgres"},
    {"kube-system", "ReplicaSet", "coredns-76f75df574", "kube-dns", "coredns",
     "registry.k8s.io/coredns/coredns:v1.11.1", "registry.k8s.io/coredns/coredns"},
    {"default", "ReplicaSet", "worker-6c8d9f7b5d", "worker", "worker", "busybox:1.36",
     "docker.io/library/busybox"},
};

std::string Now() { return ashiato::FormatRfc3339(std::chrono::system_clock::now()); }

}  // namespace

std::string Sha256Hex(const std::string& text) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  static const char* kHex = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned char c : md) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

int NodeIndex(const std::string& node) {
  if (node.rfind("node-", 0) != 0) return 0;
  try {
    return std::stoi(node.substr(5));
  } catch (...) {
    return 0;
  }
}

std::string NodePodPrefix(int i) {
  return "10." + std::to_string(128 + (i >> 8) % 128) + "." + std::to_string(i & 255) + ".";
}

std::string NodeInternalIp(int i) {
  return "172." + std::to_string(16 + (i >> 16)) + "." + std::to_string((i >> 8) & 255) + "." +
         std::to_string(i & 255);
}

std::string Fixtures::RandomNode() {
  if (nodes_ <= 0) return "";
  return "node-" + std::to_string(1 + rng_() % nodes_);
}

json Fixtures::MakeNode(int i) {
  std::string name = "node-" + std::to_string(i);
  std::string t = Now();
  static const char* kZones[] = {"zone-a", "zone-b", "zone-c"};
  std::string cidr = NodePodPrefix(i) + "0/24";
  return {{"metadata",
           {{"name", name},
            {"labels",
             {{"kubernetes.io/hostname", name},
              {"kubernetes.io/os", "linux"},
              {"kubernetes.io/arch", "amd64"},
              {"node.kubernetes.io/instance-type", "m5.xlarge"},
              {"topology.kubernetes.io/zone", kZones[i % 3]},
              {"topology.kubernetes.io/region", "region-1"}}}}},
          {"spec", {{"podCIDR", cidr}, {"podCIDRs", {cidr}}, {"providerID", "kubesim://" + name}}},
          {"status",
           {{"addresses",
             {{{"type", "InternalIP"}, {"address", NodeInternalIp(i)}},
              {{"type", "Hostname"}, {"address", name}}}},
            {"conditions",
             {{{"type", "Ready"},
               {"status", "True"},
               {"reason", "KubeletReady"},
               {"message", "kubelet is posting ready status"},
               {"lastHeartbeatTime", t},
               {"lastTransitionTime", t}}}},
            {"capacity", {{"cpu", "4"}, {"memory", "16Gi"}, {"pods", "110"}}},
            {"allocatable", {{"cpu", "3920m"}, {"memory", "15Gi"}, {"pods", "110"}}},
            {"nodeInfo",
             {{"kubeletVersion", "v1.32.0"},
              {"kubeProxyVersion", "v1.32.0"},
              {"containerRuntimeVersion", "containerd://1.7.13"},
              {"osImage", "Ubuntu 22.04.4 LTS"},
              {"kernelVersion", "6.5.0-1014-aws"},
              {"operatingSystem", "linux"},
              {"architecture", "amd64"}}}}}};
}

json Fixtures::MakePod(int tmpl, const std::string& node) {
  const Template& t =
      tmpl < 0 ? kDaemonSet : kTemplates[tmpl % (sizeof(kTemplates) / sizeof(kTemplates[0]))];
  json md = {{"namespace", t.ns}, {"labels", {{"app", t.app}}}};
  std::string owner_uid = Sha256Hex(std::string(t.ns) + "/" + t.owner_name).substr(7, 32);
  owner_uid = owner_uid.substr(0, 8) + "-" + owner_uid.substr(8, 4) + "-4" +
              owner_uid.substr(13, 3) + "-" + owner_uid.substr(16, 4) + "-" +
              owner_uid.substr(20, 12);
  md["ownerReferences"] = {{{"apiVersion", "apps/v1"},
                            {"kind", t.owner_kind},
                            {"name", t.owner_name},
                            {"uid", owner_uid},
                            {"controller", true},
                            {"blockOwnerDeletion", true}}};
  std::string kind = t.owner_kind;
  if (kind == "StatefulSet") {
    std::string name = std::string(t.owner_name) + "-" + std::to_string(statefulset_ordinal_++);
    md["name"] = name;
    md["labels"]["statefulset.kubernetes.io/pod-name"] = name;
    md["labels"]["apps.kubernetes.io/pod-index"] = std::to_string(statefulset_ordinal_ - 1);
  } else if (kind == "ReplicaSet") {
    std::string rs = t.owner_name;
    md["generateName"] = rs + "-";
    md["labels"]["pod-template-hash"] = rs.substr(rs.rfind('-') + 1);
  } else {
    md["generateName"] = std::string(t.owner_name) + "-";
    md["labels"]["controller-revision-hash"] = "6b8f9d7c5f";
    md["labels"]["pod-template-generation"] = "1";
  }
  json spec = {{"nodeName", node},
               {"containers",
                {{{"name", t.container},
                  {"image", t.image},
                  {"imagePullPolicy", "IfNotPresent"},
                  {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "128Mi"}}}}},
                  {"terminationMessagePath", "/dev/termination-log"},
                  {"terminationMessagePolicy", "File"}}}},
               {"restartPolicy", "Always"},
               {"terminationGracePeriodSeconds", 30},
               {"dnsPolicy", "ClusterFirst"},
               {"serviceAccountName", "default"},
               {"schedulerName", "default-scheduler"},
               {"priority", 0},
               {"enableServiceLinks", true},
               {"preemptionPolicy", "PreemptLowerPriority"}};
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", md},
          {"spec", spec},
          {"status", {{"phase", "Pending"}, {"qosClass", "Burstable"}}}};
}

void Fixtures::MarkRunning(json& pod) {
  std::string node = pod["spec"].value("nodeName", "");
  int idx = NodeIndex(node);
  uint32_t& next = next_ip_[node];
  next = next % 250 + 1;
  std::string ip = NodePodPrefix(idx) + std::to_string(next + 1);
  std::string host_ip = NodeInternalIp(idx);
  std::string t = Now();
  auto cond = [&](const char* type) {
    return json{
        {"type", type}, {"status", "True"}, {"lastProbeTime", nullptr}, {"lastTransitionTime", t}};
  };
  json statuses = json::array();
  for (const auto& c : pod["spec"]["containers"]) {
    std::string image = c.value("image", "");
    std::string repo =
        image.substr(0, image.rfind(':') == std::string::npos || image.rfind(':') < image.rfind('/')
                            ? image.size()
                            : image.rfind(':'));
    if (repo.find('/') == std::string::npos)
      repo = "docker.io/library/" + repo;
    else if (repo.find('.') == std::string::npos || repo.find('.') > repo.find('/'))
      repo = "docker.io/" + repo;
    statuses.push_back(
        {{"name", c.value("name", "")},
         {"image", image},
         {"imageID", repo + "@" + Sha256Hex(image)},
         {"containerID",
          "containerd://" +
              Sha256Hex(pod["metadata"].value("name", "") + c.value("name", "")).substr(7)},
         {"ready", true},
         {"started", true},
         {"restartCount", 0},
         {"state", {{"running", {{"startedAt", t}}}}},
         {"lastState", json::object()}});
  }
  pod["status"] = {{"phase", "Running"},
                   {"conditions",
                    {cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                     cond("ContainersReady"), cond("PodScheduled")}},
                   {"hostIP", host_ip},
                   {"hostIPs", {{{"ip", host_ip}}}},
                   {"podIP", ip},
                   {"podIPs", {{{"ip", ip}}}},
                   {"startTime", t},
                   {"qosClass", "Burstable"},
                   {"containerStatuses", statuses}};
}

json Fixtures::NewPod(const std::string& node) {
  return MakePod(static_cast<int>(rng_() % (sizeof(kTemplates) / sizeof(kTemplates[0]))), node);
}

void Fixtures::SeedCluster(int nodes, int pods_per_node) {
  nodes_ = nodes;
  for (const char* ns : {"default", "kube-system", "kube-public", "team-a", "ashiato"}) {
    (void)store_->Create(
        Kind::kNamespace,
        {{"metadata", {{"name", ns}, {"labels", {{"kubernetes.io/metadata.name", ns}}}}},
         {"spec", {{"finalizers", {"kubernetes"}}}},
         {"status", {{"phase", "Active"}}}});
    (void)store_->Create(Kind::kServiceAccount,
                         {{"metadata", {{"name", "default"}, {"namespace", ns}}}});
  }
  for (int i = 1; i <= nodes; ++i) (void)store_->Create(Kind::kNode, MakeNode(i));
  for (int i = 1; i <= nodes; ++i) {
    std::string node = "node-" + std::to_string(i);
    for (int slot = 0; slot < pods_per_node; ++slot) {
      int tmpl = slot == 0
                     ? -1
                     : static_cast<int>((i + slot) % (sizeof(kTemplates) / sizeof(kTemplates[0])));
      json pod = MakePod(tmpl, node);
      MarkRunning(pod);
      for (int attempt = 0; attempt < 10; ++attempt) {
        auto r = store_->Create(Kind::kPod, pod);
        if (r.ok() || r.error().code != 409) break;  // 409: generated name taken, try another.
      }
    }
  }
}

}  // namespace kubesim
