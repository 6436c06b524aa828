// FakePodApi: an in-memory API server for reflector and agent tests. Keeps
// pods, a global resourceVersion and the event history; watches stream from
// that history like the real server, and faults are scripted.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent/pod_api.h"

namespace ashiato {

class FakePodApi : public PodApi {
 public:
  // A pod JSON as the API server returns it (uid = "uid-" + name).
  static nlohmann::json MakePod(const std::string& ns, const std::string& name,
                                const std::string& node, const std::string& ip = "10.0.0.1");

  // --- Cluster mutations (each bumps the resourceVersion). ---
  void Create(nlohmann::json pod);
  // Applies `mutate` to the pod with this name.
  void Modify(const std::string& name, const std::function<void(nlohmann::json&)>& mutate);
  void Delete(const std::string& name);

  // --- Faults ---
  // History before now is forgotten: watches from an older RV get 410.
  void Compact();
  // 410 on compaction as an ERROR event (as the real server does) or as HTTP 410.
  void set_expired_as_event(bool v);
  // Ends every open watch cleanly.
  void DropWatches();
  // Lists at a resourceVersion other than "" and "0" fail with this HTTP
  // status (0, the default: served like the watch cache does, at the current
  // state). 410 models an RV the server no longer has, 504 a watch cache
  // behind that RV ("Too large resource version").
  void set_list_at_rv_status(int http_status);
  // The next `n` calls (lists and watches) fail with this HTTP status.
  void FailNext(int n, int http_status, int retry_after_seconds = 0);

  // --- Observations ---
  std::vector<std::string> Queries();
  int ListCount();
  int WatchCount();
  int OpenWatches();

  Result<nlohmann::json> Get(const std::string& path_and_query) override;
  Status Watch(const std::string& path_and_query,
               const std::function<bool(const nlohmann::json& event)>& on_event,
               std::chrono::milliseconds timeout) override;
  void Cancel() override;
  void Reset() override;

 private:
  struct Event {
    long long rv;
    std::string type;
    nlohmann::json object;
  };
  void AppendLocked(const std::string& type, nlohmann::json object);
  // Returns a failure if one is scripted. Requires mu_.
  std::optional<Status> TakeFailureLocked();
  bool Selected(const nlohmann::json& pod, const std::string& query) const;

  std::mutex mu_;
  std::condition_variable cv_;
  long long rv_ = 100;
  long long compacted_rv_ = 0;
  std::map<std::string, nlohmann::json> pods_;  // By name.
  std::vector<Event> history_;
  std::vector<std::string> queries_;
  int lists_ = 0, watches_ = 0, open_watches_ = 0;
  long long drop_generation_ = 0;
  bool cancelled_ = false;
  bool expired_as_event_ = true;
  int fail_n_ = 0, fail_status_ = 0, fail_retry_after_ = 0;
  int list_at_rv_status_ = 0;
};

}  // namespace ashiato
