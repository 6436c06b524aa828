#include "aggregator/stored_pod.h"

#include <cstring>
#include <vector>

#include "common/time_util.h"

namespace ashiato {
namespace {

void PutVarint(uint64_t v, std::string* b) {
  while (v >= 0x80) {
    b->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  b->push_back(static_cast<char>(v));
}

void PutRaw(std::string_view s, std::string* b) {
  PutVarint(s.size(), b);
  b->append(s);
}

// A Kubernetes timestamp ("2026-11-24T03:00:00Z") as 1 + seconds since the
// epoch when it reads back byte for byte; else 0 and the raw string.
void PutTime(const std::string& s, std::string* b) {
  if (s.size() == 20 && s[19] == 'Z') {
    auto t = ParseRfc3339(s);
    if (t) {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
      if (secs >= 0 && FormatRfc3339(*t) == s) {
        PutVarint(static_cast<uint64_t>(secs) + 1, b);
        return;
      }
    }
  }
  PutVarint(0, b);
  PutRaw(s, b);
}

class Reader {
 public:
  explicit Reader(const char* c) : c_(c) {}
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      unsigned char x = static_cast<unsigned char>(*c_++);
      v |= static_cast<uint64_t>(x & 0x7f) << shift;
      if (!(x & 0x80)) return v;
    }
  }
  std::string_view Raw() {
    size_t n = Varint();
    std::string_view s(c_, n);
    c_ += n;
    return s;
  }
  std::string Time() {
    uint64_t v = Varint();
    if (v == 0) return std::string(Raw());
    return FormatRfc3339(SystemTime(std::chrono::seconds(v - 1)));
  }
  char Byte() { return *c_++; }
  const char* pos() const { return c_; }

 private:
  const char* c_;
};

// Ids of the interned section, in order.
class Ids {
 public:
  Ids(const InternTable* strings, const char* c) : strings_(strings), r_(c) {}
  std::string_view Next() { return strings_->Get(static_cast<uint32_t>(r_.Varint())); }

 private:
  const InternTable* strings_;
  Reader r_;
};

// Positions of the sections of a buffer.
struct Sections {
  const char* ids;  // First id (after their count).
  uint64_t id_count;
  const char* raw;
};

Sections Locate(const char* buffer) {
  Reader r(buffer);
  r.Raw();  // resourceVersion.
  Sections s;
  s.id_count = r.Varint();
  s.ids = r.pos();
  for (uint64_t i = 0; i < s.id_count; ++i) r.Varint();
  s.raw = r.pos();
  return s;
}

}  // namespace

StoredPod& StoredPod::operator=(StoredPod&& o) noexcept {
  if (this != &o) {
    Clear();
    strings_ = o.strings_;
    buffer_ = std::move(o.buffer_);
    size_ = o.size_;
    o.size_ = 0;
  }
  return *this;
}

void StoredPod::Clear() {
  if (!buffer_) return;
  Sections s = Locate(buffer_.get());
  Reader r(s.ids);
  for (uint64_t i = 0; i < s.id_count; ++i) strings_->Release(static_cast<uint32_t>(r.Varint()));
  buffer_.reset();
  size_ = 0;
}

StoredPod StoredPod::Pack(const PodRecord& p, InternTable* strings) {
  std::vector<uint32_t> ids;
  ids.reserve(16 + 2 * p.conditions.size() + 3 * p.containers.size() + 2 * p.labels.size() +
              p.annotations.size());
  auto intern = [&](const std::string& s) { ids.push_back(strings->Acquire(s)); };
  for (const std::string* f :
       {&p.namespace_, &p.node_name, &p.phase, &p.host_ip, &p.owner_kind, &p.owner_name}) {
    intern(*f);
  }
  for (const auto& c : p.conditions) {
    intern(c.type);
    intern(c.status);
  }
  for (const auto& c : p.containers) {
    intern(c.name);
    intern(c.image);
    intern(c.image_id);
  }
  for (const auto& [k, v] : p.labels) {
    intern(k);
    intern(v);
  }
  for (const auto& [k, v] : p.annotations) intern(k);

  std::string b;
  b.reserve(256);
  PutRaw(p.resource_version, &b);
  PutVarint(ids.size(), &b);
  for (uint32_t id : ids) PutVarint(id, &b);
  PutRaw(p.uid, &b);
  PutRaw(p.name, &b);
  PutTime(p.creation_timestamp, &b);
  PutRaw(p.pod_ip, &b);
  PutTime(p.deletion_timestamp, &b);
  b.push_back(p.owner_inferred ? 1 : 0);
  PutVarint(p.pod_ips.size(), &b);
  for (const auto& ip : p.pod_ips) PutRaw(ip, &b);
  PutVarint(p.conditions.size(), &b);
  for (const auto& c : p.conditions) PutTime(c.last_transition_time, &b);
  PutVarint(p.containers.size(), &b);
  PutVarint(p.labels.size(), &b);
  PutVarint(p.annotations.size(), &b);
  for (const auto& [k, v] : p.annotations) PutRaw(v, &b);

  StoredPod out;
  out.strings_ = strings;
  out.buffer_.reset(new char[b.size()]);
  std::memcpy(out.buffer_.get(), b.data(), b.size());
  out.size_ = static_cast<uint32_t>(b.size());
  return out;
}

PodRecord StoredPod::Unpack() const {
  PodRecord p;
  if (!buffer_) return p;
  Reader rv(buffer_.get());
  p.resource_version = std::string(rv.Raw());
  Sections s = Locate(buffer_.get());
  Ids ids(strings_, s.ids);
  Reader r(s.raw);
  for (std::string* f :
       {&p.namespace_, &p.node_name, &p.phase, &p.host_ip, &p.owner_kind, &p.owner_name}) {
    *f = ids.Next();
  }
  p.uid = r.Raw();
  p.name = r.Raw();
  p.creation_timestamp = r.Time();
  p.pod_ip = r.Raw();
  p.deletion_timestamp = r.Time();
  p.owner_inferred = r.Byte() != 0;
  p.pod_ips.resize(r.Varint());
  for (auto& ip : p.pod_ips) ip = r.Raw();
  p.conditions.resize(r.Varint());
  for (auto& c : p.conditions) {
    c.type = ids.Next();
    c.status = ids.Next();
    c.last_transition_time = r.Time();
  }
  p.containers.resize(r.Varint());
  for (auto& c : p.containers) {
    c.name = ids.Next();
    c.image = ids.Next();
    c.image_id = ids.Next();
  }
  for (size_t n = r.Varint(); n > 0; --n) {
    std::string k(ids.Next());
    p.labels.emplace_hint(p.labels.end(), std::move(k), ids.Next());
  }
  size_t annotations = r.Varint();
  for (; annotations > 0; --annotations) {
    std::string k(ids.Next());
    p.annotations.emplace_hint(p.annotations.end(), std::move(k), r.Raw());
  }
  return p;
}

std::string_view StoredPod::Get(Field f) const {
  if (!buffer_) return {};
  Sections s = Locate(buffer_.get());
  if (f == kUid || f == kName) {
    Reader r(s.raw);
    std::string_view uid = r.Raw();
    return f == kUid ? uid : r.Raw();
  }
  Ids ids(strings_, s.ids);
  std::string_view v = ids.Next();  // namespace
  if (f == kNamespace) return v;
  v = ids.Next();  // node
  if (f == kNode) return v;
  return ids.Next();  // phase
}

std::string StoredPod::Key() const {
  std::string k(namespace_());
  k += '/';
  k += name();
  return k;
}

std::string_view StoredPod::resource_version() const {
  if (!buffer_) return {};
  Reader r(buffer_.get());
  return r.Raw();
}

std::string_view StoredPod::Observable() const {
  if (!buffer_) return {};
  Reader r(buffer_.get());
  r.Raw();
  return std::string_view(r.pos(), size_ - static_cast<size_t>(r.pos() - buffer_.get()));
}

bool StoredPod::SameObservableState(const StoredPod& o) const {
  return strings_ == o.strings_ && Observable() == o.Observable();
}

}  // namespace ashiato
