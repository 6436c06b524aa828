#include "aggregator/intern_table.h"

#include <cassert>

namespace ashiato {

const std::string InternTable::kEmptyText;

InternTable::InternTable() { entries_.push_back({&kEmptyText, 0}); }

uint32_t InternTable::Acquire(std::string_view s) {
  if (s.empty()) return kEmpty;
  auto it = ids_.find(s);
  if (it != ids_.end()) {
    ++entries_[it->second].refs;
    return it->second;
  }
  uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<uint32_t>(entries_.size());
    entries_.push_back({});
  }
  it = ids_.emplace(std::string(s), id).first;
  entries_[id] = {&it->first, 1};
  return id;
}

void InternTable::AddRef(uint32_t id) {
  if (id == kEmpty) return;
  assert(entries_[id].refs > 0);
  ++entries_[id].refs;
}

void InternTable::Release(uint32_t id) {
  if (id == kEmpty) return;
  Entry& e = entries_[id];
  assert(e.refs > 0);
  if (--e.refs > 0) return;
  ids_.erase(ids_.find(std::string_view(*e.text)));
  e.text = &kEmptyText;
  free_.push_back(id);
}

}  // namespace ashiato
