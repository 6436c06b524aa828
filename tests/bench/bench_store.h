// The history store of a benchmark that drives ClusterState in-process.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "aggregator/store/store.h"

namespace ashiato::bench {

// A store in `dir` that keeps all history; null (the reason printed) if it
// cannot be opened.
// `cache_kib` 0: the store's default page cache.
inline std::unique_ptr<Store> OpenBenchStore(const std::string& dir, int64_t cache_kib = 0) {
  StoreOptions so;
  so.dir = dir;
  if (cache_kib > 0) so.cache_kib = cache_kib;
  so.retention = std::chrono::milliseconds(0);
  auto store = Store::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return nullptr;
  }
  return std::move(*store);
}

}  // namespace ashiato::bench
