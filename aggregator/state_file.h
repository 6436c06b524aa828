// StateFile: the aggregator's optional write-ahead journal (--state-file),
// so a restarted aggregator knows what it already logged and never logs it
// again. One JSON object per line, appended before the matching unified log
// line is written; rewritten (compacted) atomically with rename(2).
//
// Not thread-safe: ClusterState calls it under its lock.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace ashiato {

class StateFile {
 public:
  // Opens (creating if needed) `path` and returns its complete lines in
  // `lines` (a partial last line, from a crash mid-write, is dropped).
  static Result<std::unique_ptr<StateFile>> Open(const std::string& path,
                                                 std::vector<std::string>* lines);
  ~StateFile();

  // Appends `text` (whole lines, each ending in '\n'). A killed process
  // loses nothing that Append returned for: the data is in the kernel.
  Status Append(const std::string& text);
  // Replaces the whole file with `text` atomically (write temp, fsync, rename).
  Status Rewrite(const std::string& text);
  // fsync(2), for a clean shutdown.
  Status Sync();
  // Lines appended since the last Rewrite (or Open).
  size_t appended_lines() const { return appended_lines_; }
  const std::string& path() const { return path_; }

 private:
  StateFile() = default;
  std::string path_;
  int fd_ = -1;
  size_t appended_lines_ = 0;
};

}  // namespace ashiato
