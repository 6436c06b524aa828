// HeapTrimmer: hands the heap pages malloc keeps after a burst (the request
// bodies of thousands of agents, a round of snapshots' decoded reports and
// commit batches) back to the OS. glibc returns only the top of an arena by
// itself; malloc_trim also releases the free pages inside every arena.
//
//   HeapTrimmer trimmer;
//   trimmer.Tick(std::chrono::steady_clock::now());  // From a periodic task.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

namespace ashiato {

struct HeapTrimOptions {
  // Trim only when malloc holds at least this many free bytes...
  size_t min_free_bytes = 16u << 20;
  // ...and at most once per interval (a trim briefly locks each arena).
  std::chrono::steady_clock::duration min_interval = std::chrono::seconds(30);
};

class HeapTrimmer {
 public:
  explicit HeapTrimmer(HeapTrimOptions options = {}) : options_(options) {}

  // Trims if Due with malloc's free bytes now. Returns true iff it trimmed.
  bool Tick(std::chrono::steady_clock::time_point now);
  // Whether a trim is due with `free_bytes` free in malloc's arenas.
  bool Due(size_t free_bytes, std::chrono::steady_clock::time_point now) const;
  size_t trims() const { return trims_; }

 private:
  HeapTrimOptions options_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  size_t trims_ = 0;
};

}  // namespace ashiato
