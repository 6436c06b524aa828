#include "tests/kubesim/store.h"

#include <algorithm>

#include "common/time_util.h"
#include "tests/kubesim/tables.h"

namespace kubesim {
namespace {

const char* TypeName(int t) {
  static const char* kNames[] = {"ADDED", "MODIFIED", "DELETED"};
  return kNames[t];
}

std::string WithRv(const Object& o, uint64_t rv) {
  auto j = nlohmann::json::parse(o.json);
  j["metadata"]["resourceVersion"] = std::to_string(rv);
  return j.dump();
}

}  // namespace

std::string EventLine(const char* type, const std::string& object_json) {
  std::string line;
  line.reserve(object_json.size() + 32);
  line += "{\"type\":\"";
  line += type;
  line += "\",\"object\":";
  line += object_json;
  line += "}\n";
  return line;
}

Store::Store(StoreOptions options)
    : options_(options), rng_(options.seed * 0x9E3779B97F4A7C15ull + 1) {}

std::string Store::RandomSuffix(size_t n) {
  // The alphabet generateName uses (no vowels, no confusable digits).
  static const char* kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    s.push_back(kAlphabet[rng_ % 27]);
  }
  return s;
}

std::string Store::NewUid() {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    if (i == 8 || i == 12 || i == 16 || i == 20) s.push_back('-');
    char c = kHex[(rng_ >> 11) & 15];
    if (i == 12) c = '4';                       // Version 4,
    if (i == 16) c = "89ab"[(rng_ >> 11) & 3];  // RFC 4122 variant.
    s.push_back(c);
  }
  return s;
}

std::string Store::Key(Kind k, const std::string& ns, const std::string& name) {
  return Info(k).namespaced ? ns + "/" + name : name;
}

uint64_t Store::current_rv() {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

uint64_t Store::oldest_rv() {
  std::lock_guard<std::mutex> lock(mu_);
  return history_start_rv_;
}

ApiOr<ObjectPtr> Store::Get(Kind k, const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& objs = kinds_[static_cast<int>(k)].objects;
  auto it = objs.find(Key(k, ns, name));
  if (it == objs.end()) return NotFoundError(k, name);
  return it->second;
}

ApiOr<ListResult> Store::List(Kind k, const ListOptions& o) {
  std::lock_guard<std::mutex> lock(mu_);
  ListResult result;
  result.rv = rv_;
  std::string start;
  if (!o.continue_token.empty()) {
    nlohmann::json tok =
        nlohmann::json::parse(Base64Decode(o.continue_token).value_or(""), nullptr, false);
    if (!tok.is_object() || !tok.contains("start") || !tok.contains("rv")) {
      return BadRequestError("continue key is not valid: illegal base64 data at input byte 0");
    }
    uint64_t tok_rv = tok["rv"].get<uint64_t>();
    if (tok_rv < history_start_rv_) {
      ApiError e = ExpiredError(
          "The provided continue parameter is too old to display a consistent list result. You "
          "can start a new list without the continue parameter, or use the continue token in "
          "this response to retrieve the remainder of the results. Continuing with the provided "
          "token results in an inconsistent list - objects that were created, modified, or "
          "deleted between the time the first chunk was returned and now may show up in the "
          "list.");
      return e;
    }
    start = tok["start"].get<std::string>();
    result.rv = tok_rv;
  }
  auto& ks = kinds_[static_cast<int>(k)];
  std::string prefix = o.ns.empty() ? "" : o.ns + "/";
  auto accept = [&](const ObjectPtr& obj) {
    return (o.ns.empty() || obj->ns == o.ns) && o.labels.Matches(obj->labels) &&
           o.fields.Matches(*obj);
  };
  std::string last_key;
  bool more = false;
  auto consider = [&](const std::string& key, const ObjectPtr& obj) -> bool {
    if (!accept(obj)) return true;
    if (o.limit > 0 && static_cast<int64_t>(result.items.size()) >= o.limit) {
      more = true;
      return false;
    }
    result.items.push_back(obj);
    last_key = key;
    return true;
  };
  auto node = k == Kind::kPod ? o.fields.Exact("spec.nodeName") : std::nullopt;
  if (node) {
    // Index: O(pods on that node).
    auto nit = pods_by_node_.find(*node);
    if (nit != pods_by_node_.end()) {
      for (auto it = nit->second.lower_bound(start); it != nit->second.end(); ++it) {
        auto oit = ks.objects.find(*it);
        if (oit != ks.objects.end() && !consider(*it, oit->second)) break;
      }
    }
  } else {
    auto it = ks.objects.lower_bound(std::max(start, prefix));
    for (; it != ks.objects.end(); ++it) {
      if (!prefix.empty() && it->first.compare(0, prefix.size(), prefix) != 0) break;
      if (!consider(it->first, it->second)) break;
    }
  }
  if (!more && start.empty() && prefix.empty()) {
    result.range_read = ks.objects.size();
  } else {
    auto from = ks.objects.lower_bound(std::max(start, prefix));
    auto to = more ? ks.objects.upper_bound(last_key) : ks.objects.end();
    for (auto it = from; it != to; ++it) {
      if (!prefix.empty() && it->first.compare(0, prefix.size(), prefix) != 0) break;
      ++result.range_read;
    }
  }
  if (more) {
    nlohmann::json tok = {
        {"v", "meta.k8s.io/v1"}, {"rv", result.rv}, {"start", last_key + std::string(1, '\0')}};
    result.continue_token = Base64Encode(tok.dump());
    if (o.labels.empty() && o.fields.empty()) {
      // Count what is left, as the real server reports remainingItemCount.
      int64_t remaining = 0;
      auto it = ks.objects.upper_bound(last_key);
      for (; it != ks.objects.end(); ++it) {
        if (!prefix.empty() && it->first.compare(0, prefix.size(), prefix) != 0) break;
        ++remaining;
      }
      result.remaining = remaining;
    }
  }
  return result;
}

ApiOr<ObjectPtr> Store::Create(Kind k, nlohmann::json obj) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& md = obj["metadata"];
  if (!md.is_object()) md = nlohmann::json::object();
  std::string ns = Info(k).namespaced ? md.value("namespace", "") : "";
  if (!Info(k).namespaced) md.erase("namespace");
  auto& ks = kinds_[static_cast<int>(k)];
  if (md.value("name", "").empty()) {
    std::string gen = md.value("generateName", "");
    if (gen.empty()) {
      return InvalidError(k, "",
                          {{{"reason", "FieldValueRequired"},
                            {"field", "metadata.name"},
                            {"message", "Required value: name or generateName is required"}}});
    }
    std::string name;
    do {
      name = gen + RandomSuffix();
    } while (ks.objects.count(Key(k, ns, name)));
    md["name"] = name;
  }
  std::string name = md["name"].get<std::string>();
  if (auto err = Validate(k, obj)) return *err;
  if (Info(k).namespaced) {
    auto& nss = kinds_[static_cast<int>(Kind::kNamespace)].objects;
    if (!nss.count(ns)) return NotFoundError(Kind::kNamespace, ns);
  }
  std::string key = Key(k, ns, name);
  if (ks.objects.count(key)) return AlreadyExistsError(k, name);
  obj["apiVersion"] = Info(k).api_version;
  obj["kind"] = Info(k).kind;
  md["uid"] = NewUid();
  md["creationTimestamp"] = ashiato::FormatRfc3339(std::chrono::system_clock::now());
  md["resourceVersion"] = std::to_string(++rv_);
  md.erase("deletionTimestamp");
  md.erase("deletionGracePeriodSeconds");
  ObjectPtr o = MakeObject(k, obj);
  ks.objects[key] = o;
  Index(o, true);
  Emit(EventType::kAdded, o, nullptr);
  return o;
}

ApiOr<ObjectPtr> Store::Update(Kind k, const std::string& ns, const std::string& name,
                               const Mutator& mutate) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& ks = kinds_[static_cast<int>(k)];
  std::string key = Key(k, ns, name);
  auto it = ks.objects.find(key);
  if (it == ks.objects.end()) return NotFoundError(k, name);
  ObjectPtr cur = it->second;
  nlohmann::json j = nlohmann::json::parse(cur->json);
  nlohmann::json old_md = j["metadata"];
  if (auto err = mutate(j)) return *err;
  if (!j.is_object()) return BadRequestError("the object is not a JSON object");
  auto& md = j["metadata"];
  if (!md.is_object()) md = nlohmann::json::object();
  for (const char* f : {"name", "uid", "creationTimestamp", "namespace", "deletionTimestamp",
                        "deletionGracePeriodSeconds"}) {
    if (old_md.contains(f)) {
      md[f] = old_md[f];
    } else if (std::string(f) != "deletionTimestamp" &&
               std::string(f) != "deletionGracePeriodSeconds") {
      md.erase(f);
    }
  }
  j["apiVersion"] = Info(k).api_version;
  j["kind"] = Info(k).kind;
  if (auto err = Validate(k, j)) return *err;
  md["resourceVersion"] = std::to_string(cur->rv);
  if (j.dump() == cur->json) return cur;  // No-op: no new RV, no event.
  md["resourceVersion"] = std::to_string(++rv_);
  ObjectPtr o = MakeObject(k, j);
  Index(cur, false);
  it->second = o;
  Index(o, true);
  Emit(EventType::kModified, o, cur);
  return o;
}

ApiOr<ObjectPtr> Store::Delete(Kind k, const std::string& ns, const std::string& name,
                               const std::string& precondition_uid,
                               const std::string& precondition_rv) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& ks = kinds_[static_cast<int>(k)];
  std::string key = Key(k, ns, name);
  auto it = ks.objects.find(key);
  if (it == ks.objects.end()) return NotFoundError(k, name);
  if (!precondition_uid.empty() && precondition_uid != it->second->uid) {
    return ApiError{409,
                    "Conflict",
                    "Operation cannot be fulfilled on " + std::string(Info(k).resource) + " \"" +
                        name + "\": Precondition failed: UID in precondition: " + precondition_uid +
                        ", UID in object meta: " + it->second->uid,
                    {{"name", name}, {"kind", Info(k).resource}}};
  }
  if (!precondition_rv.empty() && precondition_rv != std::to_string(it->second->rv)) {
    return ApiError{
        409,
        "Conflict",
        "Operation cannot be fulfilled on " + std::string(Info(k).resource) + " \"" + name +
            "\": Precondition failed: ResourceVersion in precondition: " + precondition_rv +
            ", ResourceVersion in object meta: " + std::to_string(it->second->rv),
        {{"name", name}, {"kind", Info(k).resource}}};
  }
  if (k == Kind::kNamespace) {
    for (int i = 0; i < kKindCount; ++i) {
      if (!Info(static_cast<Kind>(i)).namespaced) continue;
      auto& objs = kinds_[i].objects;
      std::string prefix = name + "/";
      std::vector<std::string> keys;
      for (auto oit = objs.lower_bound(prefix);
           oit != objs.end() && oit->first.compare(0, prefix.size(), prefix) == 0; ++oit) {
        keys.push_back(oit->first);
      }
      for (const auto& kk : keys) (void)DeleteLocked(static_cast<Kind>(i), kk);
    }
  }
  return DeleteLocked(k, key);
}

ApiOr<ObjectPtr> Store::DeleteLocked(Kind k, const std::string& key) {
  auto& ks = kinds_[static_cast<int>(k)];
  auto it = ks.objects.find(key);
  ObjectPtr cur = it->second;
  ObjectPtr gone = MakeObject(k, nlohmann::json::parse(WithRv(*cur, ++rv_)));
  Index(cur, false);
  ks.objects.erase(it);
  Emit(EventType::kDeleted, gone, cur);
  return gone;
}

void Store::Index(const ObjectPtr& o, bool add) {
  if (o->kind != Kind::kPod || o->node.empty()) return;
  std::string key = o->Key();
  if (add) {
    pods_by_node_[o->node].insert(key);
  } else {
    auto it = pods_by_node_.find(o->node);
    if (it != pods_by_node_.end()) {
      it->second.erase(key);
      if (it->second.empty()) pods_by_node_.erase(it);
    }
  }
}

bool Store::WatcherMatches(const Watcher& w, const Object& o) const {
  return (w.opts.ns.empty() || o.ns == w.opts.ns) && w.opts.labels.Matches(o.labels) &&
         w.opts.fields.Matches(o);
}

void Store::Write(Watcher& w, const std::string& line) {
  if (w.dead) return;
  auto& c = counters_[static_cast<int>(w.kind)];
  c.events++;
  c.bytes += line.size();
  if (!w.stream->Write(line)) w.dead = true;
}

void Store::Deliver(Watcher& w, const Event& ev, std::string* natural_line) {
  if (w.dead) return;
  bool cur_pass = ev.type != EventType::kDeleted && WatcherMatches(w, *ev.obj);
  bool old_pass = ev.prev && WatcherMatches(w, *ev.prev);
  if (!cur_pass && !old_pass) return;
  int type;
  const Object* obj = ev.obj.get();
  std::string transition_json;
  if (cur_pass && !old_pass) {
    type = 0;
  } else if (cur_pass && old_pass) {
    type = 1;
  } else {
    type = 2;
    if (ev.type != EventType::kDeleted) {
      // Left the selector: DELETED with the previous content at the event's RV.
      transition_json = WithRv(*ev.prev, ev.rv);
    }
  }
  if (w.opts.table != TableMode::kNone) {
    if (!transition_json.empty()) {
      ObjectPtr t = MakeObject(ev.kind, nlohmann::json::parse(transition_json));
      Write(w, TableEventLine(TypeName(type), *t, w.opts.table));
    } else {
      Write(w, TableEventLine(TypeName(type), *obj, w.opts.table));
    }
    return;
  }
  if (!transition_json.empty()) {
    Write(w, EventLine(TypeName(type), transition_json));
    return;
  }
  if (type == static_cast<int>(ev.type)) {
    if (natural_line->empty()) *natural_line = EventLine(TypeName(type), obj->json);
    Write(w, *natural_line);
  } else {
    Write(w, EventLine(TypeName(type), obj->json));
  }
}

void Store::Emit(EventType type, ObjectPtr obj, ObjectPtr prev) {
  history_.push_back({rv_, obj->kind, type, obj, prev});
  while (history_.size() > options_.history_size) {
    history_start_rv_ = history_.front().rv;
    history_.pop_front();
  }
  const Event& ev = history_.back();
  auto& ks = kinds_[static_cast<int>(obj->kind)];
  if (ks.watchers.empty()) return;
  std::string natural;
  std::vector<std::string> buckets = {""};
  if (obj->kind == Kind::kPod) {
    if (!obj->node.empty()) buckets.push_back(obj->node);
    if (prev && !prev->node.empty() && prev->node != obj->node) buckets.push_back(prev->node);
  }
  for (const auto& b : buckets) {
    auto it = ks.watchers.find(b);
    if (it == ks.watchers.end()) continue;
    for (auto& w : it->second) Deliver(*w, ev, &natural);
  }
}

std::optional<ApiError> Store::Watch(Kind k, WatchOptions options,
                                     std::shared_ptr<ashiato::ResponseStream> stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto w = std::make_shared<Watcher>();
  w->kind = k;
  w->opts = std::move(options);
  w->stream = std::move(stream);
  w->next_bookmark = std::chrono::steady_clock::now() + options_.bookmark_interval;
  if (k == Kind::kPod) {
    if (auto node = w->opts.fields.Exact("spec.nodeName")) w->bucket = *node;
  }
  auto& ks = kinds_[static_cast<int>(k)];
  if (w->opts.from_rv) {
    uint64_t from = *w->opts.from_rv;
    if (from > rv_) {
      ApiError e{
          504,
          "Timeout",
          "Timeout: Too large resource version: " + std::to_string(from) +
              ", current: " + std::to_string(rv_),
          {{"causes",
            {{{"reason", "ResourceVersionTooLarge"}, {"message", "Too large resource version"}}}},
           {"retryAfterSeconds", 1}}};
      return e;
    }
    if (from < history_start_rv_) {
      ApiError e = ExpiredError("too old resource version: " + std::to_string(from) + " (" +
                                std::to_string(history_start_rv_) + ")");
      w->stream->Write(EventLine("ERROR", e.ToString()));
      w->stream->Close();
      return std::nullopt;
    }
    auto it = std::upper_bound(history_.begin(), history_.end(), from,
                               [](uint64_t rv, const Event& e) { return rv < e.rv; });
    for (; it != history_.end(); ++it) {
      if (it->kind != k) continue;
      std::string natural;
      Deliver(*w, *it, &natural);
    }
  } else {
    auto add = [&](const ObjectPtr& o) {
      if (!WatcherMatches(*w, *o)) return;
      if (w->opts.table != TableMode::kNone) {
        Write(*w, TableEventLine("ADDED", *o, w->opts.table));
      } else {
        Write(*w, EventLine("ADDED", o->json));
      }
    };
    if (!w->bucket.empty()) {
      auto nit = pods_by_node_.find(w->bucket);
      if (nit != pods_by_node_.end()) {
        for (const auto& key : nit->second) add(ks.objects[key]);
      }
    } else {
      for (const auto& [key, o] : ks.objects) add(o);
    }
  }
  ks.watchers[w->bucket].push_back(w);
  return std::nullopt;
}

std::string Store::BookmarkLine(Kind k) {
  nlohmann::json obj = {
      {"kind", Info(k).kind},
      {"apiVersion", Info(k).api_version},
      {"metadata", {{"resourceVersion", std::to_string(rv_)}, {"creationTimestamp", nullptr}}}};
  return EventLine("BOOKMARK", obj.dump());
}

void Store::Tick(SteadyTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < kKindCount; ++i) {
    auto& ks = kinds_[i];
    std::string bookmark;
    for (auto bit = ks.watchers.begin(); bit != ks.watchers.end();) {
      auto& list = bit->second;
      for (auto& w : list) {
        if (w->dead || w->stream->done()) {
          w->dead = true;
          continue;
        }
        if (now >= w->opts.deadline) {
          w->stream->Close();
          w->dead = true;
          continue;
        }
        if (w->opts.bookmarks && now >= w->next_bookmark) {
          if (bookmark.empty()) bookmark = BookmarkLine(static_cast<Kind>(i));
          Write(*w, bookmark);
          w->next_bookmark = now + options_.bookmark_interval;
        }
      }
      list.erase(std::remove_if(list.begin(), list.end(), [](const auto& w) { return w->dead; }),
                 list.end());
      if (list.empty()) {
        bit = ks.watchers.erase(bit);
      } else {
        ++bit;
      }
    }
  }
}

void Store::DropWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& ks : kinds_) {
    for (auto& [b, list] : ks.watchers) {
      for (auto& w : list) w->stream->Close();
    }
    ks.watchers.clear();
  }
}

void Store::Compact() {
  std::lock_guard<std::mutex> lock(mu_);
  history_.clear();
  history_start_rv_ = rv_;
}

size_t Store::open_watches() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& ks : kinds_) {
    for (auto& [b, list] : ks.watchers) {
      for (auto& w : list) n += w->dead ? 0 : 1;
    }
  }
  return n;
}

size_t Store::count(Kind k) {
  std::lock_guard<std::mutex> lock(mu_);
  return kinds_[static_cast<int>(k)].objects.size();
}

std::array<WatchCounters, kKindCount> Store::watch_counters() {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

std::vector<ObjectPtr> Store::Snapshot(Kind k) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(kinds_[static_cast<int>(k)].objects.size());
  for (const auto& [key, o] : kinds_[static_cast<int>(k)].objects) out.push_back(o);
  return out;
}

nlohmann::json Store::Dump() {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json objects = nlohmann::json::object();
  for (int i = 0; i < kKindCount; ++i) {
    auto arr = nlohmann::json::array();
    for (const auto& [key, o] : kinds_[i].objects) arr.push_back(nlohmann::json::parse(o->json));
    objects[Info(static_cast<Kind>(i)).resource] = std::move(arr);
  }
  return {{"resourceVersion", rv_}, {"objects", std::move(objects)}};
}

void Store::Load(const nlohmann::json& state) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& ks : kinds_) ks.objects.clear();
  pods_by_node_.clear();
  history_.clear();
  rv_ = state.value("resourceVersion", uint64_t{0});
  for (int i = 0; i < kKindCount; ++i) {
    Kind k = static_cast<Kind>(i);
    auto it = state["objects"].find(Info(k).resource);
    if (it == state["objects"].end()) continue;
    for (const auto& j : *it) {
      ObjectPtr o = MakeObject(k, j);
      kinds_[i].objects[o->Key()] = o;
      Index(o, true);
      rv_ = std::max(rv_, o->rv);
    }
  }
  history_start_rv_ = rv_;
}

}  // namespace kubesim
