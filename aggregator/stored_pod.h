// StoredPod: a PodRecord packed into one immutable buffer, ~1/3 of the
// memory of a PodRecord's ~20 separately allocated strings, maps and
// vectors. The aggregator's cache of current pods holds these.
#pragma once

#include <cassert>
#include <memory>
#include <string>
#include <string_view>

#include "common/pod_record.h"

namespace ashiato {

// Layout of StoredPod::packed_: every observable field of a PodRecord, in
// a fixed order, each string as a varint length then its bytes; lists as a
// varint count then their strings. Deterministic, so two records have the
// same observable state iff their buffers are equal. The resourceVersion is
// kept apart (it is not observable state).
class StoredPod {
 public:
  // Field order of the leading strings (the accessors walk to them).
  enum Field { kUid, kNamespace, kName, kNode, kPhase, kCreated };

  static std::shared_ptr<const StoredPod> Pack(const PodRecord& p) {
    auto out = std::make_shared<StoredPod>();
    std::string& b = out->packed_;
    size_t size = 1 + VarintSize(p.pod_ips.size()) + VarintSize(p.conditions.size()) +
                  VarintSize(p.containers.size()) + VarintSize(p.labels.size()) +
                  VarintSize(p.annotations.size());
    for (const std::string* f :
         {&p.uid, &p.namespace_, &p.name, &p.node_name, &p.phase, &p.creation_timestamp, &p.pod_ip,
          &p.host_ip, &p.deletion_timestamp, &p.owner_kind, &p.owner_name}) {
      size += StringSize(*f);
    }
    for (const auto& ip : p.pod_ips) size += StringSize(ip);
    for (const auto& c : p.conditions) {
      size += StringSize(c.type) + StringSize(c.status) + StringSize(c.last_transition_time);
    }
    for (const auto& c : p.containers) {
      size += StringSize(c.name) + StringSize(c.image) + StringSize(c.image_id);
    }
    for (const auto& [k, v] : p.labels) size += StringSize(k) + StringSize(v);
    for (const auto& [k, v] : p.annotations) size += StringSize(k) + StringSize(v);
    b.reserve(size);
    for (const std::string* f :
         {&p.uid, &p.namespace_, &p.name, &p.node_name, &p.phase, &p.creation_timestamp, &p.pod_ip,
          &p.host_ip, &p.deletion_timestamp, &p.owner_kind, &p.owner_name}) {
      PutString(*f, &b);
    }
    b.push_back(p.owner_inferred ? 1 : 0);
    PutVarint(p.pod_ips.size(), &b);
    for (const auto& ip : p.pod_ips) PutString(ip, &b);
    PutVarint(p.conditions.size(), &b);
    for (const auto& c : p.conditions) {
      PutString(c.type, &b);
      PutString(c.status, &b);
      PutString(c.last_transition_time, &b);
    }
    PutVarint(p.containers.size(), &b);
    for (const auto& c : p.containers) {
      PutString(c.name, &b);
      PutString(c.image, &b);
      PutString(c.image_id, &b);
    }
    for (const auto* map : {&p.labels, &p.annotations}) {
      PutVarint(map->size(), &b);
      for (const auto& [k, v] : *map) {
        PutString(k, &b);
        PutString(v, &b);
      }
    }
    assert(b.size() == size);  // The reserve was exact: no reallocation.
    out->resource_version_ = p.resource_version;
    return out;
  }

  PodRecord Unpack() const {
    PodRecord p;
    const char* c = packed_.data();
    for (std::string* f :
         {&p.uid, &p.namespace_, &p.name, &p.node_name, &p.phase, &p.creation_timestamp, &p.pod_ip,
          &p.host_ip, &p.deletion_timestamp, &p.owner_kind, &p.owner_name}) {
      *f = GetString(&c);
    }
    p.owner_inferred = *c++ != 0;
    p.pod_ips.resize(GetVarint(&c));
    for (auto& ip : p.pod_ips) ip = GetString(&c);
    p.conditions.resize(GetVarint(&c));
    for (auto& x : p.conditions) {
      x.type = GetString(&c);
      x.status = GetString(&c);
      x.last_transition_time = GetString(&c);
    }
    p.containers.resize(GetVarint(&c));
    for (auto& x : p.containers) {
      x.name = GetString(&c);
      x.image = GetString(&c);
      x.image_id = GetString(&c);
    }
    for (auto* map : {&p.labels, &p.annotations}) {
      for (size_t n = GetVarint(&c); n > 0; --n) {
        std::string k(GetString(&c));
        map->emplace_hint(map->end(), std::move(k), GetString(&c));
      }
    }
    p.resource_version = resource_version_;
    return p;
  }

  std::string_view Get(Field f) const {
    const char* c = packed_.data();
    for (int i = 0; i < f; ++i) GetString(&c);
    return GetString(&c);
  }
  std::string_view uid() const { return Get(kUid); }
  std::string_view namespace_() const { return Get(kNamespace); }
  std::string_view name() const { return Get(kName); }
  std::string Key() const {
    std::string k(namespace_());
    k += '/';
    k += name();
    return k;
  }
  const std::string& resource_version() const { return resource_version_; }
  bool SameObservableState(const StoredPod& o) const { return packed_ == o.packed_; }

 private:
  static size_t VarintSize(size_t v) {
    size_t n = 1;
    for (; v >= 0x80; v >>= 7) ++n;
    return n;
  }
  static size_t StringSize(const std::string& s) { return VarintSize(s.size()) + s.size(); }
  static void PutVarint(size_t v, std::string* b) {
    while (v >= 0x80) {
      b->push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    b->push_back(static_cast<char>(v));
  }
  static void PutString(const std::string& s, std::string* b) {
    PutVarint(s.size(), b);
    b->append(s);
  }
  static size_t GetVarint(const char** c) {
    size_t v = 0;
    for (int shift = 0;; shift += 7) {
      unsigned char x = static_cast<unsigned char>(*(*c)++);
      v |= static_cast<size_t>(x & 0x7f) << shift;
      if (!(x & 0x80)) return v;
    }
  }
  static std::string_view GetString(const char** c) {
    size_t n = GetVarint(c);
    std::string_view s(*c, n);
    *c += n;
    return s;
  }

  std::string packed_;
  std::string resource_version_;
};

using PodPtr = std::shared_ptr<const StoredPod>;

}  // namespace ashiato
