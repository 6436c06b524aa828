// API server cost of three ways to follow every pod's node, measured from
// the client side against kubesim (or any API server) over a window and
// scaled to one hour:
//   ashiato  : one field-selected list (resourceVersion=0) + watch per node,
//              exactly the requests ashiato-agent makes;
//   informer : one cluster-wide list + watch per node (a naive per-node
//              informer); measured with `--informer-sample` real watchers and
//              scaled to the node count;
//   poller   : the old tool, one per node (a DaemonSet): a full pod list
//              every 30 s from every node.
// With --stats (kubesim), each phase is cross-checked against the bytes and
// requests kubesim itself counts (GET /kubesim/v1/stats).
// Prints one "name value unit" line per figure.
#include <curl/curl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  size_t bytes = 0;
  std::string body;  // Kept only for lists (to read the resourceVersion).
  bool keep_body = false;
};

size_t OnData(char* data, size_t size, size_t n, void* cls) {
  auto* t = static_cast<Transfer*>(cls);
  t->bytes += size * n;
  if (t->keep_body) t->body.append(data, size * n);
  return size * n;
}

struct Options {
  std::string server;
  std::string token;
  int nodes = 5000;
  int window_seconds = 60;
  int informer_sample = 20;
  int poll_interval_seconds = 30;
  bool stats = false;
};

// Server-side counters from kubesim's GET /kubesim/v1/stats.
struct ServerStats {
  double requests = 0, bytes = 0, watch_bytes = 0, watch_events = 0;
};

Transfer* NewTransfer(const Options& o, const std::string& path, bool keep_body, long timeout_s) {
  auto* t = new Transfer();
  t->easy = curl_easy_init();
  t->keep_body = keep_body;
  std::string url = o.server + path;
  curl_easy_setopt(t->easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, &OnData);
  curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(t->easy, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(t->easy, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
  if (timeout_s > 0) curl_easy_setopt(t->easy, CURLOPT_TIMEOUT, timeout_s);
  t->headers = curl_slist_append(nullptr, ("Authorization: Bearer " + o.token).c_str());
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
  return t;
}

void Free(Transfer* t) {
  curl_easy_cleanup(t->easy);
  curl_slist_free_all(t->headers);
  delete t;
}

// Runs every transfer to completion (or until `deadline`), `parallel` at a time.
void RunAll(std::vector<Transfer*>& transfers, size_t parallel,
            std::chrono::steady_clock::time_point deadline) {
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(parallel));
  size_t next = 0, active = 0;
  auto add_more = [&] {
    while (next < transfers.size() && active < parallel) {
      curl_multi_add_handle(multi, transfers[next++]->easy);
      ++active;
    }
  };
  add_more();
  int running = 0;
  do {
    curl_multi_perform(multi, &running);
    int msgs = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &msgs)) {
      if (m->msg == CURLMSG_DONE) {
        curl_multi_remove_handle(multi, m->easy_handle);
        --active;
      }
    }
    add_more();
    if (std::chrono::steady_clock::now() > deadline) break;
    curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  } while (running > 0 || next < transfers.size());
  for (auto* t : transfers) curl_multi_remove_handle(multi, t->easy);
  curl_multi_cleanup(multi);
}

std::string ListResourceVersion(const std::string& body) {
  auto pos = body.find("\"resourceVersion\":\"");
  if (pos == std::string::npos) return "0";
  pos += 19;
  return body.substr(pos, body.find('"', pos) - pos);
}

void Print(const std::string& name, double value, const char* unit) {
  std::printf("%s %.6g %s\n", name.c_str(), value, unit);
  std::fflush(stdout);
}

ServerStats FetchStats(const Options& o) {
  std::vector<Transfer*> t{NewTransfer(o, "/kubesim/v1/stats", true, 30)};
  RunAll(t, 1, std::chrono::steady_clock::now() + std::chrono::seconds(30));
  auto j = nlohmann::json::parse(t[0]->body, nullptr, false);
  Free(t[0]);
  ServerStats s;
  if (!j.is_object()) return s;
  s.requests = j.value("requests_total", 0.0);
  s.bytes = j.value("response_bytes_total", 0.0);
  s.watch_bytes = j.value("watch_bytes_sent", 0.0);
  s.watch_events = j.value("watch_events_sent", 0.0);
  return s;
}

// Prints what kubesim counted between `a` and `b` next to the client's view.
void PrintServerDelta(const Options& o, const std::string& prefix, const ServerStats& a,
                      const ServerStats& b) {
  if (!o.stats) return;
  Print(prefix + ".server_requests", b.requests - a.requests, "requests");
  Print(prefix + ".server_bytes", b.bytes - a.bytes, "bytes");
  Print(prefix + ".server_watch_events", b.watch_events - a.watch_events, "events");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"API server cost: ashiato agents vs informers vs the old poller"};
  app.add_option("--server", o.server, "API server URL")->required();
  app.add_option("--token", o.token, "bearer token")->required();
  app.add_option("--nodes", o.nodes, "nodes in the cluster (node-1..node-N)");
  app.add_option("--window-seconds", o.window_seconds, "measurement window");
  app.add_option("--informer-sample", o.informer_sample, "cluster-wide watchers actually opened");
  app.add_option("--poll-interval-seconds", o.poll_interval_seconds, "old poller's list interval");
  app.add_flag("--stats", o.stats, "cross-check with kubesim's GET /kubesim/v1/stats");
  CLI11_PARSE(app, argc, argv);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const double per_hour = 3600.0 / o.window_seconds;
  auto far = std::chrono::steady_clock::now() + std::chrono::hours(1);

  // --- ashiato: per-node list + watch.
  std::vector<Transfer*> lists;
  for (int i = 1; i <= o.nodes; ++i) {
    lists.push_back(NewTransfer(o,
                                "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-" +
                                    std::to_string(i) + "&resourceVersion=0",
                                true, 120));
  }
  ServerStats s0 = o.stats ? FetchStats(o) : ServerStats{};
  auto t0 = std::chrono::steady_clock::now();
  RunAll(lists, 64, far);
  ServerStats s1 = o.stats ? FetchStats(o) : ServerStats{};
  double list_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  size_t list_bytes = 0;
  std::vector<Transfer*> watches;
  for (int i = 0; i < o.nodes; ++i) {
    list_bytes += lists[i]->bytes;
    watches.push_back(NewTransfer(
        o,
        "/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=3600&fieldSelector=" +
            std::string("spec.nodeName%3Dnode-") + std::to_string(i + 1) +
            "&resourceVersion=" + ListResourceVersion(lists[i]->body),
        false, 0));
  }
  for (auto* t : lists) Free(t);
  RunAll(watches, static_cast<size_t>(o.nodes) + 16,
         std::chrono::steady_clock::now() + std::chrono::seconds(o.window_seconds));
  ServerStats s2 = o.stats ? FetchStats(o) : ServerStats{};
  size_t watch_bytes = 0;
  for (auto* t : watches) {
    watch_bytes += t->bytes;
    Free(t);
  }
  Print("api_cost.ashiato.initial_list_requests", o.nodes, "requests");
  Print("api_cost.ashiato.initial_list_bytes", static_cast<double>(list_bytes), "bytes");
  Print("api_cost.ashiato.initial_list_seconds", list_secs, "s");
  Print("api_cost.ashiato.open_watches", o.nodes, "watches");
  PrintServerDelta(o, "api_cost.ashiato.initial_list", s0, s1);
  Print("api_cost.ashiato.watch_window_bytes", static_cast<double>(watch_bytes), "bytes");
  PrintServerDelta(o, "api_cost.ashiato.watch_window", s1, s2);
  Print("api_cost.ashiato.watch_bytes_per_hour", watch_bytes * per_hour, "bytes");
  // A watch is re-opened about every timeoutSeconds (300-600 s, mean 450 s).
  Print("api_cost.ashiato.requests_per_hour", o.nodes * 3600.0 / 450.0, "requests");

  // --- informer per node: a cluster-wide list + watch each, sampled.
  std::vector<Transfer*> full{NewTransfer(o, "/api/v1/pods?resourceVersion=0", true, 300)};
  ServerStats s3 = o.stats ? FetchStats(o) : ServerStats{};
  auto t1 = std::chrono::steady_clock::now();
  RunAll(full, 1, far);
  double full_list_secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  ServerStats s4 = o.stats ? FetchStats(o) : ServerStats{};
  size_t full_list_bytes = full[0]->bytes;
  std::string rv = ListResourceVersion(full[0]->body);
  Free(full[0]);
  std::vector<Transfer*> wide;
  for (int i = 0; i < o.informer_sample; ++i) {
    wide.push_back(NewTransfer(
        o,
        "/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=3600&resourceVersion=" + rv,
        false, 0));
  }
  RunAll(wide, wide.size() + 1,
         std::chrono::steady_clock::now() + std::chrono::seconds(o.window_seconds));
  ServerStats s5 = o.stats ? FetchStats(o) : ServerStats{};
  size_t wide_bytes = 0;
  for (auto* t : wide) {
    wide_bytes += t->bytes;
    Free(t);
  }
  double wide_per_watch = static_cast<double>(wide_bytes) / std::max(1, o.informer_sample);
  Print("api_cost.full_list_bytes", static_cast<double>(full_list_bytes), "bytes");
  Print("api_cost.full_list_seconds", full_list_secs, "s");
  PrintServerDelta(o, "api_cost.full_list", s3, s4);
  Print("api_cost.informer.sample_watch_window_bytes", static_cast<double>(wide_bytes), "bytes");
  PrintServerDelta(o, "api_cost.informer.sample_watch_window", s4, s5);
  double informer_hour = wide_per_watch * o.nodes * per_hour;
  Print("api_cost.informer.initial_list_bytes", static_cast<double>(full_list_bytes) * o.nodes,
        "bytes");
  Print("api_cost.informer.watch_bytes_per_hour", informer_hour, "bytes");
  // Re-watch every ~450 s, like the agent.
  double watch_requests_hour = o.nodes * 3600.0 / 450.0;
  Print("api_cost.informer.requests_per_hour", watch_requests_hour, "requests");

  // --- the old poller, one per node: a full list every interval from each.
  double polls = o.nodes * 3600.0 / o.poll_interval_seconds;
  double poller_hour = polls * static_cast<double>(full_list_bytes);
  Print("api_cost.poller.requests_per_hour", polls, "requests");
  Print("api_cost.poller.bytes_per_hour", poller_hour, "bytes");
  Print("api_cost.poller.list_seconds_per_hour", polls * full_list_secs, "s");

  double ashiato_hour = static_cast<double>(watch_bytes) * per_hour;
  Print("api_cost.ratio.poller_over_ashiato_bytes_per_hour",
        poller_hour / std::max(1.0, ashiato_hour), "x");
  Print("api_cost.ratio.informer_over_ashiato_bytes_per_hour",
        informer_hour / std::max(1.0, ashiato_hour), "x");
  Print("api_cost.ratio.poller_over_ashiato_requests_per_hour", polls / watch_requests_hour, "x");
  Print("api_cost.ratio.informer_over_ashiato_initial_list_bytes",
        static_cast<double>(full_list_bytes) * o.nodes / std::max<double>(1.0, list_bytes), "x");
  curl_global_cleanup();
  return 0;
}
