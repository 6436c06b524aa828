// InternTable: one copy of each distinct string, named by a small id and
// counted, so that the strings thousands of cached pods repeat (namespaces,
// node names, images, digests, label keys and values) are held once. An
// entry is freed with its last reference and its id is reused.
//
//   uint32_t id = table.Acquire("kube-system");  // One reference.
//   table.Get(id);                                // "kube-system"
//   table.Release(id);                            // Freed when no one holds it.
//
// Not thread-safe: the owner serializes writers (Acquire, AddRef, Release)
// against everything else; Get may run concurrently with other Gets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ashiato {

class InternTable {
 public:
  // The empty string's id: always present, never counted.
  static constexpr uint32_t kEmpty = 0;

  InternTable();
  InternTable(const InternTable&) = delete;
  InternTable& operator=(const InternTable&) = delete;

  // The id of `s` (added if new), with one more reference to it.
  uint32_t Acquire(std::string_view s);
  // One more reference to `id`, which must be held.
  void AddRef(uint32_t id);
  // Drops one reference to `id`; the last one frees the string.
  void Release(uint32_t id);
  // The string of a held id.
  std::string_view Get(uint32_t id) const { return *entries_[id].text; }

  // Distinct strings held, the empty one excluded.
  size_t size() const { return ids_.size(); }
  // References to `id` (0 for a free id or kEmpty).
  uint32_t refs(uint32_t id) const { return id < entries_.size() ? entries_[id].refs : 0; }

 private:
  struct Entry {
    const std::string* text;  // The key of its node in ids_ (stable).
    uint32_t refs;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> ids_;
  std::vector<Entry> entries_;  // By id.
  std::vector<uint32_t> free_;  // Ids to reuse.
  static const std::string kEmptyText;
};

// One counted reference to a string of a table; empty when default-made.
class InternedString {
 public:
  InternedString() = default;
  InternedString(InternTable* table, std::string_view s) : table_(table), id_(table->Acquire(s)) {}
  InternedString(InternedString&& o) noexcept { *this = std::move(o); }
  InternedString& operator=(InternedString&& o) noexcept {
    if (this != &o) {
      if (table_) table_->Release(id_);
      table_ = o.table_;
      id_ = o.id_;
      o.table_ = nullptr;
      o.id_ = InternTable::kEmpty;
    }
    return *this;
  }
  ~InternedString() {
    if (table_) table_->Release(id_);
  }
  std::string_view view() const { return table_ ? table_->Get(id_) : std::string_view(); }
  bool operator==(std::string_view s) const { return view() == s; }

 private:
  InternTable* table_ = nullptr;
  uint32_t id_ = InternTable::kEmpty;
};

}  // namespace ashiato
