#include "aggregator/heap_trim.h"

#include <malloc.h>

namespace ashiato {

bool HeapTrimmer::Due(size_t free_bytes, std::chrono::steady_clock::time_point now) const {
  if (free_bytes < options_.min_free_bytes) return false;
  return !last_ || now - *last_ >= options_.min_interval;
}

bool HeapTrimmer::Tick(std::chrono::steady_clock::time_point now) {
  struct mallinfo2 mi = mallinfo2();
  if (!Due(mi.fordblks, now)) return false;
  malloc_trim(0);
  last_ = now;
  ++trims_;
  return true;
}

}  // namespace ashiato
