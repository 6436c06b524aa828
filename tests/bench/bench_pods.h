// Pods the benchmarks send: the same shapes in every program that compares
// figures with another.
#pragma once

#include <cstdint>
#include <string>

#include "common/pod_record.h"

namespace ashiato::bench {

// Pod `i` of agent `agent` as ingest_bench sends it: short UIDs and names,
// one container, two labels (figures in docs/benchmarks.md since issue 6).
inline PodRecord IngestBenchPod(int agent, int i, uint64_t rv) {
  PodRecord p;
  p.namespace_ = (i % 3 == 0) ? "default" : (i % 3 == 1 ? "kube-system" : "team-a");
  p.name = "web-7d4b9c8f6d-" + std::to_string(agent) + "x" + std::to_string(i);
  p.uid = "uid-" + std::to_string(agent) + "-" + std::to_string(i);
  p.node_name = "node-" + std::to_string(agent + 1);
  p.pod_ip = "10." + std::to_string((agent >> 8) & 255) + "." + std::to_string(agent & 255) + "." +
             std::to_string(i + 2);
  p.pod_ips = {p.pod_ip};
  p.host_ip = "192.168." + std::to_string((agent >> 8) & 255) + "." + std::to_string(agent & 255);
  p.phase = "Running";
  for (const char* t : {"PodScheduled", "Initialized", "ContainersReady", "Ready"}) {
    p.conditions.push_back({t, "True", "2026-11-24T03:00:00Z"});
  }
  p.containers.push_back({"web", "nginx:1.27",
                          "docker.io/library/nginx@sha256:"
                          "0f0a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"});
  p.owner_kind = "Deployment";
  p.owner_name = "web";
  p.owner_inferred = true;
  p.labels = {{"app", "web"}, {"pod-template-hash", "7d4b9c8f6d"}};
  p.creation_timestamp = "2026-11-24T03:00:00Z";
  p.resource_version = std::to_string(rv);
  return p;
}

// A pod shaped like a production one: a 36-character UID, a cloud node name,
// 500 Deployments in 40 namespaces, an application container and a sidecar,
// five labels (no annotations: none are captured by default). `node` is the node's index.
inline PodRecord RealisticPod(int node, int i, uint64_t rv) {
  static const char kHex[] = "0123456789abcdef";
  uint64_t h =
      (static_cast<uint64_t>(node) << 20 | static_cast<uint64_t>(i)) * 0x9e3779b97f4a7c15ULL;
  std::string uid;
  for (int k = 0; k < 32; ++k) {
    if (k == 8 || k == 12 || k == 16 || k == 20) uid += '-';
    uid += kHex[(h >> ((k * 5) % 60)) & 15];
    if (k % 12 == 11) h = h * 0x9e3779b97f4a7c15ULL + 1;
  }
  int deploy = (node * 31 + i) % 500;
  std::string app = "svc-" + std::to_string(deploy);
  std::string hash = "7d4b9c8f" + std::to_string(10 + deploy % 90);
  PodRecord p;
  p.uid = uid;
  p.namespace_ = "team-" + std::to_string(deploy % 40);
  p.name = app + "-" + hash + "-" + uid.substr(0, 5);
  p.node_name = "ip-10-" + std::to_string(node / 250) + "-" + std::to_string(node % 250) +
                "-17.eu-west-1.compute.internal";
  p.phase = "Running";
  p.pod_ip = "10." + std::to_string(64 + node / 250) + "." + std::to_string(node % 250) + "." +
             std::to_string(i + 2);
  p.pod_ips = {p.pod_ip};
  p.host_ip = "10." + std::to_string(node / 250) + "." + std::to_string(node % 250) + ".17";
  std::string started = "2026-11-24T0" + std::to_string(i % 10) + ":" +
                        std::to_string(10 + deploy % 50) + ":0" + std::to_string(node % 10) + "Z";
  p.conditions = {{"PodReadyToStartContainers", "True", started},
                  {"Initialized", "True", started},
                  {"Ready", "True", started},
                  {"ContainersReady", "True", started},
                  {"PodScheduled", "True", started}};
  p.containers = {{"app", "registry.example.com/team/" + app + ":1.42.0",
                   "registry.example.com/team/" + app + "@sha256:9b2c" + std::string(60, 'a')},
                  {"istio-proxy", "docker.io/istio/proxyv2:1.24.0",
                   "docker.io/istio/proxyv2@sha256:" + std::string(64, 'b')}};
  p.owner_kind = "ReplicaSet";
  p.owner_name = app + "-" + hash;
  p.labels = {{"app", app},
              {"app.kubernetes.io/name", app},
              {"app.kubernetes.io/part-of", "team-" + std::to_string(deploy % 40)},
              {"pod-template-hash", hash},
              {"security.istio.io/tlsMode", "istio"}};
  p.creation_timestamp = started;
  p.resource_version = std::to_string(rv);
  return p;
}

}  // namespace ashiato::bench
