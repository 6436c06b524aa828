#include "aggregator/cm_writer.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <set>
#include <thread>

#include "aggregator/cm_fake_api.h"
#include "aggregator/cm_key.h"

namespace ashiato {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using json = nlohmann::json;

class FakeClock : public Clock {
 public:
  explicit FakeClock(SystemTime t) : now_(t.time_since_epoch().count()) {}
  SystemTime Now() const override { return SystemTime(SystemTime::duration(now_.load())); }
  void Set(SystemTime t) { now_ = t.time_since_epoch().count(); }
  void Advance(SystemTime::duration d) { now_ += d.count(); }

 private:
  std::atomic<SystemTime::duration::rep> now_;
};

const SystemTime kT0 = *ParseRfc3339("2026-11-24T03:10:00Z");
const char kNs[] = "ashiato";

class WriterTest : public ::testing::Test {
 protected:
  WriterTest() : clock_(kT0) {}

  std::unique_ptr<HourlyConfigMapWriter> NewWriter(ConfigMapWriterOptions options = {}) {
    options.namespace_ = kNs;
    options.conflict_backoff.initial = milliseconds(1);
    options.conflict_backoff.max = milliseconds(5);
    // The fake outlives every writer: hand out a forwarding view.
    struct View : ConfigMapApi {
      explicit View(FakeConfigMapApi* f) : f(f) {}
      Result<json> Get(const std::string& ns, const std::string& n) override {
        return f->Get(ns, n);
      }
      Result<json> List(const std::string& ns, const std::string& s) override {
        return f->List(ns, s);
      }
      Result<json> Create(const std::string& ns, const json& cm) override {
        return f->Create(ns, cm);
      }
      Result<json> Update(const std::string& ns, const json& cm) override {
        return f->Update(ns, cm);
      }
      Status Delete(const std::string& ns, const std::string& n) override {
        return f->Delete(ns, n);
      }
      FakeConfigMapApi* f;
    };
    return std::make_unique<HourlyConfigMapWriter>(options, std::make_unique<View>(&api_), &clock_);
  }

  // Union of the data of every shard of `hour_label`.
  std::map<std::string, std::string> HourData(const std::string& hour_label) {
    std::map<std::string, std::string> out;
    for (auto& [name, cm] : api_.Objects(kNs)) {
      if (cm["metadata"]["labels"].value("ashiato.io/hour", "") != hour_label) continue;
      for (auto& [k, v] : cm["data"].items()) {
        EXPECT_FALSE(out.count(k)) << k << " in two shards";
        out[k] = v.get<std::string>();
      }
    }
    return out;
  }

  FakeClock clock_;
  FakeConfigMapApi api_;
};

TEST_F(WriterTest, WritesTheHourWithExactKeysValuesAndLabels) {
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("default", "web-0", "node-a", kT0);
  w->PodSeen("default", "web-1", "node-b", kT0);
  w->PodSeen("kube-system", "dns-x", "node-c", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  auto objects = api_.Objects(kNs);
  ASSERT_EQ(objects.size(), 1u);
  const json& cm = objects.at("pod-ashiato-2026112403");
  EXPECT_EQ(cm["data"], json({{"default_web-0", "node-a"},
                              {"default_web-1", "node-b"},
                              {"kube-system_dns-x", "node-c"}}));
  EXPECT_EQ(cm["metadata"]["labels"], json({{"app", "pod-ashiato"},
                                            {"type", "pod-node-mapping"},
                                            {"ashiato.io/hour", "2026112403"}}));
  EXPECT_EQ(cm["metadata"]["annotations"]["ashiato.io/shard"], "0");
  auto s = w->stats();
  EXPECT_EQ(s.creates, 1u);
  EXPECT_EQ(s.shards, 1);
  EXPECT_EQ(s.keys, 3u);

  // Nothing changed: no request at all.
  api_.ResetCounters();
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.counters().requests(), 0);
  // The same pod seen again on the same node: still nothing.
  w->PodSeen("default", "web-0", "node-a", kT0 + minutes(1));
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.counters().requests(), 0);
}

TEST_F(WriterTest, PodOnTwoNodesInOneHourKeepsBothNewestFirst) {
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("db", "pg-0", "node-a", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  w->PodGone("db", "pg-0", "node-a", kT0 + minutes(1));
  w->PodSeen("db", "pg-0", "node-b", kT0 + minutes(2));
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403").at("db_pg-0"), "node-b,node-a");
}

TEST_F(WriterTest, LongNamesUseTheFallbackKeyAndKeepTheFullName) {
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  std::string ns(63, 'n'), name(250, 'p');
  w->PodSeen(ns, name, "node-a", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  auto data = HourData("2026112403");
  PodKey k = MakePodKey(ns, name);
  ASSERT_TRUE(k.fallback());
  EXPECT_EQ(data.at(k.key), "node-a|" + ns + "/" + name);
}

TEST_F(WriterTest, HourBoundaryCarriesRunningPods) {
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("default", "runner", "node-a", kT0);
  w->PodSeen("default", "short", "node-b", kT0);
  w->PodGone("default", "short", "node-b", kT0 + minutes(5));
  ASSERT_TRUE(w->FlushNow().ok());

  clock_.Set(*ParseRfc3339("2026-11-24T04:00:05Z"));
  w->PodSeen("default", "fresh", "node-c", clock_.Now());
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403"),
            (std::map<std::string, std::string>{{"default_runner", "node-a"},
                                                {"default_short", "node-b"}}));
  EXPECT_EQ(HourData("2026112404"),
            (std::map<std::string, std::string>{{"default_runner", "node-a"},
                                                {"default_fresh", "node-c"}}));
  // An hour with no events at all still lists the pods that ran through it.
  clock_.Set(*ParseRfc3339("2026-11-24T05:30:00Z"));
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112405"),
            (std::map<std::string, std::string>{{"default_runner", "node-a"},
                                                {"default_fresh", "node-c"}}));
}

TEST_F(WriterTest, ConcurrentWriterConflictLosesNothing) {
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("default", "ours-1", "node-a", kT0);
  ASSERT_TRUE(w->FlushNow().ok());

  // Before each of our next two updates another writer slips in its own
  // keys (and changes one of ours), making our resourceVersion stale.
  std::atomic<int> injected{0};
  std::atomic<bool> in_hook{false};
  api_.SetHook([&](const std::string& verb, const std::string& name) {
    if (verb != "update" || injected >= 2 || in_hook) return Status::Ok();
    in_hook = true;
    int n = ++injected;
    auto cur = api_.Get(kNs, name);
    EXPECT_TRUE(cur.ok());
    json cm = *cur;
    cm["data"]["other_pod-" + std::to_string(n)] = "node-x";
    cm["data"]["default_ours-1"] = "node-z";
    auto upd = api_.Update(kNs, cm);
    EXPECT_TRUE(upd.ok()) << upd.status().ToString() << " " << name;
    in_hook = false;
    return Status::Ok();
  });
  w->PodSeen("default", "ours-2", "node-b", kT0 + minutes(1));
  ASSERT_TRUE(w->FlushNow().ok());
  api_.SetHook(nullptr);
  EXPECT_EQ(HourData("2026112403"),
            (std::map<std::string, std::string>{{"default_ours-1", "node-a,node-z"},
                                                {"default_ours-2", "node-b"},
                                                {"other_pod-1", "node-x"},
                                                {"other_pod-2", "node-x"}}));
  EXPECT_GE(w->stats().conflicts, 2u);
}

TEST_F(WriterTest, TwoWritersOnTheSameHourConvergeToTheUnion) {
  auto a = NewWriter();
  auto b = NewWriter();
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  std::set<std::string> want;
  for (int i = 0; i < 200; ++i) {
    a->PodSeen("ns", "a-" + std::to_string(i), "node-a", kT0);
    b->PodSeen("ns", "b-" + std::to_string(i), "node-b", kT0);
    want.insert("ns_a-" + std::to_string(i));
    want.insert("ns_b-" + std::to_string(i));
  }
  // Both create the same shard at once; one gets AlreadyExists and merges.
  std::thread ta([&] { EXPECT_TRUE(a->FlushNow().ok()); });
  std::thread tb([&] { EXPECT_TRUE(b->FlushNow().ok()); });
  ta.join();
  tb.join();
  for (int round = 0; round < 20; ++round) {
    a->PodSeen("ns", "a-x" + std::to_string(round), "node-a", kT0);
    b->PodSeen("ns", "b-x" + std::to_string(round), "node-b", kT0);
    want.insert("ns_a-x" + std::to_string(round));
    want.insert("ns_b-x" + std::to_string(round));
    std::thread t1([&] { EXPECT_TRUE(a->FlushNow().ok()); });
    std::thread t2([&] { EXPECT_TRUE(b->FlushNow().ok()); });
    t1.join();
    t2.join();
  }
  std::set<std::string> got;
  for (auto& [k, v] : HourData("2026112403")) got.insert(k);
  EXPECT_EQ(got, want);
}

TEST_F(WriterTest, RestartMergesWhatAnEarlierRunWrote) {
  {
    auto first = NewWriter();
    ASSERT_TRUE(first->Start().ok());
    first->PodSeen("default", "old-pod", "node-a", kT0);
    first->PodSeen("default", "moved", "node-a", kT0);
    first->Stop();  // Final flush.
  }
  ASSERT_EQ(HourData("2026112403").size(), 2u);
  auto second = NewWriter();
  ASSERT_TRUE(second->Start().ok());
  EXPECT_EQ(second->stats().keys, 0u);  // Stats refresh at the first flush.
  second->PodSeen("default", "new-pod", "node-b", kT0 + minutes(20));
  second->PodSeen("default", "moved", "node-c", kT0 + minutes(20));
  ASSERT_TRUE(second->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403"),
            (std::map<std::string, std::string>{{"default_old-pod", "node-a"},
                                                {"default_moved", "node-c,node-a"},
                                                {"default_new-pod", "node-b"}}));
  EXPECT_EQ(api_.counters().conflicts, 0);  // It read first, so no blind create.
}

TEST_F(WriterTest, ExistingConfigMapWithoutOurLabelsIsMergedNotReplaced) {
  // As the old poller left it: plain name, no hour label.
  api_.Put(kNs, {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata",
                  {{"name", "pod-ashiato-2026112403"},
                   {"labels", {{"app", "pod-ashiato"}, {"type", "pod-node-mapping"}}}}},
                 {"data", {{"legacy_pod", "node-old"}}}});
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("default", "web", "node-a", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  auto cm = api_.Objects(kNs).at("pod-ashiato-2026112403");
  EXPECT_EQ(cm["data"], json({{"legacy_pod", "node-old"}, {"default_web", "node-a"}}));
  EXPECT_EQ(cm["metadata"]["labels"]["ashiato.io/hour"], "2026112403");
}

TEST_F(WriterTest, DeletedUnderUsIsRecreatedWithEverything) {
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("default", "a", "node-a", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  ASSERT_TRUE(api_.Delete(kNs, "pod-ashiato-2026112403").ok());
  w->PodSeen("default", "b", "node-b", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403"),
            (std::map<std::string, std::string>{{"default_a", "node-a"}, {"default_b", "node-b"}}));
}

TEST_F(WriterTest, UnavailableIsRetriedAtTheNextFlush) {
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("default", "a", "node-a", kT0);
  api_.SetHook([](const std::string& verb, const std::string&) {
    return verb == "create" ? Unavailable("apiserver down") : Status::Ok();
  });
  Status s = w->FlushNow();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(api_.Objects(kNs).empty());
  api_.SetHook(nullptr);
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403").size(), 1u);
  EXPECT_EQ(w->stats().errors, 1u);
}

TEST_F(WriterTest, StartFailureIsRetriedBeforeTheFirstWrite) {
  api_.Put(kNs, {{"metadata",
                  {{"name", "pod-ashiato-2026112403"},
                   {"labels", {{"app", "pod-ashiato"}, {"ashiato.io/hour", "2026112403"}}}}},
                 {"data", {{"earlier_pod", "node-e"}}}});
  api_.SetHook([](const std::string& verb, const std::string&) {
    return verb == "list" ? Unavailable("not yet") : Status::Ok();
  });
  auto w = NewWriter();
  EXPECT_FALSE(w->Start().ok());
  w->PodSeen("default", "a", "node-a", kT0);
  EXPECT_FALSE(w->FlushNow().ok());
  api_.SetHook(nullptr);
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403").size(), 2u);
  w->Stop();
}

json Cm(const std::string& name, json labels) {
  return {{"metadata", {{"name", name}, {"labels", std::move(labels)}}}, {"data", json::object()}};
}

TEST_F(WriterTest, RetentionDeletesOnlyOldLabelledHours) {
  const json ours = {{"app", "pod-ashiato"}, {"type", "pod-node-mapping"}};
  auto with_hour = [&](const std::string& h) {
    json l = ours;
    l["ashiato.io/hour"] = h;
    return l;
  };
  // Now is 2026-11-24T03:10Z; retention 7 days keeps hours from 2026-11-17T03 on.
  api_.Put(kNs, Cm("pod-ashiato-2026111702", with_hour("2026111702")));    // Old.
  api_.Put(kNs, Cm("pod-ashiato-2026111702-1", with_hour("2026111702")));  // Old shard.
  api_.Put(kNs, Cm("pod-ashiato-2026111703", with_hour("2026111703")));    // Kept.
  api_.Put(kNs, Cm("pod-ashiato-2026101000", ours));                       // Old, poller.
  api_.Put(kNs, Cm("pod-ashiato-2026112400", ours));                       // Recent, poller.
  api_.Put(kNs, Cm("pod-ashiato-2026101001", {{"app", "pod-ashiato"}}));   // Not our type.
  api_.Put(kNs, Cm("something-else", json::object()));
  api_.Put("other-ns", Cm("pod-ashiato-2026101002", with_hour("2026101002")));
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  std::set<std::string> names;
  for (auto& [n, cm] : api_.Objects(kNs)) names.insert(n);
  EXPECT_EQ(names, (std::set<std::string>{"pod-ashiato-2026111703", "pod-ashiato-2026112400",
                                          "pod-ashiato-2026101001", "something-else"}));
  EXPECT_EQ(api_.Objects("other-ns").size(), 1u);
  EXPECT_EQ(w->stats().deletes, 3u);

  // Runs again only once the hour changes.
  api_.ResetCounters();
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.counters().lists, 0);
  clock_.Set(*ParseRfc3339("2026-11-24T04:00:01Z"));
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.Objects(kNs).count("pod-ashiato-2026111703"), 0u);
}

TEST_F(WriterTest, RetentionZeroKeepsEverything) {
  api_.Put(kNs,
           Cm("pod-ashiato-2020010100", {{"app", "pod-ashiato"}, {"type", "pod-node-mapping"}}));
  ConfigMapWriterOptions o;
  o.retention = hours(0);
  auto w = NewWriter(o);
  ASSERT_TRUE(w->Start().ok());
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.Objects(kNs).size(), 1u);
}

TEST_F(WriterTest, ScaleOf150000PodsOn5000Nodes) {
  // Only FlushNow writes: the loop below can outlast the default debounce
  // (under ASan it does), and a background flush would split the counts.
  ConfigMapWriterOptions o;
  o.debounce = hours(1);
  auto w = NewWriter(o);
  ASSERT_TRUE(w->Start().ok());
  const int kPods = 150000;
  std::set<std::string> want;
  for (int i = 0; i < kPods; ++i) {
    std::string ns = "team-" + std::to_string(i % 300);
    std::string name = "app-" + std::to_string(i / 30) + "-5d8f7c9b4-" + std::to_string(i);
    w->PodSeen(ns, name, "node-" + std::to_string(i % 5000) + ".cluster.internal", kT0);
    want.insert(ns + "_" + name);
  }
  api_.ResetCounters();
  ASSERT_TRUE(w->FlushNow().ok());
  auto c = api_.counters();
  auto s = w->stats();
  EXPECT_EQ(c.creates, s.shards);
  EXPECT_EQ(c.requests(), s.shards);
  EXPECT_GT(s.shards, 5);
  std::set<std::string> got;
  for (auto& [name, cm] : api_.Objects(kNs)) {
    EXPECT_LE(cm.dump().size(), ConfigMapWriterOptions().shard_max_bytes) << name;
    for (auto& [k, v] : cm["data"].items()) got.insert(k);
  }
  EXPECT_EQ(got, want);

  // A handful of changes rewrites only the shards that hold them.
  api_.ResetCounters();
  w->PodSeen("team-1", "app-0-5d8f7c9b4-1", "node-moved", kT0 + minutes(1));
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.counters().requests(), 1);
  EXPECT_EQ(api_.counters().updates, 1);
  EXPECT_EQ(w->stats().last_flush_shards_written, 1u);
}

// Issue 15 part 6: in a 150,000-pod hour, a flush of 90 new pods and 20
// StatefulSet pods moving node sends kilobytes, not the ~7.5 MB of the
// layout that rewrote every large shard holding a changed key; readers still
// get exactly one value per key; a restart keeps appending where it was.
TEST_F(WriterTest, AFlushOfChurnAt150000PodsWritesOnlySmallShards) {
  ConfigMapWriterOptions o;
  o.debounce = hours(1);
  auto w = NewWriter(o);
  ASSERT_TRUE(w->Start().ok());
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  auto suffix = [](int i) {
    std::string out;
    for (int d = 0; d < 5; ++d, i /= 27) out += kAlphabet[i % 27];
    return out;
  };
  auto ns = [](int i) { return "team-" + std::to_string(i % 300); };
  auto node = [](int i) { return "ip-10-0-" + std::to_string(i % 5000) + ".ec2.internal"; };
  // 1 in 20 a StatefulSet pod, the rest ReplicaSet pods.
  auto name = [&](int i) {
    if (i % 20 == 0) return "db-" + std::to_string(i / 60) + "-" + std::to_string(i / 20 % 3);
    return "web-" + std::to_string(i / 30) + "-7d9f8c6b5-" + suffix(i);
  };
  const int kPods = 150000;
  std::map<std::string, std::string> want;
  for (int i = 0; i < kPods; ++i) {
    w->PodSeen(ns(i), name(i), node(i), kT0);
    want[ns(i) + "_" + name(i)] = node(i);
  }
  ASSERT_TRUE(w->FlushNow().ok());
  int next = 0;
  std::map<int, std::string> moved;  // Where moved pods run now.
  auto churn = [&](int flush) {
    for (int c = 0; c < 90; ++c, ++next) {
      std::string n = "api-6b8c9d7f5-" + suffix(next);
      w->PodSeen(ns(next), n, node(next), kT0 + minutes(1));
      want[ns(next) + "_" + n] = node(next);
    }
    for (int m = 0; m < 20; ++m) {
      int i = (flush * 20 + m) * 140 % kPods / 20 * 20;  // A StatefulSet pod.
      std::string to = "moved-" + std::to_string(flush);
      w->PodSeen(ns(i), name(i), to, kT0 + minutes(1));
      moved[i] = to;
      std::string& v = want[ns(i) + "_" + name(i)];
      v = AddNodeToValue(v, to, "");
    }
  };
  for (int flush = 0; flush < 3; ++flush) {
    churn(flush);
    api_.ResetCounters();
    ASSERT_TRUE(w->FlushNow().ok());
    EXPECT_LE(api_.counters().bytes_received, 250u * 1024) << "flush " << flush;
    EXPECT_LE(w->stats().last_flush_shards_written, 21u);
    EXPECT_EQ(api_.counters().conflicts, 0);
  }
  for (auto& [n, cm] : api_.Objects(kNs)) {
    EXPECT_LE(cm.dump().size(), ConfigMapWriterOptions().shard_max_bytes) << n;
  }
  EXPECT_EQ(HourData("2026112403"), want);  // Also: no key in two shards.

  // Restart: the hour is read back, the live pods are reported again (no
  // change), and new pods go to the open shard, not to a large one.
  w.reset();
  auto again = NewWriter(o);
  ASSERT_TRUE(again->Start().ok());
  for (int i = 0; i < kPods; i += 7) {
    again->PodSeen(ns(i), name(i), moved.count(i) ? moved[i] : node(i), kT0 + minutes(2));
  }
  std::swap(w, again);
  churn(3);
  api_.ResetCounters();
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_LE(api_.counters().bytes_received, 250u * 1024);
  EXPECT_EQ(api_.counters().conflicts, 0);
  EXPECT_EQ(HourData("2026112403"), want);
}

TEST_F(WriterTest, FlushThreadWritesWithinTheDebounceAndStopFlushes) {
  ConfigMapWriterOptions o;
  o.debounce = milliseconds(20);
  auto w = NewWriter(o);
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("default", "a", "node-a", kT0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (HourData("2026112403").empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(HourData("2026112403").size(), 1u);
  w->Stop();

  ConfigMapWriterOptions slow;
  slow.debounce = hours(1);
  auto w2 = NewWriter(slow);
  ASSERT_TRUE(w2->Start().ok());
  w2->PodSeen("default", "b", "node-b", kT0);
  w2->Stop();
  EXPECT_EQ(HourData("2026112403").size(), 2u);
}

// A ConfigMap as an earlier run (or another writer) left it for `hour_label`.
json HourCm(const std::string& name, const std::string& hour_label, json data) {
  return {
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata",
       {{"name", name},
        {"labels",
         {{"app", "pod-ashiato"}, {"type", "pod-node-mapping"}, {"ashiato.io/hour", hour_label}}}}},
      {"data", std::move(data)}};
}

HourIndex Hour(const std::string& label) { return *ParseHourLabel(label); }

TEST_F(WriterTest, PodDeletedBeforeItWasSeenLandsInItsHour) {
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  // Created and deleted between two reports: the writer only hears of its end.
  w->PodGone("default", "job-x", "node-a", kT0 + minutes(5));
  w->PodGone("default", "unscheduled", "", kT0 + minutes(5));  // Never on a node.
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403"),
            (std::map<std::string, std::string>{{"default_job-x", "node-a"}}));

  // Gone pods are not live: the next hours do not carry them, and hour 03
  // leaves memory once written.
  clock_.Set(*ParseRfc3339("2026-11-24T04:00:05Z"));
  ASSERT_TRUE(w->FlushNow().ok());
  clock_.Set(*ParseRfc3339("2026-11-24T05:10:00Z"));
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_TRUE(HourData("2026112404").empty());

  // Late news about hours no longer in memory but inside retention: each is
  // read back (one list) and merged, not dropped.
  api_.ResetCounters();
  w->PodGone("default", "late-gone", "node-b", *ParseRfc3339("2026-11-24T03:50:00Z"));
  w->PodSeen("default", "late-seen", "node-c", *ParseRfc3339("2026-11-24T04:30:00Z"));
  // Outside the 7-day retention: ignored, nothing recreated.
  w->PodGone("default", "ancient", "node-d", *ParseRfc3339("2026-11-10T03:00:00Z"));
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403"),
            (std::map<std::string, std::string>{{"default_job-x", "node-a"},
                                                {"default_late-gone", "node-b"}}));
  EXPECT_EQ(HourData("2026112404"),
            (std::map<std::string, std::string>{{"default_late-seen", "node-c"}}));
  // PodSeen: the pod is live now, so the current hour has it too.
  EXPECT_EQ(HourData("2026112405"),
            (std::map<std::string, std::string>{{"default_late-seen", "node-c"}}));
  EXPECT_TRUE(HourData("2026111003").empty());
  EXPECT_EQ(api_.counters().lists, 2);  // Hours 03 and 04; 05 was loaded.
  EXPECT_EQ(api_.counters().updates, 1);
  EXPECT_EQ(api_.counters().creates, 2);

  // All written: the next flush sends nothing.
  api_.ResetCounters();
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.counters().requests(), 0);
}

TEST_F(WriterTest, BackfillMergesWithTheServerAndWritesNothingWhenEqual) {
  // Hour 01: the server has everything the store has, and more, in its order.
  const json h01 = {{"default_a", "node-b,node-a"}, {"default_b", "node-x"}, {"other_c", "node-y"}};
  api_.Put(kNs, HourCm("pod-ashiato-2026112401", "2026112401", h01));
  // Hour 00: part of it.
  api_.Put(kNs, HourCm("pod-ashiato-2026112400", "2026112400",
                       {{"default_a", "node-a"}, {"other_d", "node-z"}}));
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  api_.ResetCounters();

  // default/a ran on node-b, then node-a: the server's set, in another order
  // (the server's order is kept).
  w->Backfill(Hour("2026112401"),
              {{"default", "b", "node-x"}, {"default", "a", "node-b"}, {"default", "a", "node-a"}});
  w->Backfill(Hour("2026112400"), {{"default", "a", "node-a"}, {"default", "e", "node-e"}});
  // Nothing on the server for 23:00 yesterday.
  w->Backfill(Hour("2026112323"), {{"default", "f", "node-f"}, {"default", "f", "node-g"}});
  EXPECT_EQ(w->OldestRetainedHour(), Hour("2026111703"));
  // Outside the 7-day retention, and in the future: ignored.
  w->Backfill(Hour("2026111000"), {{"default", "g", "node-g"}});
  w->Backfill(Hour("2026112405"), {{"default", "h", "node-h"}});
  ASSERT_TRUE(w->FlushNow().ok());

  auto c = api_.counters();
  EXPECT_EQ(c.lists, 3);    // One per backfilled hour.
  EXPECT_EQ(c.updates, 1);  // Hour 00.
  EXPECT_EQ(c.creates, 1);  // Hour 23.
  EXPECT_EQ(c.gets + c.deletes, 0);
  EXPECT_EQ(api_.Objects(kNs).at("pod-ashiato-2026112401")["data"], h01);
  EXPECT_EQ(HourData("2026112400"),
            (std::map<std::string, std::string>{
                {"default_a", "node-a"}, {"other_d", "node-z"}, {"default_e", "node-e"}}));
  EXPECT_EQ(HourData("2026112323"),
            (std::map<std::string, std::string>{{"default_f", "node-g,node-f"}}));
  EXPECT_TRUE(HourData("2026111000").empty());
  EXPECT_TRUE(HourData("2026112405").empty());
  EXPECT_TRUE(HourData("2026112403").empty());  // Backfill is history, not the live set.

  // Written: the next flush sends nothing.
  api_.ResetCounters();
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.counters().requests(), 0);
}

TEST_F(WriterTest, BackfillOfTheCurrentHourBeforeStartIsMergedAtStart) {
  api_.Put(kNs, HourCm("pod-ashiato-2026112403", "2026112403", {{"default_a", "node-a"}}));
  auto w = NewWriter();
  w->Backfill(Hour("2026112403"), {{"default", "a", "node-a"}, {"default", "b", "node-b"}});
  ASSERT_TRUE(w->Start().ok());
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403"),
            (std::map<std::string, std::string>{{"default_a", "node-a"}, {"default_b", "node-b"}}));
}

TEST_F(WriterTest, BackfilledHourIsRetriedAfterFailedFlushes) {
  auto w = NewWriter();
  ASSERT_TRUE(w->Start().ok());
  // Five hours back: older than anything the writer used to retry.
  const HourIndex old = HourOf(kT0) - 5;
  std::atomic<bool> down{true};
  api_.SetHook([&](const std::string& verb, const std::string&) {
    return down && (verb == "list" || verb == "create") ? Unavailable("apiserver down")
                                                        : Status::Ok();
  });
  w->Backfill(old, {{"default", "a", "node-a"}});
  EXPECT_EQ(w->FlushNow().code(), StatusCode::kUnavailable);
  // Still down hours later (the retention pass of 05:00 fails too).
  clock_.Set(*ParseRfc3339("2026-11-24T05:20:00Z"));
  EXPECT_EQ(w->FlushNow().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(HourData(HourLabel(old)).empty());
  down = false;
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData(HourLabel(old)),
            (std::map<std::string, std::string>{{"default_a", "node-a"}}));
  // Now written, it is forgotten.
  api_.ResetCounters();
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.counters().requests(), 0);
}

TEST_F(WriterTest, ByteBudgetPrunesTheOldestHoursNeverTheCurrent) {
  auto pods = [](const std::string& prefix, int n) {
    json data = json::object();
    for (int i = 0; i < n; ++i) {
      data["default_" + prefix + "-" + std::to_string(i)] = "node-" + std::to_string(i % 7);
    }
    return data;
  };
  // Four past hours inside retention (23:00 has two shards) and the current one.
  api_.Put(kNs, HourCm("pod-ashiato-2026112323", "2026112323", pods("p23", 100)));
  api_.Put(kNs, HourCm("pod-ashiato-2026112323-1", "2026112323", pods("q23", 100)));
  api_.Put(kNs, HourCm("pod-ashiato-2026112400", "2026112400", pods("p00", 100)));
  api_.Put(kNs, HourCm("pod-ashiato-2026112401", "2026112401", pods("p01", 100)));
  api_.Put(kNs, HourCm("pod-ashiato-2026112402", "2026112402", pods("p02", 100)));
  api_.Put(kNs, HourCm("pod-ashiato-2026112403", "2026112403", pods("p03", 100)));
  std::map<std::string, size_t> size;
  for (auto& [name, cm] : api_.Objects(kNs)) size[name] = cm.dump().size();
  const size_t keep = size["pod-ashiato-2026112401"] + size["pod-ashiato-2026112402"] +
                      size["pod-ashiato-2026112403"];
  ASSERT_LT(keep + 100, keep + size["pod-ashiato-2026112400"]);

  prometheus::Registry registry;
  ConfigMapWriterOptions o;
  o.registry = &registry;
  o.max_total_bytes = keep + 100;  // Hour 00 does not fit any more.
  auto w = NewWriter(o);
  ASSERT_TRUE(w->Start().ok());  // The start's retention pass enforces it.
  auto names = [&] {
    std::set<std::string> out;
    for (auto& [n, cm] : api_.Objects(kNs)) out.insert(n);
    return out;
  };
  EXPECT_EQ(names(), (std::set<std::string>{"pod-ashiato-2026112401", "pod-ashiato-2026112402",
                                            "pod-ashiato-2026112403"}));
  EXPECT_EQ(w->stats().budget_pruned, 3u);
  EXPECT_EQ(w->stats().deletes, 0u);  // Not by age.
  EXPECT_EQ(w->stats().total_bytes, keep);
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("ashiato_cm_budget_pruned_total 3"), std::string::npos) << text;
  EXPECT_NE(text.find("ashiato_cm_bytes " + std::to_string(keep)), std::string::npos) << text;

  // The store would rebuild the pruned hours: they stay pruned.
  w->Backfill(Hour("2026112400"), {{"default", "x", "node-x"}});
  // The current hour grows past the whole budget by itself.
  for (int i = 0; i < 2000; ++i) w->PodSeen("default", "big-" + std::to_string(i), "node-a", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_GT(w->stats().total_bytes, o.max_total_bytes);
  // Checked at most once a minute between the hourly passes.
  EXPECT_EQ(names().size(), 4u);
  clock_.Advance(std::chrono::seconds(61));
  ASSERT_TRUE(w->FlushNow().ok());
  // Never the current hour (the 2,000 new pods are a batch in a shard of their own).
  EXPECT_EQ(names(), (std::set<std::string>{"pod-ashiato-2026112403", "pod-ashiato-2026112403-1"}));
  EXPECT_EQ(HourData("2026112403").size(), 2100u);
  EXPECT_EQ(w->stats().budget_pruned, 5u);
  text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("ashiato_cm_budget_pruned_total 5"), std::string::npos) << text;
  size_t current = 0;
  for (auto& [name, cm] : api_.Objects(kNs)) current += cm.dump().size();
  EXPECT_NE(text.find("ashiato_cm_bytes " + std::to_string(current)), std::string::npos) << text;

  // A late report for a pruned hour is not written back.
  w->PodGone("default", "late", "node-l", *ParseRfc3339("2026-11-24T01:30:00Z"));
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(names().size(), 2u);
}

TEST_F(WriterTest, ByteBudgetLimitsWhatBackfillWrites) {
  ConfigMapWriterOptions o;
  o.max_total_bytes = 7000;  // Two of the hours below (~3 KB each), not three.
  auto w = NewWriter(o);
  ASSERT_TRUE(w->Start().ok());
  api_.ResetCounters();
  // Newest first, as the aggregator calls it.
  for (int back = 1; back <= 6; ++back) {
    std::vector<BackfillEntry> entries;
    for (int i = 0; i < 100; ++i)
      entries.push_back({"default", "pod-" + std::to_string(i), "node-a"});
    w->Backfill(HourOf(kT0) - back, std::move(entries));
  }
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(api_.counters().creates, 2);
  EXPECT_EQ(HourData(HourLabel(HourOf(kT0) - 1)).size(), 100u);
  EXPECT_EQ(HourData(HourLabel(HourOf(kT0) - 2)).size(), 100u);
  for (int back = 3; back <= 6; ++back)
    EXPECT_TRUE(HourData(HourLabel(HourOf(kT0) - back)).empty());
  EXPECT_LE(w->stats().total_bytes, o.max_total_bytes);
  EXPECT_EQ(w->stats().budget_pruned, 0u);  // Nothing had to be deleted: never written.
}

TEST_F(WriterTest, ByteBudgetGivesTheCurrentHourPriorityOverBackfill) {
  ConfigMapWriterOptions o;
  o.max_total_bytes = 7000;
  auto w = NewWriter(o);
  ASSERT_TRUE(w->Start().ok());
  std::vector<BackfillEntry> entries;
  for (int i = 0; i < 100; ++i)
    entries.push_back({"default", "old-" + std::to_string(i), "node-a"});
  w->Backfill(HourOf(kT0) - 1, std::move(entries));  // ~3 KB: fits, for now.
  // Before the flush the current hour grows to ~6 KB: the past hour no longer fits.
  for (int i = 0; i < 200; ++i) w->PodSeen("default", "now-" + std::to_string(i), "node-b", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_EQ(HourData("2026112403").size(), 200u);
  EXPECT_TRUE(HourData("2026112402").empty());
  EXPECT_LE(w->stats().total_bytes, o.max_total_bytes);
}

TEST_F(WriterTest, MetricsAreExported) {
  prometheus::Registry registry;
  ConfigMapWriterOptions o;
  o.registry = &registry;
  auto w = NewWriter(o);
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("default", "a", "node-a", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("ashiato_cm_writes_total{verb=\"create\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("ashiato_cm_conflicts_total 0"), std::string::npos);
  EXPECT_NE(text.find("ashiato_cm_written_bytes_total"), std::string::npos);
  EXPECT_NE(text.find("ashiato_cm_shards 1"), std::string::npos);
}

}  // namespace
}  // namespace ashiato
