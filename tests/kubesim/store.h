// Store: every object kubesim holds, one global resourceVersion (as etcd
// gives), a bounded history of changes for watch resumption, and the open
// watches with their fan-out.
//
// Thread-safe: one mutex guards everything, and watch events are written to
// the watchers' streams under it, so a watcher sees events in RV order and a
// bookmark never overtakes an event. ResponseStream::Write never blocks.
#pragma once

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/base64.h"
#include "common/http_server.h"
#include "tests/kubesim/resources.h"
#include "tests/kubesim/selectors.h"

namespace kubesim {

using ashiato::Base64Decode;
using ashiato::Base64Encode;

using SteadyTime = std::chrono::steady_clock::time_point;

struct StoreOptions {
  // Changes kept for resuming watches; a watch from an older RV gets 410.
  size_t history_size = 100000;
  // Interval between BOOKMARK events on watches that allow them.
  std::chrono::milliseconds bookmark_interval{1000};
  // Seed for generated names and UIDs.
  uint64_t seed = 1;
};

struct ListOptions {
  std::string ns;  // "" = all namespaces (or cluster-scoped).
  LabelSelector labels;
  FieldSelector fields;
  int64_t limit = 0;  // 0 = no limit.
  std::string continue_token;
};

struct ListResult {
  std::vector<ObjectPtr> items;
  uint64_t rv = 0;
  std::string continue_token;
  int64_t remaining = -1;  // remainingItemCount when known (no selectors), else -1.
  // Objects a read of etcd's key range visits for this list: the API server
  // filters selectors after reading, so a field-selected list from etcd
  // reads every object of the range (kubesim's node index does not).
  uint64_t range_read = 0;
};

enum class TableMode { kNone, kPartialMetadata, kObject, kNoObject };

struct WatchOptions {
  std::string ns;
  LabelSelector labels;
  FieldSelector fields;
  // Events after this RV from history; nullopt: ADDED for the current state, then live.
  std::optional<uint64_t> from_rv;
  bool bookmarks = false;
  SteadyTime deadline = SteadyTime::max();
  // Encode objects as meta.k8s.io/v1 Tables (kubectl get --watch).
  TableMode table = TableMode::kNone;
};

struct WatchCounters {
  uint64_t events = 0;
  uint64_t bytes = 0;
};

class Store {
 public:
  explicit Store(StoreOptions options);

  uint64_t current_rv();
  // The oldest RV a watch can resume from.
  uint64_t oldest_rv();

  ApiOr<ObjectPtr> Get(Kind k, const std::string& ns, const std::string& name);
  ApiOr<ListResult> List(Kind k, const ListOptions& options);
  // `obj` is the full object; for namespaced kinds metadata.namespace is set.
  // Sets uid, creationTimestamp, resourceVersion; honours generateName.
  ApiOr<ObjectPtr> Create(Kind k, nlohmann::json obj);

  // Reads the current object as JSON, lets `mutate` change it (or fail), and
  // writes the result. Identity (name, namespace, uid, creationTimestamp) is
  // kept. A change that leaves the object equal writes nothing and emits no
  // event, as the real server does.
  using Mutator = std::function<std::optional<ApiError>(nlohmann::json& obj)>;
  ApiOr<ObjectPtr> Update(Kind k, const std::string& ns, const std::string& name,
                          const Mutator& mutate);
  // Removes the object now (DELETED to watchers). Preconditions are optional.
  // Deleting a namespace removes everything in it first.
  ApiOr<ObjectPtr> Delete(Kind k, const std::string& ns, const std::string& name,
                          const std::string& precondition_uid = "",
                          const std::string& precondition_rv = "");

  // Opens a watch writing to `stream`. A too-old RV yields an ERROR event
  // (410 Expired) and a closed stream, as the real server does; an RV from
  // the future yields an error before the stream starts.
  std::optional<ApiError> Watch(Kind k, WatchOptions options,
                                std::shared_ptr<ashiato::ResponseStream> stream);

  // Periodic work: closes timed-out watches, sends bookmarks, drops dead watchers.
  void Tick(SteadyTime now);
  // Closes every open watch (a fault, or shutdown).
  void DropWatches();
  // Forgets history: watches from any RV before now get 410.
  void Compact();

  size_t open_watches();
  size_t count(Kind k);
  std::array<WatchCounters, kKindCount> watch_counters();
  // All pods (for churn); cheap copy of pointers.
  std::vector<ObjectPtr> Snapshot(Kind k);

  // State file: every object and the RV counter.
  nlohmann::json Dump();
  void Load(const nlohmann::json& state);

  // A random lowercase suffix as generateName uses ("x2kqp").
  std::string RandomSuffix(size_t n = 5);
  std::string NewUid();

 private:
  struct Watcher {
    Kind kind;
    WatchOptions opts;
    std::shared_ptr<ashiato::ResponseStream> stream;
    std::string bucket;
    SteadyTime next_bookmark;
    bool dead = false;
  };
  enum class EventType { kAdded, kModified, kDeleted };
  struct Event {
    uint64_t rv;
    Kind kind;
    EventType type;
    ObjectPtr obj;   // New state (for DELETED: the last state with the deletion RV).
    ObjectPtr prev;  // Previous state, null for ADDED.
  };
  struct KindState {
    std::map<std::string, ObjectPtr> objects;  // "ns/name" or "name".
    std::unordered_map<std::string, std::vector<std::shared_ptr<Watcher>>> watchers;
  };

  static std::string Key(Kind k, const std::string& ns, const std::string& name);
  bool WatcherMatches(const Watcher& w, const Object& o) const;
  void Emit(EventType type, ObjectPtr obj, ObjectPtr prev);
  // Sends one event to one watcher. `line` caches the natural line.
  void Deliver(Watcher& w, const Event& ev, std::string* natural_line);
  void Write(Watcher& w, const std::string& line);
  void Index(const ObjectPtr& o, bool add);
  ApiOr<ObjectPtr> DeleteLocked(Kind k, const std::string& key);
  std::string BookmarkLine(Kind k);

  StoreOptions options_;
  std::mutex mu_;
  std::array<KindState, kKindCount> kinds_;
  std::unordered_map<std::string, std::set<std::string>> pods_by_node_;
  std::deque<Event> history_;
  uint64_t rv_ = 0;
  uint64_t history_start_rv_ = 0;  // Every event with rv > this is in history_.
  std::array<WatchCounters, kKindCount> counters_{};
  uint64_t rng_;
};

// Helpers shared with the server.
std::string EventLine(const char* type, const std::string& object_json);

}  // namespace kubesim
