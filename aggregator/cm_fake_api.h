// An in-memory ConfigMapApi for tests and cm_bench: resourceVersions, 409 on
// a stale update, AlreadyExists, the API server's 1 MiB data limit, label
// selectors (=, ==, !=, in, notin, exists, !exists), request/byte counters,
// and a hook that runs before each call to simulate a concurrent writer.
// Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "aggregator/cm_api.h"

namespace ashiato {

// True iff `labels` (a JSON object of strings, or null) matches `selector`.
// InvalidArgument for a selector it cannot parse.
Result<bool> MatchLabelSelector(const std::string& selector, const nlohmann::json& labels);

class FakeConfigMapApi : public ConfigMapApi {
 public:
  // The API server's limit on the sum of key and value bytes of data.
  static constexpr size_t kMaxDataBytes = 1024 * 1024;

  struct Counters {
    int gets = 0, lists = 0, creates = 0, updates = 0, deletes = 0;
    int conflicts = 0;          // 409s answered (stale update or existing name).
    size_t bytes_received = 0;  // Request bodies (serialized JSON).
    size_t bytes_sent = 0;      // Response bodies.
    int requests() const { return gets + lists + creates + updates + deletes; }
  };

  Result<nlohmann::json> Get(const std::string& ns, const std::string& name) override;
  Result<nlohmann::json> List(const std::string& ns, const std::string& label_selector) override;
  Result<nlohmann::json> Create(const std::string& ns, const nlohmann::json& cm) override;
  Result<nlohmann::json> Update(const std::string& ns, const nlohmann::json& cm) override;
  Status Delete(const std::string& ns, const std::string& name) override;

  // Runs (without the lock held) before each call with the verb ("get",
  // "list", "create", "update", "delete") and object name; may call this
  // API itself (e.g. to update the same object, making the caller's
  // resourceVersion stale). A non-OK return fails the call with it.
  void SetHook(std::function<Status(const std::string& verb, const std::string& name)> hook);

  Counters counters() const;
  void ResetCounters();
  // Direct access for assertions.
  std::map<std::string, nlohmann::json> Objects(const std::string& ns) const;
  // Stores an object as-is (assigns a resourceVersion), bypassing checks.
  void Put(const std::string& ns, nlohmann::json cm);

 private:
  Status RunHook(const std::string& verb, const std::string& name);
  static std::string Key(const std::string& ns, const std::string& name) { return ns + "/" + name; }
  nlohmann::json Stamp(nlohmann::json cm, const std::string& ns);

  mutable std::mutex mu_;
  std::map<std::string, nlohmann::json> objects_;  // "ns/name" -> object
  uint64_t rv_ = 1000;
  Counters counters_;
  std::function<Status(const std::string&, const std::string&)> hook_;
};

}  // namespace ashiato
