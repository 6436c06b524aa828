#include "common/pod_record.h"

#include <gtest/gtest.h>

namespace ashiato {
namespace {

using nlohmann::json;

json SamplePod() {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
      "name": "web-7d4b9c8f6d-x2v9k", "namespace": "team-a", "uid": "u-1",
      "resourceVersion": "1234", "creationTimestamp": "2026-11-24T03:00:00Z",
      "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d"},
      "ownerReferences": [
        {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "x"},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6d",
         "uid": "rs", "controller": true}],
      "managedFields": [{"manager": "kubelet"}]
    },
    "spec": {
      "nodeName": "node-2",
      "initContainers": [{"name": "init", "image": "busybox:1.36"}],
      "containers": [{"name": "app", "image": "nginx:1.27"},
                     {"name": "side", "image": "envoy:1.30"}]
    },
    "status": {
      "phase": "Running", "podIP": "10.0.0.5", "hostIP": "192.168.1.2",
      "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
      "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-24T03:00:05Z"},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-24T03:00:00Z"}],
      "initContainerStatuses": [{"name": "init", "imageID": "docker.io/busybox@sha256:aa"}],
      "containerStatuses": [{"name": "side", "imageID": "envoy@sha256:cc"},
                            {"name": "app", "imageID": "nginx@sha256:bb"}]
    }
  })");
}

TEST(PodRecordTest, FromPodJsonTakesEveryField) {
  PodRecord r = PodRecordFromPodJson(SamplePod());
  EXPECT_EQ(r.uid, "u-1");
  EXPECT_EQ(r.namespace_, "team-a");
  EXPECT_EQ(r.name, "web-7d4b9c8f6d-x2v9k");
  EXPECT_EQ(r.Key(), "team-a/web-7d4b9c8f6d-x2v9k");
  EXPECT_EQ(r.node_name, "node-2");
  EXPECT_EQ(r.pod_ip, "10.0.0.5");
  EXPECT_EQ(r.pod_ips, (std::vector<std::string>{"10.0.0.5", "fd00::5"}));
  EXPECT_EQ(r.host_ip, "192.168.1.2");
  EXPECT_EQ(r.phase, "Running");
  ASSERT_EQ(r.conditions.size(), 2u);
  EXPECT_EQ(r.conditions[0], (ConditionRecord{"Ready", "True", "2026-11-24T03:00:05Z"}));
  ASSERT_EQ(r.containers.size(), 3u);
  EXPECT_EQ(r.containers[0],
            (ContainerRecord{"init", "busybox:1.36", "docker.io/busybox@sha256:aa"}));
  EXPECT_EQ(r.containers[1], (ContainerRecord{"app", "nginx:1.27", "nginx@sha256:bb"}));
  EXPECT_EQ(r.containers[2], (ContainerRecord{"side", "envoy:1.30", "envoy@sha256:cc"}));
  EXPECT_EQ(r.owner_kind, "Deployment");
  EXPECT_EQ(r.owner_name, "web");
  EXPECT_TRUE(r.owner_inferred);
  EXPECT_EQ(r.labels.at("app"), "web");
  EXPECT_EQ(r.creation_timestamp, "2026-11-24T03:00:00Z");
  EXPECT_EQ(r.deletion_timestamp, "");
  EXPECT_EQ(r.resource_version, "1234");
}

TEST(PodRecordTest, MissingFieldsStayEmpty) {
  PodRecord r = PodRecordFromPodJson(json::parse(R"({"metadata": {"name": "p"}, "spec": 3})"));
  EXPECT_EQ(r.name, "p");
  EXPECT_TRUE(r.containers.empty());
  EXPECT_TRUE(r.pod_ips.empty());
  EXPECT_EQ(r.owner_kind, "");
  PodRecord empty = PodRecordFromPodJson(json());
  EXPECT_EQ(empty.name, "");
}

TEST(PodRecordTest, ImageIdEmptyUntilReported) {
  json pod = SamplePod();
  pod["status"].erase("containerStatuses");
  PodRecord r = PodRecordFromPodJson(pod);
  EXPECT_EQ(r.containers[1].image_id, "");
}

TEST(PodRecordTest, PodIpsFallBackToPodIp) {
  json pod = SamplePod();
  pod["status"].erase("podIPs");
  EXPECT_EQ(PodRecordFromPodJson(pod).pod_ips, (std::vector<std::string>{"10.0.0.5"}));
}

TEST(PodRecordTest, OwnerKindsOtherThanReplicaSetKept) {
  json pod = SamplePod();
  pod["metadata"]["ownerReferences"] =
      json::parse(R"([{"kind": "StatefulSet", "name": "db", "controller": true}])");
  PodRecord r = PodRecordFromPodJson(pod);
  EXPECT_EQ(r.owner_kind, "StatefulSet");
  EXPECT_EQ(r.owner_name, "db");
  EXPECT_FALSE(r.owner_inferred);
}

TEST(PodRecordTest, ReplicaSetWithoutHashSuffixStaysReplicaSet) {
  json pod = SamplePod();
  pod["metadata"]["labels"].erase("pod-template-hash");
  pod["metadata"]["ownerReferences"] =
      json::parse(R"([{"kind": "ReplicaSet", "name": "hand-made", "controller": true}])");
  PodRecord r = PodRecordFromPodJson(pod);
  EXPECT_EQ(r.owner_kind, "ReplicaSet");
  EXPECT_EQ(r.owner_name, "hand-made");
  EXPECT_FALSE(r.owner_inferred);
}

TEST(PodRecordTest, HashLabelMustMatchSuffix) {
  json pod = SamplePod();
  pod["metadata"]["labels"]["pod-template-hash"] = "5f6b7c8d9";
  PodRecord r = PodRecordFromPodJson(pod);
  EXPECT_EQ(r.owner_kind, "ReplicaSet");
  EXPECT_FALSE(r.owner_inferred);
}

TEST(PodRecordTest, DeploymentFromReplicaSetName) {
  EXPECT_EQ(DeploymentFromReplicaSetName("web-7d4b9c8f6d"), "web");
  EXPECT_EQ(DeploymentFromReplicaSetName("my-app-5f6b7c"), "my-app");
  EXPECT_EQ(DeploymentFromReplicaSetName("coredns-76f75df574"), "coredns");
  EXPECT_EQ(DeploymentFromReplicaSetName("web-abcdef"), "");       // Vowels: not a hash.
  EXPECT_EQ(DeploymentFromReplicaSetName("web-12345"), "");        // Too short, 1 and 3.
  EXPECT_EQ(DeploymentFromReplicaSetName("web-bcdfg"), "");        // 5 chars.
  EXPECT_EQ(DeploymentFromReplicaSetName("web-bcdfghjklmn"), "");  // 11 chars.
  EXPECT_EQ(DeploymentFromReplicaSetName("nodash"), "");
  EXPECT_EQ(DeploymentFromReplicaSetName("-7d4b9c8f6d"), "");
  EXPECT_EQ(DeploymentFromReplicaSetName("web-abc", "abc"), "web");  // Label wins.
  EXPECT_EQ(DeploymentFromReplicaSetName("web-7d4b9c8f6d", "other"), "");
}

TEST(PodRecordTest, SameObservableStateIgnoresOnlyResourceVersion) {
  PodRecord a = PodRecordFromPodJson(SamplePod());
  PodRecord b = a;
  b.resource_version = "9999";
  EXPECT_TRUE(a.SameObservableState(b));
  auto differs = [&](auto mutate) {
    PodRecord c = a;
    mutate(c);
    return !a.SameObservableState(c);
  };
  EXPECT_TRUE(differs([](PodRecord& c) { c.phase = "Succeeded"; }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.pod_ip = "10.0.0.6"; }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.pod_ips.push_back("x"); }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.host_ip = "h"; }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.node_name = "n"; }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.conditions[0].status = "False"; }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.containers[1].image_id = "nginx@sha256:dd"; }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.containers[1].image = "nginx:1.28"; }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.deletion_timestamp = "2026-11-24T04:00:00Z"; }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.labels["x"] = "y"; }));
  EXPECT_TRUE(differs([](PodRecord& c) { c.owner_name = "other"; }));
}

TEST(PodRecordTest, LogJsonSchemaAndRoundTrip) {
  PodRecord r = PodRecordFromPodJson(SamplePod());
  json j = PodRecordToLogJson(r);
  EXPECT_EQ(j["namespace"], "team-a");
  EXPECT_EQ(j["pod_name"], "web-7d4b9c8f6d-x2v9k");
  EXPECT_EQ(j["uid"], "u-1");
  EXPECT_EQ(j["node_name"], "node-2");
  EXPECT_EQ(j["pod_ip"], "10.0.0.5");
  EXPECT_EQ(j["pod_ips"], json::array({"10.0.0.5", "fd00::5"}));
  EXPECT_EQ(j["host_ip"], "192.168.1.2");
  EXPECT_EQ(j["phase"], "Running");
  EXPECT_EQ(j["conditions"][0], json({{"type", "Ready"},
                                      {"status", "True"},
                                      {"last_transition_time", "2026-11-24T03:00:05Z"}}));
  EXPECT_EQ(j["containers"][1],
            json({{"name", "app"}, {"image", "nginx:1.27"}, {"image_id", "nginx@sha256:bb"}}));
  EXPECT_EQ(j["owner"], json({{"kind", "Deployment"}, {"name", "web"}, {"inferred", true}}));
  EXPECT_EQ(j["labels"]["app"], "web");
  EXPECT_EQ(j["creation_timestamp"], "2026-11-24T03:00:00Z");
  EXPECT_TRUE(j["deletion_timestamp"].is_null());
  EXPECT_EQ(j["resource_version"], "1234");
  EXPECT_FALSE(j.contains("event"));

  PodRecord back = PodRecordFromLogJson(j);
  EXPECT_TRUE(back.SameObservableState(r));
  EXPECT_EQ(back.resource_version, r.resource_version);

  PodRecord bare;
  bare.name = "p";
  json jb = PodRecordToLogJson(bare);
  EXPECT_TRUE(jb["owner"].is_null());
  EXPECT_TRUE(PodRecordFromLogJson(jb).SameObservableState(bare));
}

TEST(PodRecordTest, CompareResourceVersions) {
  EXPECT_LT(CompareResourceVersions("9", "10"), 0);
  EXPECT_GT(CompareResourceVersions("100", "99"), 0);
  EXPECT_EQ(CompareResourceVersions("42", "42"), 0);
  EXPECT_EQ(CompareResourceVersions("042", "42"), 0);
  EXPECT_LT(CompareResourceVersions("18446744073709551615", "18446744073709551616"), 0);
  EXPECT_LT(CompareResourceVersions("a", "b"), 0);    // Not numeric: byte order.
  EXPECT_GT(CompareResourceVersions("9", "10a"), 0);  // Byte order.
  EXPECT_LT(CompareResourceVersions("", "1"), 0);
}

TEST(PodRecordTest, AnnotationsOnlyAsCaptured) {
  json pod = SamplePod();
  pod["metadata"]["annotations"] = {{"example.com/owner", "payments"},
                                    {"example.com/ticket", "OPS-1"},
                                    {"team", "core"},
                                    {"teams", "x"},
                                    {"kubectl.kubernetes.io/last-applied-configuration", "{}"}};
  EXPECT_TRUE(PodRecordFromPodJson(pod).annotations.empty()) << "none without a capture";
  auto capture = AnnotationCapture::Parse({"example.com/*", "team"});
  ASSERT_TRUE(capture.ok());
  PodRecord r = PodRecordFromPodJson(pod, &*capture);
  EXPECT_EQ(r.annotations, (std::map<std::string, std::string>{{"example.com/owner", "payments"},
                                                               {"example.com/ticket", "OPS-1"},
                                                               {"team", "core"}}));
  // Observable: a change of a captured annotation is a change.
  PodRecord other = r;
  other.annotations["team"] = "edge";
  EXPECT_FALSE(other.SameObservableState(r));
  // The log line carries them, and only when there are some.
  json j = PodRecordToLogJson(r);
  EXPECT_EQ(j["annotations"]["team"], "core");
  EXPECT_TRUE(PodRecordFromLogJson(j).SameObservableState(r));
  EXPECT_FALSE(PodRecordToLogJson(PodRecordFromPodJson(pod)).contains("annotations"));
}

TEST(PodRecordTest, AnnotationCaptureIsBounded) {
  EXPECT_TRUE(AnnotationCapture::Parse({""})->empty());
  EXPECT_FALSE(AnnotationCapture::Parse({"a*b"}).ok());
  EXPECT_FALSE(AnnotationCapture::Parse({std::string(400, 'k')}).ok());
  auto all = AnnotationCapture::Parse({"*"});
  ASSERT_TRUE(all.ok());
  std::map<std::string, std::string> many;
  for (int i = 0; i < 40; ++i) many["k" + std::to_string(100 + i)] = "v";
  auto got = all->Select(many);
  EXPECT_EQ(got.size(), kMaxAnnotations + 1);  // 32 and the marker.
  EXPECT_EQ(got[kAnnotationsOmittedKey], "8");
  std::map<std::string, std::string> big = {{"a", std::string(kMaxAnnotationBytes, 'x')},
                                            {"b", "small"}};
  got = all->Select(big);
  EXPECT_FALSE(got.count("a")) << "a value that does not fit is left out, not cut";
  EXPECT_EQ(got["b"], "small");
  EXPECT_EQ(got[kAnnotationsOmittedKey], "1");
  size_t bytes = 0;
  for (const auto& [k, v] : all->Select(many)) {
    if (k != kAnnotationsOmittedKey) bytes += k.size() + v.size();
  }
  EXPECT_LE(bytes, kMaxAnnotationBytes);
}

}  // namespace
}  // namespace ashiato
