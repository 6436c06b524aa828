// Subprocess: runs a real binary for end-to-end tests, with stdout and
// stderr captured to files, and stops it the way Kubernetes would
// (SIGTERM, then SIGKILL after a grace period).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ashiato::testing {

class Subprocess {
 public:
  // Starts `argv[0]` with `argv`. stdout/stderr go to `stdout_path` and
  // `stderr_path` (appended, so a restarted process keeps one log). Extra
  // environment entries ("KEY=VALUE") are added to the parent's.
  static std::unique_ptr<Subprocess> Start(const std::vector<std::string>& argv,
                                           const std::string& stdout_path,
                                           const std::string& stderr_path,
                                           const std::vector<std::string>& extra_env = {});
  ~Subprocess();  // Kills the process if it is still running.

  pid_t pid() const { return pid_; }
  // True while the process has not exited.
  bool Running();
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status as
  // from waitpid (use WIFEXITED/WEXITSTATUS), or -1 if it was not running.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10000));
  // SIGKILL and reap.
  void Kill();
  // Waits for exit up to `timeout`; returns the wait status or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  const std::string& stdout_path() const { return stdout_path_; }
  const std::string& stderr_path() const { return stderr_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
  std::string stdout_path_, stderr_path_;
};

// Every complete line of a file (a partial last line is left out).
std::vector<std::string> ReadLines(const std::string& path);
// Polls `predicate` every 20 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout);
// A fresh temporary directory (removed by the caller with RemoveTree).
std::string MakeTempDir(const std::string& prefix = "ashiato-test");
void RemoveTree(const std::string& path);
// $env when set and non-empty, else `def` (binaries under test: CMake's
// path, overridable to run against an installed build).
std::string BinFromEnv(const char* env, const char* def);
// Servers under test bind port 0 and log the port they got (the aggregator:
// "serving on port N"); tests read it rather than guess a free port, which
// another process may take between the guess and the bind.
// The size of `path` in bytes (0 if missing): where a restarted process,
// which appends to its old log, starts writing.
uint64_t FileSize(const std::string& path);
// The number after the first `marker` in `path` past byte `from`, waiting
// up to `timeout`; 0 if none came.
uint16_t WaitForReportedPort(const std::string& path, uint64_t from, const std::string& marker,
                             std::chrono::milliseconds timeout);
// Runs a shell-free command to completion; returns exit code and captures stdout.
int RunCommand(const std::vector<std::string>& argv, std::string* out,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(60000));

}  // namespace ashiato::testing
