// StoredPod: a PodRecord packed into one immutable buffer, with the strings
// many pods repeat (namespace, node, images, digests, label keys and
// values, ...) held once in an InternTable and named by their ids. The
// aggregator's cache of current pods holds these: ~1/6 of the memory of a
// PodRecord's ~20 separately allocated strings, maps and vectors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "aggregator/intern_table.h"
#include "common/pod_record.h"

namespace ashiato {

// Layout of the buffer: the resourceVersion (not observable state), then
// every observable field of a PodRecord in a fixed order, in two sections:
// the interned strings' ids, then the other strings and the list lengths
// (varint length + bytes; "YYYY-MM-DDTHH:MM:SSZ" timestamps as a varint of
// seconds). Deterministic, and ids are unique while held, so two records of
// one table have the same observable state iff their buffers are equal past
// the resourceVersion. Move-only: the ids are released once, by the owner.
class StoredPod {
 public:
  // The leading fields Get reads without unpacking.
  enum Field { kUid, kNamespace, kName, kNode, kPhase };

  StoredPod() = default;
  StoredPod(StoredPod&& o) noexcept { *this = std::move(o); }
  StoredPod& operator=(StoredPod&& o) noexcept;
  ~StoredPod() { Clear(); }

  // Packs `p`, taking references in `strings`, which must outlive the result.
  static StoredPod Pack(const PodRecord& p, InternTable* strings);
  PodRecord Unpack() const;

  std::string_view Get(Field f) const;
  std::string_view uid() const { return Get(kUid); }
  std::string_view namespace_() const { return Get(kNamespace); }
  std::string_view name() const { return Get(kName); }
  std::string Key() const;
  std::string_view resource_version() const;
  bool SameObservableState(const StoredPod& o) const;
  bool empty() const { return !buffer_; }
  // Bytes of the buffer (for the benchmarks' accounting).
  size_t packed_size() const { return size_; }

 private:
  void Clear();
  // The buffer past the resourceVersion.
  std::string_view Observable() const;

  InternTable* strings_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  uint32_t size_ = 0;
};

}  // namespace ashiato
