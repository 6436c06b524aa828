// Benchmark 4 (issue 6): the hourly ConfigMap writer at cluster scale against
// an in-memory API server (FakeConfigMapApi enforces the 1 MiB data limit and
// counts requests and bytes). Prints one "name value unit" line per figure.
//
//   cm_bench --pods 150000 --nodes 5000 [--changes 200] [--moves 20] [--hour-rate 20]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "aggregator/cm_fake_api.h"
#include "aggregator/cm_writer.h"

namespace ashiato {
namespace {

class BenchClock : public Clock {
 public:
  SystemTime Now() const override { return now; }
  SystemTime now = *ParseRfc3339("2026-11-24T03:05:00Z");
};

// Forwards to a FakeConfigMapApi that outlives the writers.
class View : public ConfigMapApi {
 public:
  explicit View(FakeConfigMapApi* f) : f_(f) {}
  Result<nlohmann::json> Get(const std::string& ns, const std::string& n) override {
    return f_->Get(ns, n);
  }
  Result<nlohmann::json> List(const std::string& ns, const std::string& s) override {
    return f_->List(ns, s);
  }
  Result<nlohmann::json> Create(const std::string& ns, const nlohmann::json& cm) override {
    return f_->Create(ns, cm);
  }
  Result<nlohmann::json> Update(const std::string& ns, const nlohmann::json& cm) override {
    return f_->Update(ns, cm);
  }
  Status Delete(const std::string& ns, const std::string& n) override { return f_->Delete(ns, n); }

 private:
  FakeConfigMapApi* f_;
};

void Print(const std::string& name, double value, const char* unit) {
  std::printf("configmaps.%s %.6g %s\n", name.c_str(), value, unit);
  std::fflush(stdout);
}

std::string Ns(int i) { return "team-" + std::to_string(i % 300); }
// generateName's suffix: 5 of "bcdfghjklmnpqrstvwxz2456789" (unique per i).
std::string Suffix(int i) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (int d = 0; d < 5; ++d, i /= 27) out += kAlphabet[i % 27];
  return out;
}
// Pods as a cluster names them: 1 in 20 a StatefulSet pod ("db-12-1"), the
// rest ReplicaSet pods ("app-12-5d8f7c9b4-x7kqz").
bool IsStatefulSetPod(int i) { return i % 20 == 0; }
std::string Pod(int i) {
  if (IsStatefulSetPod(i)) return "db-" + std::to_string(i / 60) + "-" + std::to_string(i / 20 % 3);
  return "app-" + std::to_string(i / 30) + "-5d8f7c9b4-" + Suffix(i);
}
// The StatefulSet pod nearest below pod i.
int StatefulSetPod(int i) { return i / 20 * 20; }
std::string Node(int i, int nodes) {
  return "ip-10-" + std::to_string((i % nodes) / 250) + "-" + std::to_string((i % nodes) % 250) +
         ".ec2.internal";
}

// Flushes and reports requests, bytes and time of that flush under `phase`.
bool Flush(HourlyConfigMapWriter& w, FakeConfigMapApi& api, const std::string& phase) {
  api.ResetCounters();
  auto start = std::chrono::steady_clock::now();
  Status s = w.FlushNow();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!s.ok()) {
    std::fprintf(stderr, "%s: flush failed: %s\n", phase.c_str(), s.ToString().c_str());
    return false;
  }
  auto c = api.counters();
  Print(phase + ".requests", c.requests(), "requests");
  Print(phase + ".bytes_sent_to_apiserver", static_cast<double>(c.bytes_received), "bytes");
  Print(phase + ".bytes_read_from_apiserver", static_cast<double>(c.bytes_sent), "bytes");
  Print(phase + ".shards_written", static_cast<double>(w.stats().last_flush_shards_written),
        "shards");
  Print(phase + ".seconds", secs, "s");
  return true;
}

int Main(int argc, char** argv) {
  int pods = 150000, nodes = 5000, changes = 200, moves = 20;
  double hour_rate = 20;  // Changes/s for the hour of churn (0 = skip it).
  int flush_seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--pods")
      pods = std::atoi(argv[i + 1]);
    else if (a == "--nodes")
      nodes = std::atoi(argv[i + 1]);
    else if (a == "--changes")
      changes = std::atoi(argv[i + 1]);
    else if (a == "--moves")
      moves = std::atoi(argv[i + 1]);
    else if (a == "--hour-rate")
      hour_rate = std::atof(argv[i + 1]);
    else if (a == "--flush-seconds")
      flush_seconds = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr,
                   "usage: cm_bench [--pods N] [--nodes N] [--changes N] [--moves N] "
                   "[--hour-rate R] [--flush-seconds S]\n");
      return 2;
    }
  }
  if (pods < 1 || nodes < 1) return 2;
  FakeConfigMapApi api;
  BenchClock clock;
  ConfigMapWriterOptions options;
  options.namespace_ = "ashiato";
  options.retention = std::chrono::hours(0);
  options.debounce = std::chrono::hours(1);  // Only the flushes below write.
  auto w = std::make_unique<HourlyConfigMapWriter>(options, std::make_unique<View>(&api), &clock);
  if (!w->Start().ok()) return 1;
  std::vector<std::string> where(pods);  // Where each pod runs now.
  for (int i = 0; i < pods; ++i) {
    where[i] = Node(i, nodes);
    w->PodSeen(Ns(i), Pod(i), where[i], clock.now);
  }
  Print("pods", pods, "pods");
  Print("nodes", nodes, "nodes");

  // 1. First flush of the hour: every shard is created.
  if (!Flush(*w, api, "initial_flush")) return 1;
  auto st = w->stats();
  Print("shards", st.shards, "shards");
  size_t max_object = 0, max_data = 0;
  std::set<std::string> keys;
  for (auto& [name, cm] : api.Objects("ashiato")) {
    max_object = std::max(max_object, cm.dump().size());
    size_t data = 0;
    for (auto& [k, v] : cm["data"].items()) {
      data += k.size() + v.get<std::string>().size();
      keys.insert(k);
    }
    max_data = std::max(max_data, data);
  }
  Print("max_shard_object_bytes", static_cast<double>(max_object), "bytes");
  Print("max_shard_data_bytes", static_cast<double>(max_data), "bytes");
  Print("shard_data_limit_bytes", static_cast<double>(FakeConfigMapApi::kMaxDataBytes), "bytes");
  Print("union_equals_pod_set", keys.size() == static_cast<size_t>(pods) ? 1 : 0, "bool");

  // 2. A steady-state debounce interval (20 changes/s for 10 s): `changes`
  //    new pods, then `moves` StatefulSet pods that moved to another node.
  for (int c = 0; c < changes; ++c) {
    int i = c * 7919 % pods;
    w->PodSeen(Ns(i), "new-" + std::to_string(c), Node(i, nodes), clock.now);
  }
  if (!Flush(*w, api, "steady_new_pods_flush")) return 1;
  for (int c = 0; c < moves; ++c) {
    int i = StatefulSetPod(c * 7919 % pods);
    where[i] = Node(i + 1, nodes);
    w->PodSeen(Ns(i), Pod(i), where[i], clock.now);
  }
  if (!Flush(*w, api, "steady_moves_flush")) return 1;

  // 3. Nothing changed: no request.
  if (!Flush(*w, api, "idle_flush")) return 1;

  // 4. Hour boundary: every running pod is carried into a new hour.
  clock.now = *ParseRfc3339("2026-11-24T04:00:01Z");
  if (!Flush(*w, api, "hour_rollover_flush")) return 1;

  // 5. Restart: a new writer reads the current hour back.
  w->Stop();
  w.reset();
  api.ResetCounters();
  auto w2 = std::make_unique<HourlyConfigMapWriter>(options, std::make_unique<View>(&api), &clock);
  auto start = std::chrono::steady_clock::now();
  if (!w2->Start().ok()) return 1;
  auto c = api.counters();
  Print("restart_load.requests", c.requests(), "requests");
  Print("restart_load.bytes_read_from_apiserver", static_cast<double>(c.bytes_sent), "bytes");
  Print("restart_load.seconds",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), "s");
  // The aggregator reports the running pods again (agents' snapshots): no change.
  for (int i = 0; i < pods; ++i) w2->PodSeen(Ns(i), Pod(i), where[i], clock.now);
  where[1] = "after-restart";
  w2->PodSeen(Ns(1), Pod(1), where[1], clock.now);
  if (!Flush(*w2, api, "after_restart_flush")) return 1;

  // 6. Write amplification over one hour (issue 15 part 6): `hour_rate`
  //    changes/s flushed every `flush_seconds` (the default --cm-debounce):
  //    45 % creates of ReplicaSet pods with new names, 45 % deletes of running
  //    ReplicaSet pods (the hour keeps them: no new data), 10 % StatefulSet
  //    pods moving node (gone from one node, back on another). The hour
  //    starts with the rollover that carries every running pod in.
  //    "Changed data" counts key + new node of each create and move: what a
  //    writer that sent only changes would send. The rollover's data (every
  //    running pod, key + node) is new to the API server too: counted apart.
  if (hour_rate > 0) {
    clock.now = *ParseRfc3339("2026-11-24T05:00:00Z");
    double carried_bytes = 0;
    for (int i = 0; i < pods; ++i) {
      carried_bytes += static_cast<double>(Ns(i).size() + 1 + Pod(i).size() + where[i].size());
    }
    api.ResetCounters();
    if (!w2->FlushNow().ok()) return 1;
    double rollover_bytes = static_cast<double>(api.counters().bytes_received);
    double steady_bytes = 0, changed_bytes = 0, largest_write = 0;
    double requests = api.counters().requests();
    double shards_written = static_cast<double>(w2->stats().last_flush_shards_written);
    int flushes = 3600 / flush_seconds;
    int per_flush = static_cast<int>(hour_rate * flush_seconds);
    int next_new = 0, next_gone = 1;
    auto t0 = std::chrono::steady_clock::now();
    const SystemTime hour_start = clock.now;
    for (int f = 0; f < flushes; ++f) {
      // 05:00:05, 05:00:15, ... 05:59:55: every flush inside the hour (the
      // next rollover is not part of this hour's cost).
      clock.now = hour_start + std::chrono::seconds(f * flush_seconds + flush_seconds / 2);
      for (int c = 0; c < per_flush; ++c) {
        int kind = (f * per_flush + c) % 20;  // 0..1: move, 2..10: create, 11..19: delete.
        if (kind < 2) {
          int i = StatefulSetPod((f * per_flush + c) * 7919 % pods);
          std::string node = Node(i + 1 + f, nodes);
          w2->PodGone(Ns(i), Pod(i), where[i], clock.now);
          w2->PodSeen(Ns(i), Pod(i), node, clock.now);
          if (node != where[i]) {
            changed_bytes += static_cast<double>(Ns(i).size() + 1 + Pod(i).size() + node.size());
          }
          where[i] = node;
        } else if (kind <= 10) {
          int i = next_new++;
          std::string name =
              "web-" + std::to_string(i % 500) + "-7f9c6d5b8-" + Suffix(pods + 1000000 + i);
          w2->PodSeen(Ns(i), name, Node(i, nodes), clock.now);
          changed_bytes +=
              static_cast<double>(Ns(i).size() + 1 + name.size() + Node(i, nodes).size());
        } else {
          if (IsStatefulSetPod(next_gone)) ++next_gone;
          int i = next_gone++ % pods;
          w2->PodGone(Ns(i), Pod(i), where[i], clock.now);
        }
      }
      api.ResetCounters();
      if (!w2->FlushNow().ok()) return 1;
      steady_bytes += static_cast<double>(api.counters().bytes_received);
      requests += api.counters().requests();
      shards_written += static_cast<double>(w2->stats().last_flush_shards_written);
      largest_write = std::max(largest_write, static_cast<double>(w2->stats().last_flush_bytes));
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Print("hour.changes_per_second", hour_rate, "changes/s");
    Print("hour.flushes", flushes, "flushes");
    double bytes = rollover_bytes + steady_bytes;
    Print("hour.bytes_sent_to_apiserver", bytes, "bytes");
    Print("hour.rollover_bytes", rollover_bytes, "bytes");
    Print("hour.in_hour_bytes", steady_bytes, "bytes");
    Print("hour.largest_flush_bytes", largest_write, "bytes");
    Print("hour.requests", requests, "requests");
    Print("hour.shards_written", shards_written, "shards");
    Print("hour.shards_at_end", w2->stats().shards, "shards");
    Print("hour.carried_data_bytes", carried_bytes, "bytes");
    Print("hour.changed_data_bytes", changed_bytes, "bytes");
    // In-hour: what the churn costs beyond the rollover (the target).
    Print("hour.amplification_in_hour", changed_bytes > 0 ? steady_bytes / changed_bytes : 0, "x");
    // Whole hour: all bytes over all data new to the API server this hour.
    Print("hour.amplification_whole_hour", bytes / (carried_bytes + changed_bytes), "x");
    Print("hour.bench_seconds", secs, "s");
  }
  w2->Stop();
  return 0;
}

}  // namespace
}  // namespace ashiato

int main(int argc, char** argv) { return ashiato::Main(argc, argv); }
