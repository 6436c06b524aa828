// kubesim over real HTTP: list/watch semantics, conflicts, limits, tokens,
// TLS, faults and the state file, driven through the KubesimProcess helper.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "tests/kubesim/kubesim_process.h"

namespace ashiato::testing {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

std::unique_ptr<KubesimProcess> StartSim(KubesimProcessOptions o = {}) {
  auto sim = KubesimProcess::Start(std::move(o));
  EXPECT_TRUE(sim.ok()) << sim.status().ToString();
  return sim.ok() ? std::move(sim).value() : nullptr;
}

// A watch stream read on its own thread.
class WatchReader {
 public:
  WatchReader(const HttpClientOptions& opts, std::string path) : client_(opts) {
    thread_ = std::thread([this, path] {
      auto r = client_.StreamLines(
          path,
          [this](std::string_view line) {
            std::lock_guard<std::mutex> lock(mu_);
            events_.push_back(json::parse(line));
            return true;
          },
          60000);
      std::lock_guard<std::mutex> lock(mu_);
      if (r.ok()) status_ = r->status;
      ended_ = true;
    });
  }
  ~WatchReader() {
    client_.Cancel();
    thread_.join();
  }
  std::vector<json> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  // Events other than BOOKMARK.
  std::vector<json> changes() {
    std::vector<json> out;
    for (auto& e : events()) {
      if (e["type"] != "BOOKMARK") out.push_back(e);
    }
    return out;
  }
  bool ended() {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_;
  }
  bool WaitForChanges(size_t n, milliseconds t = milliseconds(10000)) {
    return WaitFor([&] { return changes().size() >= n; }, t);
  }

 private:
  HttpClient client_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<json> events_;
  bool ended_ = false;
  long status_ = 0;
};

json ConfigMap(const std::string& name, json data = json::object(), json labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"data", data}};
}

std::set<std::string> Names(const json& list) {
  std::set<std::string> out;
  for (const auto& i : list["items"]) out.insert(i["metadata"]["name"].get<std::string>());
  return out;
}

TEST(KubesimTest, SeedsARealisticCluster) {
  auto sim = StartSim({.nodes = 4, .pods_per_node = 5});
  ASSERT_TRUE(sim);
  auto pods = sim->KubeJson("GET", "/api/v1/pods");
  ASSERT_TRUE(pods.ok());
  EXPECT_EQ((*pods)["kind"], "PodList");
  ASSERT_EQ((*pods)["items"].size(), 20u);
  EXPECT_FALSE((*pods)["metadata"]["resourceVersion"].get<std::string>().empty());
  std::set<std::string> owner_kinds;
  for (const auto& p : (*pods)["items"]) {
    EXPECT_EQ(p["status"]["phase"], "Running");
    EXPECT_FALSE(p["status"]["podIP"].get<std::string>().empty());
    EXPECT_EQ(p["status"]["podIPs"][0]["ip"], p["status"]["podIP"]);
    EXPECT_FALSE(p["status"]["hostIP"].get<std::string>().empty());
    EXPECT_EQ(p["metadata"]["uid"].get<std::string>().size(), 36u);
    EXPECT_NE(p["status"]["containerStatuses"][0]["imageID"].get<std::string>().find("@sha256:"),
              std::string::npos);
    owner_kinds.insert(p["metadata"]["ownerReferences"][0]["kind"].get<std::string>());
    bool ready = false;
    for (const auto& c : p["status"]["conditions"]) {
      if (c["type"] == "Ready") ready = c["status"] == "True" && c.contains("lastTransitionTime");
    }
    EXPECT_TRUE(ready);
  }
  EXPECT_EQ(owner_kinds, (std::set<std::string>{"DaemonSet", "ReplicaSet", "StatefulSet"}));
  auto nodes = sim->KubeJson("GET", "/api/v1/nodes");
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(Names(*nodes), (std::set<std::string>{"node-1", "node-2", "node-3", "node-4"}));
  EXPECT_EQ((*nodes)["items"][0]["status"]["addresses"][0]["type"], "InternalIP");
  auto sa = sim->KubeJson("GET", "/api/v1/namespaces/ashiato/serviceaccounts/default");
  ASSERT_TRUE(sa.ok());
  EXPECT_EQ((*sa)["kind"], "ServiceAccount");
}

TEST(KubesimTest, FieldAndLabelSelectors) {
  auto sim = StartSim({.nodes = 3, .pods_per_node = 6});
  ASSERT_TRUE(sim);
  auto all = sim->KubeJson("GET", "/api/v1/pods");
  ASSERT_TRUE(all.ok());
  std::set<std::string> on2, web, not_web;
  for (const auto& p : (*all)["items"]) {
    if (p["spec"]["nodeName"] == "node-2") on2.insert(p["metadata"]["name"].get<std::string>());
    (p["metadata"]["labels"]["app"] == "web" ? web : not_web)
        .insert(p["metadata"]["name"].get<std::string>());
  }
  ASSERT_EQ(on2.size(), 6u);
  auto sel = sim->KubeJson("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-2");
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(Names(*sel), on2);
  auto neg = sim->KubeJson(
      "GET", "/api/v1/pods?fieldSelector=spec.nodeName!%3Dnode-2,status.phase%3DRunning");
  EXPECT_EQ((*neg)["items"].size(), 12u);
  auto ns = sim->KubeJson(
      "GET", "/api/v1/namespaces/kube-system/pods?fieldSelector=spec.nodeName%3D%3Dnode-2");
  for (const auto& p : (*ns)["items"]) EXPECT_EQ(p["metadata"]["namespace"], "kube-system");
  auto bad = sim->KubeJson("GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx");
  EXPECT_EQ((*bad)["code"], 400);
  EXPECT_EQ((*bad)["reason"], "BadRequest");

  EXPECT_EQ(Names(*sim->KubeJson("GET", "/api/v1/pods?labelSelector=app%3Dweb")), web);
  EXPECT_EQ(Names(*sim->KubeJson("GET", "/api/v1/pods?labelSelector=app%20notin%20(web)")),
            not_web);
  auto in =
      sim->KubeJson("GET", "/api/v1/pods?labelSelector=app%20in%20(web,api),pod-template-hash");
  for (const auto& p : (*in)["items"])
    EXPECT_TRUE(p["metadata"]["labels"]["app"] == "web" || p["metadata"]["labels"]["app"] == "api");
  EXPECT_EQ((*sim->KubeJson("GET", "/api/v1/pods?labelSelector=!app"))["items"].size(), 0u);
  EXPECT_EQ((*sim->KubeJson("GET", "/api/v1/pods?labelSelector=app"))["items"].size(), 18u);
}

TEST(KubesimTest, PagingWithLimitAndContinue) {
  auto sim = StartSim({.nodes = 5, .pods_per_node = 7});
  ASSERT_TRUE(sim);
  std::set<std::string> seen;
  std::string cont;
  int pages = 0;
  do {
    auto page = sim->KubeJson(
        "GET", "/api/v1/pods?limit=4" + (cont.empty() ? "" : "&continue=" + UrlEncode(cont)));
    ASSERT_TRUE(page.ok());
    ASSERT_EQ((*page)["kind"], "PodList") << page->dump();
    EXPECT_LE((*page)["items"].size(), 4u);
    for (const auto& p : (*page)["items"]) {
      EXPECT_TRUE(seen.insert(p["metadata"]["namespace"].get<std::string>() + "/" +
                              p["metadata"]["name"].get<std::string>())
                      .second);
    }
    cont = (*page)["metadata"].value("continue", "");
    if (!cont.empty()) {
      EXPECT_EQ((*page)["metadata"]["remainingItemCount"], 35 - static_cast<int>(seen.size()));
    }
    ++pages;
  } while (!cont.empty() && pages < 100);
  EXPECT_EQ(seen.size(), 35u);
  EXPECT_EQ(pages, 9);
  // Paging a field-selected list.
  auto first = sim->KubeJson("GET", "/api/v1/pods?limit=3&fieldSelector=spec.nodeName%3Dnode-3");
  ASSERT_TRUE(first.ok());
  auto rest =
      sim->KubeJson("GET", "/api/v1/pods?limit=10&fieldSelector=spec.nodeName%3Dnode-3&continue=" +
                               UrlEncode((*first)["metadata"]["continue"].get<std::string>()));
  EXPECT_EQ((*first)["items"].size() + (*rest)["items"].size(), 7u);
}

TEST(KubesimTest, StaleUpdateConflicts) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  auto created = sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                               ConfigMap("c1", {{"a", "1"}}).dump());
  ASSERT_TRUE(created.ok());
  ASSERT_EQ((*created)["metadata"]["name"], "c1") << created->dump();
  std::string rv1 = (*created)["metadata"]["resourceVersion"];
  json upd = *created;
  upd["data"]["a"] = "2";
  auto ok = sim->KubeJson("PUT", "/api/v1/namespaces/default/configmaps/c1", upd.dump());
  ASSERT_TRUE(ok.ok());
  EXPECT_GT(std::stoull((*ok)["metadata"]["resourceVersion"].get<std::string>()), std::stoull(rv1));
  upd["data"]["a"] = "3";  // Still carries rv1: stale.
  auto conflict = sim->KubeJson("PUT", "/api/v1/namespaces/default/configmaps/c1", upd.dump());
  ASSERT_TRUE(conflict.ok());
  EXPECT_EQ((*conflict)["kind"], "Status");
  EXPECT_EQ((*conflict)["code"], 409);
  EXPECT_EQ((*conflict)["reason"], "Conflict");
  EXPECT_NE((*conflict)["message"].get<std::string>().find("the object has been modified"),
            std::string::npos);
  upd["metadata"].erase("resourceVersion");  // Unconditional.
  auto forced = sim->KubeJson("PUT", "/api/v1/namespaces/default/configmaps/c1", upd.dump());
  EXPECT_EQ((*forced)["data"]["a"], "3");
  auto dup = sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps", ConfigMap("c1").dump());
  EXPECT_EQ((*dup)["reason"], "AlreadyExists");
  EXPECT_EQ((*dup)["code"], 409);
  auto missing = sim->KubeJson("GET", "/api/v1/namespaces/default/configmaps/nope");
  EXPECT_EQ((*missing)["reason"], "NotFound");
  EXPECT_EQ((*missing)["message"], "configmaps \"nope\" not found");
  auto gen =
      sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                    json{{"metadata", {{"generateName", "gen-"}}}, {"data", {{"x", "y"}}}}.dump());
  EXPECT_EQ((*gen)["metadata"]["name"].get<std::string>().rfind("gen-", 0), 0u);
  EXPECT_EQ((*gen)["metadata"]["name"].get<std::string>().size(), 9u);
}

TEST(KubesimTest, ConfigMapSizeAndKeyLimits) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  // Exactly 1 MiB of key + value is allowed.
  std::string key = "k";
  auto fits =
      sim->KubeRequest("POST", "/api/v1/namespaces/default/configmaps",
                       ConfigMap("fits", {{key, std::string(1048576 - key.size(), 'x')}}).dump());
  ASSERT_TRUE(fits.ok());
  EXPECT_EQ(fits->status, 201);
  auto big = sim->KubeJson(
      "POST", "/api/v1/namespaces/default/configmaps",
      ConfigMap("big", {{"k", std::string(600000, 'x')}, {"l", std::string(600000, 'y')}}).dump());
  ASSERT_TRUE(big.ok());
  EXPECT_EQ((*big)["code"], 422);
  EXPECT_EQ((*big)["reason"], "Invalid");
  EXPECT_NE((*big)["message"].get<std::string>().find("Too long: must have at most 1048576 bytes"),
            std::string::npos);
  auto badkey = sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                              ConfigMap("bk", {{"a/b", "x"}}).dump());
  EXPECT_EQ((*badkey)["code"], 422);
  auto toolong = sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                               ConfigMap("tl", {{std::string(254, 'a'), "x"}}).dump());
  EXPECT_EQ((*toolong)["code"], 422);
  auto huge = sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                            ConfigMap("huge", {{"k", std::string(3200000, 'x')}}).dump());
  EXPECT_EQ((*huge)["code"], 413);
  EXPECT_EQ((*huge)["reason"], "RequestEntityTooLarge");
  // Update past the limit is rejected too.
  auto grow = sim->KubeJson("PATCH", "/api/v1/namespaces/default/configmaps/fits",
                            json{{"data", {{"more", "x"}}}}.dump(), "application/merge-patch+json");
  EXPECT_EQ((*grow)["code"], 422);
}

TEST(KubesimTest, WatchResumesFromResourceVersionWithoutLoss) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  auto list = sim->KubeJson("GET", "/api/v1/namespaces/default/configmaps");
  std::string rv0 = (*list)["metadata"]["resourceVersion"];
  std::vector<std::string> rvs;
  for (int i = 0; i < 5; ++i) {
    auto c = sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                           ConfigMap("w" + std::to_string(i)).dump());
    rvs.push_back((*c)["metadata"]["resourceVersion"]);
  }
  (void)sim->KubeJson("DELETE", "/api/v1/namespaces/default/configmaps/w0");
  {
    WatchReader w(sim->client_options(),
                  "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=" + rv0);
    ASSERT_TRUE(w.WaitForChanges(6));
    auto ev = w.changes();
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(ev[i]["type"], "ADDED");
      EXPECT_EQ(ev[i]["object"]["metadata"]["name"], "w" + std::to_string(i));
      EXPECT_EQ(ev[i]["object"]["metadata"]["resourceVersion"], rvs[i]);
    }
    EXPECT_EQ(ev[5]["type"], "DELETED");
    EXPECT_EQ(ev[5]["object"]["metadata"]["name"], "w0");
    // Live events follow.
    (void)sim->KubeJson("PATCH", "/api/v1/namespaces/default/configmaps/w1",
                        R"({"data":{"x":"1"}})", "application/merge-patch+json");
    ASSERT_TRUE(w.WaitForChanges(7));
    EXPECT_EQ(w.changes()[6]["type"], "MODIFIED");
  }
  // Resume from the middle: only later events.
  WatchReader w2(sim->client_options(),
                 "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=" + rvs[2]);
  ASSERT_TRUE(w2.WaitForChanges(4));
  auto ev = w2.changes();
  EXPECT_EQ(ev[0]["object"]["metadata"]["name"], "w3");
  EXPECT_EQ(ev[1]["object"]["metadata"]["name"], "w4");
  EXPECT_EQ(ev[2]["type"], "DELETED");
  EXPECT_EQ(ev[3]["type"], "MODIFIED");
  // No RV: synthetic ADDED for the current state.
  WatchReader w3(sim->client_options(), "/api/v1/namespaces/default/configmaps?watch=1");
  ASSERT_TRUE(w3.WaitForChanges(4));
  for (const auto& e : w3.changes()) EXPECT_EQ(e["type"], "ADDED");
}

TEST(KubesimTest, WatchSendsBookmarksAndHonoursTimeout) {
  auto sim = StartSim({.extra_args = {"--bookmark-interval-ms", "100"}});
  ASSERT_TRUE(sim);
  std::string rv = (*sim->KubeJson("GET", "/api/v1/pods?limit=1"))["metadata"]["resourceVersion"];
  WatchReader w(sim->client_options(),
                "/api/v1/"
                "pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=2&fieldSelector=spec."
                "nodeName%3Dnode-1&resourceVersion=" +
                    rv);
  ASSERT_TRUE(WaitFor([&] { return w.events().size() >= 2; }, milliseconds(5000)));
  auto ev = w.events();
  EXPECT_EQ(ev[0]["type"], "BOOKMARK");
  EXPECT_EQ(ev[0]["object"]["kind"], "Pod");
  EXPECT_EQ(ev[0]["object"]["metadata"]["resourceVersion"], rv);
  EXPECT_TRUE(WaitFor([&] { return w.ended(); }, milliseconds(6000)));
  // Without allowWatchBookmarks: none.
  WatchReader plain(sim->client_options(),
                    "/api/v1/pods?watch=1&timeoutSeconds=1&resourceVersion=" + rv);
  EXPECT_TRUE(WaitFor([&] { return plain.ended(); }, milliseconds(5000)));
  EXPECT_TRUE(plain.events().empty());
}

TEST(KubesimTest, WatchFromCompactedVersionGets410) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  std::string rv = (*sim->KubeJson("GET", "/api/v1/pods"))["metadata"]["resourceVersion"];
  (void)sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps", ConfigMap("x").dump());
  ASSERT_TRUE(sim->SetFaults({{"compact", true}}).ok());
  WatchReader w(sim->client_options(), "/api/v1/pods?watch=1&resourceVersion=" + rv);
  ASSERT_TRUE(WaitFor([&] { return w.ended(); }, milliseconds(5000)));
  auto ev = w.events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["type"], "ERROR");
  EXPECT_EQ(ev[0]["object"]["kind"], "Status");
  EXPECT_EQ(ev[0]["object"]["code"], 410);
  EXPECT_EQ(ev[0]["object"]["reason"], "Expired");
  EXPECT_NE(ev[0]["object"]["message"].get<std::string>().find("too old resource version"),
            std::string::npos);
  // A list gives a fresh RV to watch from.
  std::string fresh = (*sim->KubeJson("GET", "/api/v1/pods"))["metadata"]["resourceVersion"];
  WatchReader ok(sim->client_options(),
                 "/api/v1/pods?watch=1&timeoutSeconds=1&resourceVersion=" + fresh);
  ASSERT_TRUE(WaitFor([&] { return ok.ended(); }, milliseconds(5000)));
  EXPECT_TRUE(ok.events().empty());
}

TEST(KubesimTest, ListsCountedByResourceVersionSemanticsAndExpiredExactIs410) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  const std::string node = "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1";
  std::string rv =
      (*sim->KubeJson("GET", node + "&resourceVersion=0"))["metadata"]["resourceVersion"];
  (void)sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps", ConfigMap("x").dump());
  ASSERT_TRUE(sim->SetFaults({{"compact", true}}).ok());
  // NotOlderThan an RV before the compaction: the watch cache answers with
  // its newer state, as the real server does.
  auto fresh = sim->KubeJson("GET", node + "&resourceVersion=" + rv);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_GT(std::stoull((*fresh)["metadata"]["resourceVersion"].get<std::string>()),
            std::stoull(rv));
  EXPECT_EQ((*fresh)["items"].size(), 4u);
  // Exact at that RV (limit, or resourceVersionMatch=Exact) reads etcd: 410.
  auto exact = sim->KubeRequest("GET", node + "&resourceVersion=" + rv + "&limit=500");
  EXPECT_EQ(exact->status, 410);
  EXPECT_EQ(json::parse(exact->body)["reason"], "Expired");
  EXPECT_EQ(sim->KubeRequest("GET", node + "&resourceVersion=" + rv + "&resourceVersionMatch=Exact")
                ->status,
            410);
  // A quorum list, paginated (what the agent fell back to before issue 15).
  EXPECT_EQ(sim->KubeRequest("GET", node + "&limit=500")->status, 200);

  auto lists = (*sim->Stats())["lists"]["pods"];
  EXPECT_EQ(lists["cache"]["requests"], 2) << lists.dump();
  EXPECT_EQ(lists["cache"]["by_semantics"]["any"], 1);
  EXPECT_EQ(lists["cache"]["by_semantics"]["not_older_than"], 1);
  EXPECT_EQ(lists["etcd"]["requests"], 1);
  EXPECT_EQ(lists["etcd"]["by_semantics"]["most_recent"], 1);
  // The field selector is applied after reading every pod from etcd.
  EXPECT_EQ(lists["etcd"]["objects_read"], 12);
  EXPECT_EQ(lists["expired"], 2);
}

TEST(KubesimTest, SelectedWatchSeesObjectsLeaveAndDeletes) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  WatchReader w(
      sim->client_options(),
      "/api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%3Dx&resourceVersion=" +
          (*sim->KubeJson("GET",
                          "/api/v1/namespaces/default/configmaps"))["metadata"]["resourceVersion"]
              .get<std::string>());
  (void)sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                      ConfigMap("s", {}, {{"app", "x"}}).dump());
  (void)sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                      ConfigMap("other", {}, {{"app", "y"}}).dump());
  (void)sim->KubeJson("PATCH", "/api/v1/namespaces/default/configmaps/s",
                      R"({"metadata":{"labels":{"app":"y"}}})", "application/merge-patch+json");
  (void)sim->KubeJson("PATCH", "/api/v1/namespaces/default/configmaps/s",
                      R"({"metadata":{"labels":{"app":"x"}}})",
                      "application/strategic-merge-patch+json");
  (void)sim->KubeJson("DELETE", "/api/v1/namespaces/default/configmaps/s");
  ASSERT_TRUE(w.WaitForChanges(4));
  auto ev = w.changes();
  EXPECT_EQ(ev[0]["type"], "ADDED");
  EXPECT_EQ(ev[1]["type"], "DELETED");  // Left the selector.
  EXPECT_EQ(ev[1]["object"]["metadata"]["labels"]["app"], "x");
  EXPECT_EQ(ev[2]["type"], "ADDED");
  EXPECT_EQ(ev[3]["type"], "DELETED");
  for (const auto& e : ev) EXPECT_EQ(e["object"]["metadata"]["name"], "s");

  // Pods by node: delete one pod of node-2, its watcher sees DELETED.
  auto pods = sim->KubeJson("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-2");
  WatchReader pw(sim->client_options(),
                 "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dnode-2&resourceVersion=" +
                     (*pods)["metadata"]["resourceVersion"].get<std::string>());
  const auto& victim = (*pods)["items"][0]["metadata"];
  auto del = sim->KubeJson(
      "DELETE", "/api/v1/namespaces/" + victim["namespace"].get<std::string>() + "/pods/" +
                    victim["name"].get<std::string>() + "?gracePeriodSeconds=0");
  EXPECT_EQ((*del)["kind"], "Pod");
  ASSERT_TRUE(pw.WaitForChanges(1));
  EXPECT_EQ(pw.changes()[0]["type"], "DELETED");
  EXPECT_EQ(pw.changes()[0]["object"]["metadata"]["name"], victim["name"]);
  EXPECT_EQ(
      (*sim->KubeJson("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-2"))["items"].size(),
      3u);
}

TEST(KubesimTest, PodStatusSubresourceAndPatchTypes) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "p"}, {"labels", {{"app", "t"}}}}},
      {"spec",
       {{"nodeName", "node-1"}, {"containers", {{{"name", "c"}, {"image", "nginx:1.25"}}}}}},
      {"status", {{"phase", "Running"}}}};
  auto c = sim->KubeJson("POST", "/api/v1/namespaces/default/pods", pod.dump());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)["status"]["phase"],
            "Pending");  // Status is reset on create, as the real server does.
  json st = *c;
  st["status"] = {
      {"phase", "Running"},
      {"podIP", "10.1.1.1"},
      {"conditions",
       {{{"type", "Ready"}, {"status", "False"}}, {{"type", "PodScheduled"}, {"status", "True"}}}}};
  st["metadata"]["labels"]["ignored"] = "yes";
  auto s = sim->KubeJson("PUT", "/api/v1/namespaces/default/pods/p/status", st.dump());
  EXPECT_EQ((*s)["status"]["phase"], "Running");
  EXPECT_FALSE((*s)["metadata"]["labels"].contains("ignored"));
  auto sp = sim->KubeJson("PATCH", "/api/v1/namespaces/default/pods/p/status",
                          R"({"status":{"conditions":[{"type":"Ready","status":"True"}]}})",
                          "application/strategic-merge-patch+json");
  ASSERT_EQ((*sp)["status"]["conditions"].size(), 2u);  // Merged by type.
  EXPECT_EQ((*sp)["status"]["conditions"][0]["status"], "True");
  auto mp = sim->KubeJson("PATCH", "/api/v1/namespaces/default/pods/p/status",
                          R"({"status":{"conditions":[{"type":"Ready","status":"False"}]}})",
                          "application/merge-patch+json");
  EXPECT_EQ((*mp)["status"]["conditions"].size(), 1u);  // Merge patch replaces lists.
  // Status changes through the main resource are ignored.
  auto main = sim->KubeJson("PATCH", "/api/v1/namespaces/default/pods/p",
                            R"({"metadata":{"labels":{"x":"y"}},"status":{"phase":"Failed"}})",
                            "application/merge-patch+json");
  EXPECT_EQ((*main)["status"]["phase"], "Running");
  EXPECT_EQ((*main)["metadata"]["labels"]["x"], "y");
  // A no-op patch does not bump the resourceVersion.
  auto same = sim->KubeJson("PATCH", "/api/v1/namespaces/default/pods/p",
                            R"({"metadata":{"labels":{"x":"y"}}})", "application/merge-patch+json");
  EXPECT_EQ((*same)["metadata"]["resourceVersion"], (*main)["metadata"]["resourceVersion"]);
  auto stale = sim->KubeJson(
      "PATCH", "/api/v1/namespaces/default/pods/p",
      json{{"metadata",
            {{"resourceVersion", (*c)["metadata"]["resourceVersion"]}, {"labels", {{"z", "1"}}}}}}
          .dump(),
      "application/merge-patch+json");
  EXPECT_EQ((*stale)["code"], 409);
  auto jp = sim->KubeJson("PATCH", "/api/v1/namespaces/default/pods/p",
                          R"([{"op":"add","path":"/metadata/labels/j","value":"k"}])",
                          "application/json-patch+json");
  EXPECT_EQ((*jp)["metadata"]["labels"]["j"], "k");
  auto apply = sim->KubeJson(
      "PATCH", "/api/v1/namespaces/default/configmaps/applied?fieldManager=test",
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: \"1\"\n",
      "application/apply-patch+yaml");
  EXPECT_EQ((*apply)["data"]["a"], "1");
  auto apply2 = sim->KubeJson(
      "PATCH", "/api/v1/namespaces/default/configmaps/applied?fieldManager=test",
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"b":"2"}})",
      "application/apply-patch+yaml");
  EXPECT_EQ((*apply2)["data"]["b"], "2");
}

TEST(KubesimTest, TokenRequestAndTokenReview) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  auto pods =
      sim->KubeJson("GET", "/api/v1/namespaces/team-a/pods?fieldSelector=spec.nodeName%3Dnode-3");
  ASSERT_FALSE((*pods)["items"].empty());
  std::string pod = (*pods)["items"][0]["metadata"]["name"];
  auto token = sim->CreateToken("team-a", "default", {"ashiato"}, pod);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  auto review = [&](const std::string& t, json audiences) {
    json spec = {{"token", t}};
    if (!audiences.is_null()) spec["audiences"] = audiences;
    return *sim->KubeJson(
        "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
        json{{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"}, {"spec", spec}}
            .dump());
  };
  json ok = review(*token, {"ashiato"});
  ASSERT_EQ(ok["status"].value("authenticated", false), true) << ok.dump();
  EXPECT_EQ(ok["status"]["user"]["username"], "system:serviceaccount:team-a:default");
  EXPECT_EQ(
      ok["status"]["user"]["groups"],
      json({"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"}));
  EXPECT_EQ(ok["status"]["user"]["extra"]["authentication.kubernetes.io/node-name"],
            json({"node-3"}));
  EXPECT_EQ(ok["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"], json({pod}));
  EXPECT_EQ(ok["status"]["audiences"], json({"ashiato"}));
  EXPECT_FALSE(review(*token, {"other"})["status"].value("authenticated", false));
  EXPECT_FALSE(
      review(*token, nullptr)["status"].value("authenticated", false));  // API audience only.
  EXPECT_FALSE(review("garbage", {"ashiato"})["status"].value("authenticated", false));
  // An "ashiato"-only token is not an API credential.
  HttpClientOptions as_sa = sim->client_options();
  std::string t = *token;
  as_sa.bearer_token = [t] { return t; };
  HttpClient sa_client(as_sa);
  EXPECT_EQ(sa_client.Do("GET", "/api/v1/pods")->status, 401);
  // A default-audience token is.
  auto api_token = sim->CreateToken("default", "default");
  ASSERT_TRUE(api_token.ok());
  as_sa.bearer_token = [t = *api_token] { return t; };
  HttpClient api_client(as_sa);
  EXPECT_EQ(api_client.Do("GET", "/api/v1/namespaces/default/configmaps")->status, 200);
  auto reqs = sim->Requests();
  bool seen = false;
  for (const auto& r : *reqs) seen |= r["user"] == "system:serviceaccount:default:default";
  EXPECT_TRUE(seen);
  // Unknown service account: 404.
  auto missing =
      sim->KubeJson("POST", "/api/v1/namespaces/default/serviceaccounts/nobody/token", "{}");
  EXPECT_EQ((*missing)["code"], 404);
  // Expiry: move the token clock past it.
  ASSERT_TRUE(sim->SetFaults({{"token_clock_offset_seconds", 7200}}).ok());
  EXPECT_FALSE(review(*token, {"ashiato"})["status"].value("authenticated", false));
  // Deleting the bound pod invalidates the token.
  ASSERT_TRUE(sim->SetFaults({{"token_clock_offset_seconds", 0}}).ok());
  EXPECT_TRUE(review(*token, {"ashiato"})["status"].value("authenticated", false));
  (void)sim->KubeJson("DELETE", "/api/v1/namespaces/team-a/pods/" + pod);
  EXPECT_FALSE(review(*token, {"ashiato"})["status"].value("authenticated", false));
}

// A pod-bound token's TokenReview as the versions answer it: 1.25-1.29
// name the pod only (pod-name, pod-uid); 1.30 added the node (node-name,
// node-uid) and credential-id.
TEST(KubesimTest, TokenReviewShapeFollowsTheServedVersion) {
  for (const char* version : {"1.25", "1.29", "1.30", "1.32"}) {
    auto sim = StartSim({.extra_args = {"--kube-version", version}});
    ASSERT_TRUE(sim);
    auto v = sim->KubeJson("GET", "/version");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ((*v)["minor"], std::string(version).substr(2)) << version;
    auto pods = sim->KubeJson("GET", "/api/v1/namespaces/team-a/pods");
    ASSERT_FALSE((*pods)["items"].empty());
    std::string pod = (*pods)["items"][0]["metadata"]["name"];
    auto token = sim->CreateToken("team-a", "default", {"ashiato"}, pod);
    ASSERT_TRUE(token.ok()) << token.status().ToString();
    auto review = sim->KubeJson("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                json{{"apiVersion", "authentication.k8s.io/v1"},
                                     {"kind", "TokenReview"},
                                     {"spec", {{"token", *token}, {"audiences", {"ashiato"}}}}}
                                    .dump());
    ASSERT_TRUE(review.ok());
    json extra = (*review)["status"]["user"]["extra"];
    std::set<std::string> keys;
    for (const auto& [k, val] : extra.items()) keys.insert(k);
    std::set<std::string> want = {"authentication.kubernetes.io/pod-name",
                                  "authentication.kubernetes.io/pod-uid"};
    if (std::string(version) >= "1.30") {
      want.insert({"authentication.kubernetes.io/node-name",
                   "authentication.kubernetes.io/node-uid",
                   "authentication.kubernetes.io/credential-id"});
    }
    EXPECT_EQ(keys, want) << version << ": " << extra.dump();
    EXPECT_EQ(extra["authentication.kubernetes.io/pod-uid"][0],
              (*pods)["items"][0]["metadata"]["uid"]);
  }
}

json Role(const std::string& kind, const std::string& name, json rules) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", kind},
          {"metadata", {{"name", name}}},
          {"rules", rules}};
}
json Binding(const std::string& kind, const std::string& name, const std::string& role_kind,
             const std::string& role, json subjects) {
  return {
      {"apiVersion", "rbac.authorization.k8s.io/v1"},
      {"kind", kind},
      {"metadata", {{"name", name}}},
      {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", role_kind}, {"name", role}}},
      {"subjects", subjects}};
}

// SubjectAccessReview's verdict, or an error string.
std::string Sar(KubesimProcess& sim, json spec) {
  auto r = sim.KubeJson("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                        json{{"apiVersion", "authorization.k8s.io/v1"},
                             {"kind", "SubjectAccessReview"},
                             {"spec", spec}}
                            .dump());
  if (!r.ok()) return r.status().ToString();
  if (!r->contains("status")) return "error: " + r->dump();
  return (*r)["status"].value("allowed", false) ? "allowed" : "denied";
}

json ListPods(const std::string& user, const std::string& ns, json groups = json::array()) {
  return {{"user", user},
          {"groups", groups},
          {"resourceAttributes", {{"namespace", ns}, {"verb", "list"}, {"resource", "pods"}}}};
}

TEST(KubesimTest, RbacObjectsAndSubjectAccessReview) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  const std::string rbac = "/apis/rbac.authorization.k8s.io/v1";
  auto post = [&](const std::string& path, const json& obj) {
    auto r = sim->KubeRequest("POST", path, obj.dump());
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->status, 201) << path << ": " << r->body;
  };
  post(rbac + "/namespaces/team-a/roles",
       Role("Role", "pod-reader",
            {{{"apiGroups", {""}}, {"resources", {"pods"}}, {"verbs", {"get", "list"}}}}));
  post(rbac + "/namespaces/team-a/rolebindings",
       Binding("RoleBinding", "reader", "Role", "pod-reader",
               {{{"kind", "ServiceAccount"}, {"name", "reader"}, {"namespace", "team-a"}}}));
  post(rbac + "/clusterroles", Role("ClusterRole", "metrics-reader",
                                    {{{"nonResourceURLs", {"/metrics"}}, {"verbs", {"get"}}}}));
  post(rbac + "/clusterroles",
       Role("ClusterRole", "everything-read",
            {{{"apiGroups", {"*"}}, {"resources", {"*"}}, {"verbs", {"get", "list", "watch"}}}}));
  post(rbac + "/clusterrolebindings",
       Binding("ClusterRoleBinding", "prom", "ClusterRole", "metrics-reader",
               {{{"kind", "User"}, {"name", "prom"}}}));
  post(rbac + "/clusterrolebindings",
       Binding("ClusterRoleBinding", "auditors", "ClusterRole", "everything-read",
               {{{"kind", "Group"}, {"name", "auditors"}}}));
  // A binding to a Role from a ClusterRoleBinding is invalid, as on a real server.
  auto bad = sim->KubeRequest(
      "POST", rbac + "/clusterrolebindings",
      Binding("ClusterRoleBinding", "bad", "Role", "pod-reader", json::array()).dump());
  EXPECT_EQ(bad->status, 422);
  auto list = sim->KubeJson("GET", rbac + "/namespaces/team-a/roles");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)["kind"], "RoleList");
  EXPECT_EQ((*list)["items"][0]["metadata"]["name"], "pod-reader");
  EXPECT_EQ(sim->KubeRequest("GET", "/api/v1/namespaces/team-a/roles")->status, 404);

  const std::string sa = "system:serviceaccount:team-a:reader";
  EXPECT_EQ(Sar(*sim, ListPods(sa, "team-a")), "allowed");
  EXPECT_EQ(Sar(*sim, ListPods(sa, "default")), "denied");
  EXPECT_EQ(Sar(*sim, ListPods(sa, "")), "denied") << "cluster-wide needs a ClusterRoleBinding";
  EXPECT_EQ(Sar(*sim, ListPods("someone", "", {"auditors"})), "allowed");
  EXPECT_EQ(Sar(*sim, ListPods("someone", "team-a")), "denied");
  EXPECT_EQ(Sar(*sim, {{"user", "prom"},
                       {"nonResourceAttributes", {{"path", "/metrics"}, {"verb", "get"}}}}),
            "allowed");
  EXPECT_EQ(Sar(*sim, {{"user", "prom"},
                       {"nonResourceAttributes", {{"path", "/healthz"}, {"verb", "get"}}}}),
            "denied");
  EXPECT_EQ(Sar(*sim, ListPods("anyone", "team-a", {"system:masters"})), "allowed");
  // Deleting the binding takes the permission away at once.
  ASSERT_EQ(sim->KubeRequest("DELETE", rbac + "/namespaces/team-a/rolebindings/reader")->status,
            200);
  EXPECT_EQ(Sar(*sim, ListPods(sa, "team-a")), "denied");
  // Invalid reviews are 422.
  auto no_user = sim->KubeRequest(
      "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
      json{{"spec", {{"resourceAttributes", {{"verb", "list"}, {"resource", "pods"}}}}}}.dump());
  EXPECT_EQ(no_user->status, 422) << no_user->body;
  auto both = sim->KubeRequest("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                               json{{"spec", {{"user", "u"}}}}.dump());
  EXPECT_EQ(both->status, 422) << both->body;
  // The RBAC objects survive in the state dump.
  auto crbs = sim->KubeJson("GET", rbac + "/clusterrolebindings");
  EXPECT_EQ((*crbs)["items"].size(), 2u);
}

TEST(KubesimTest, RbacEnforcementIsOptional) {
  auto sim = StartSim({.tls = true, .extra_args = {"--authorization-mode", "RBAC"}});
  ASSERT_TRUE(sim);
  // The admin (system:masters) may do anything.
  ASSERT_EQ(sim->KubeRequest("GET", "/api/v1/pods")->status, 200);
  auto token = sim->CreateToken("team-a", "default");
  ASSERT_TRUE(token.ok());
  HttpClientOptions o = sim->client_options();
  o.bearer_token = [t = *token] { return t; };
  HttpClient sa(o);
  auto denied = sa.Do("GET", "/api/v1/namespaces/team-a/pods");
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, 403);
  json status = json::parse(denied->body);
  EXPECT_EQ(status["reason"], "Forbidden");
  EXPECT_EQ(status["message"],
            "pods is forbidden: User \"system:serviceaccount:team-a:default\" cannot list resource "
            "\"pods\" in API group \"\" in the namespace \"team-a\"");
  ASSERT_EQ(
      sim->KubeRequest("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles",
                       Role("Role", "r",
                            {{{"apiGroups", {""}}, {"resources", {"pods"}}, {"verbs", {"list"}}}})
                           .dump())
          ->status,
      201);
  ASSERT_EQ(
      sim->KubeRequest("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
                       Binding("RoleBinding", "b", "Role", "r",
                               {{{"kind", "ServiceAccount"}, {"name", "default"}}})
                           .dump())
          ->status,
      201);
  EXPECT_EQ(sa.Do("GET", "/api/v1/namespaces/team-a/pods")->status, 200);
  EXPECT_EQ(sa.Do("GET", "/api/v1/namespaces/default/pods")->status, 403);
  EXPECT_EQ(sa.Do("GET", "/api/v1/namespaces/team-a/pods/x")->status, 403) << "get is not list";
  // Anyone may ask about themselves.
  auto self = sa.Do("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                    json{{"spec",
                          {{"resourceAttributes",
                            {{"namespace", "team-a"}, {"verb", "list"}, {"resource", "pods"}}}}}}
                        .dump(),
                    {{"Content-Type", "application/json"}});
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(self->status, 201) << self->body;
  EXPECT_TRUE(json::parse(self->body)["status"]["allowed"].get<bool>());
  // Not about others.
  auto other =
      sa.Do("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            json{{"spec", ListPods("x", "team-a")}}.dump(), {{"Content-Type", "application/json"}});
  EXPECT_EQ(other->status, 403);
}

// As the API server: a list or watch that selects one object with
// fieldSelector=metadata.name=X is authorised as a request for X, so a Role
// with resourceNames can allow watching a single ConfigMap.
TEST(KubesimTest, ResourceNamesAllowListAndWatchOfThatNameOnly) {
  auto sim = StartSim({.tls = true, .extra_args = {"--authorization-mode", "RBAC"}});
  ASSERT_TRUE(sim);
  auto token = sim->CreateToken("team-a", "default");
  ASSERT_TRUE(token.ok());
  HttpClientOptions o = sim->client_options();
  o.bearer_token = [t = *token] { return t; };
  HttpClient sa(o);
  const std::string rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a";
  ASSERT_EQ(sim->KubeRequest("POST", rbac + "/roles",
                             Role("Role", "cfg",
                                  {{{"apiGroups", {""}},
                                    {"resources", {"configmaps"}},
                                    {"resourceNames", {"settings"}},
                                    {"verbs", {"get", "list", "watch"}}}})
                                 .dump())
                ->status,
            201);
  ASSERT_EQ(sim->KubeRequest("POST", rbac + "/rolebindings",
                             Binding("RoleBinding", "cfg", "Role", "cfg",
                                     {{{"kind", "ServiceAccount"}, {"name", "default"}}})
                                 .dump())
                ->status,
            201);
  const std::string cms = "/api/v1/namespaces/team-a/configmaps";
  EXPECT_EQ(sa.Do("GET", cms + "?fieldSelector=metadata.name%3Dsettings")->status, 200);
  EXPECT_EQ(sa.Do("GET", cms + "/settings")->status, 404) << "allowed, and absent";
  EXPECT_EQ(sa.Do("GET", cms)->status, 403) << "every ConfigMap is not that one";
  EXPECT_EQ(sa.Do("GET", cms + "?fieldSelector=metadata.name%3Dother")->status, 403);
  EXPECT_EQ(sa.Do("GET", cms + "?fieldSelector=metadata.name!%3Dsettings")->status, 403);
  auto watch =
      sa.Do("GET", cms + "?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3Dsettings");
  ASSERT_TRUE(watch.ok());
  EXPECT_EQ(watch->status, 200);
}

TEST(KubesimTest, TlsAndAuthentication) {
  auto sim = StartSim({.tls = true});
  ASSERT_TRUE(sim);
  EXPECT_EQ(sim->server_url().rfind("https://127.0.0.1:", 0), 0u);
  EXPECT_NE(sim->ca_pem().find("BEGIN CERTIFICATE"), std::string::npos);
  auto r = sim->KubeRequest("GET", "/api/v1/nodes");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  HttpClientOptions anon = sim->client_options();
  anon.bearer_token = nullptr;
  HttpClient anon_client(anon);
  auto denied = anon_client.Do("GET", "/api/v1/nodes");
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, 401);
  EXPECT_EQ(json::parse(denied->body)["reason"], "Unauthorized");
  anon.bearer_token = [] { return std::string("wrong"); };
  HttpClient bad(anon);
  EXPECT_EQ(bad.Do("GET", "/api/v1/nodes")->status, 401);
  // Without the CA the certificate is not trusted.
  HttpClientOptions untrusted = sim->client_options();
  untrusted.ca_pem.clear();
  HttpClient u(untrusted);
  EXPECT_FALSE(u.Do("GET", "/version").ok());
}

TEST(KubesimTest, FaultsRequestsAndStats) {
  auto sim = StartSim();
  ASSERT_TRUE(sim);
  ASSERT_TRUE(
      sim->SetFaults({{"error_rate", 1.0}, {"error_code", 429}, {"retry_after_seconds", 2}}).ok());
  auto r = sim->KubeRequest("GET", "/api/v1/pods");
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->Header("retry-after"), "2");
  ASSERT_TRUE(
      sim->SetFaults({{"error_rate", 1.0}, {"error_code", 500}, {"error_path", "/configmaps"}})
          .ok());
  EXPECT_EQ(sim->KubeRequest("GET", "/api/v1/namespaces/default/configmaps")->status, 500);
  EXPECT_EQ(sim->KubeRequest("GET", "/api/v1/pods")->status, 200);
  ASSERT_TRUE(sim->SetFaults({{"reset", true}, {"latency_ms", 300}}).ok());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(sim->KubeRequest("GET", "/api/v1/nodes")->status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(250));
  ASSERT_TRUE(sim->SetFaults({{"reset", true}}).ok());

  WatchReader w(sim->client_options(), "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dnode-1");
  ASSERT_TRUE(w.WaitForChanges(4));
  ASSERT_TRUE(WaitFor([&] { return (*sim->Stats())["open_watches"] == 1; }, milliseconds(5000)));
  ASSERT_TRUE(sim->SetFaults({{"drop_watches", true}}).ok());
  EXPECT_TRUE(WaitFor([&] { return w.ended(); }, milliseconds(5000)));

  auto reqs = sim->Requests();
  ASSERT_TRUE(reqs.ok());
  bool saw_watch = false;
  for (const auto& q : *reqs) {
    if (q["watch"] == true) {
      saw_watch = true;
      EXPECT_EQ(q["path"], "/api/v1/pods");
      EXPECT_NE(q["query"].get<std::string>().find("fieldSelector=spec.nodeName=node-1"),
                std::string::npos);
      EXPECT_EQ(q["verb"], "watch");
      EXPECT_EQ(q["resource"], "pods");
    }
  }
  EXPECT_TRUE(saw_watch);
  auto stats = sim->Stats();
  EXPECT_GE((*stats)["by_verb"]["list"]["pods"]["requests"].get<int>(), 1);
  EXPECT_GE((*stats)["requests_total"].get<int>(), 5);
  EXPECT_GT((*stats)["by_verb"]["list"]["pods"]["bytes"].get<int>(), 1000);
  EXPECT_EQ((*stats)["watch_by_resource"]["pods"]["events"], 4);
  EXPECT_EQ((*stats)["open_watches"], 0);
}

TEST(KubesimTest, StateFileSurvivesRestart) {
  auto sim = StartSim({.persist_state = true});
  ASSERT_TRUE(sim);
  auto c = sim->KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                         ConfigMap("keep", {{"a", "b"}}).dump());
  std::string rv = (*c)["metadata"]["resourceVersion"];
  auto token = sim->CreateToken("ashiato", "default", {"ashiato"});
  std::string admin = sim->admin_token();
  uint16_t port = sim->port();
  EXPECT_EQ(sim->Stop(), 0);
  ASSERT_TRUE(sim->Restart().ok());
  EXPECT_EQ(sim->port(), port);
  EXPECT_EQ(sim->admin_token(), admin);
  auto got = sim->KubeJson("GET", "/api/v1/namespaces/default/configmaps/keep");
  EXPECT_EQ((*got)["metadata"]["resourceVersion"], rv);
  auto list = sim->KubeJson("GET", "/api/v1/pods");
  EXPECT_EQ((*list)["items"].size(), 12u);
  EXPECT_GE(std::stoull((*list)["metadata"]["resourceVersion"].get<std::string>()),
            std::stoull(rv));
  auto review =
      sim->KubeJson("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                    json{{"spec", {{"token", *token}, {"audiences", {"ashiato"}}}}}.dump());
  EXPECT_TRUE((*review)["status"].value("authenticated", false));
  // A watch from before the restart gets 410, as after an API server restart.
  WatchReader w(sim->client_options(),
                "/api/v1/pods?watch=1&resourceVersion=" + std::to_string(std::stoull(rv) - 1));
  ASSERT_TRUE(WaitFor([&] { return w.ended(); }, milliseconds(5000)));
  ASSERT_EQ(w.events().size(), 1u);
  EXPECT_EQ(w.events()[0]["object"]["code"], 410);
}

TEST(KubesimTest, ChurnProducesEvents) {
  auto sim = StartSim({.nodes = 5, .pods_per_node = 4, .churn = 100});
  ASSERT_TRUE(sim);
  WatchReader w(sim->client_options(),
                "/api/v1/pods?watch=1&resourceVersion=" +
                    (*sim->KubeJson("GET", "/api/v1/pods"))["metadata"]["resourceVersion"]
                        .get<std::string>());
  ASSERT_TRUE(w.WaitForChanges(50, milliseconds(10000)));
  std::set<std::string> types;
  for (const auto& e : w.changes()) types.insert(e["type"].get<std::string>());
  EXPECT_TRUE(types.count("ADDED"));
  EXPECT_TRUE(types.count("MODIFIED"));
  EXPECT_TRUE(types.count("DELETED"));
}

TEST(KubesimTest, KubeletSimulationRunsCreatedPods) {
  auto sim = StartSim({.extra_args = {"--kubelet-delay-ms", "50"}});
  ASSERT_TRUE(sim);
  json pod = {{"metadata", {{"name", "run-me"}}},
              {"spec", {{"containers", {{{"name", "c"}, {"image", "nginx:1.25"}}}}}}};
  ASSERT_TRUE(sim->KubeJson("POST", "/api/v1/namespaces/default/pods", pod.dump()).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto p = sim->KubeJson("GET", "/api/v1/namespaces/default/pods/run-me");
        return p.ok() && (*p)["status"].value("phase", "") == "Running";
      },
      milliseconds(5000)));
  auto p = *sim->KubeJson("GET", "/api/v1/namespaces/default/pods/run-me");
  EXPECT_EQ(p["spec"]["nodeName"].get<std::string>().rfind("node-", 0), 0u);
  EXPECT_FALSE(p["status"]["podIP"].get<std::string>().empty());
}

}  // namespace
}  // namespace ashiato::testing
