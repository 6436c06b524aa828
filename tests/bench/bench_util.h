// Small helpers shared by the benchmark programs: figures in the
// "name value unit" format, process memory and CPU from /proc, percentiles,
// and spawning a child whose stdout is a pipe the benchmark times lines on.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace ashiato::bench {

inline void Print(const std::string& name, double value, const char* unit) {
  std::printf("%s %.6g %s\n", name.c_str(), value, unit);
  std::fflush(stdout);
}

// A field of /proc/PID/status in KiB (VmRSS, VmHWM, ...), -1 if absent.
inline long ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// User + system CPU seconds of a process.
inline double ProcCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(content.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Memory of one mapping (or a sum of them), in KiB, from /proc/PID/smaps.
struct MapMemory {
  long rss = 0, pss = 0, shared_clean = 0, shared_dirty = 0, private_clean = 0, private_dirty = 0,
       anonymous = 0;
  void Add(const MapMemory& o) {
    rss += o.rss;
    pss += o.pss;
    shared_clean += o.shared_clean;
    shared_dirty += o.shared_dirty;
    private_clean += o.private_clean;
    private_dirty += o.private_dirty;
    anonymous += o.anonymous;
  }
};

// Sums /proc/PID/smaps per mapped file ("[anon]", "[heap]", "[stack]", or
// the library path). Rss counts every resident page; Pss divides shared
// pages by the number of processes mapping them.
inline std::map<std::string, MapMemory> SmapsByFile(pid_t pid) {
  std::map<std::string, MapMemory> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  std::string line, current = "[anon]";
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    bool header = !line.empty() && (colon == std::string::npos || line.find(' ') < colon);
    if (header) {  // "start-end perms offset dev inode [path]"
      std::istringstream fields(line);
      std::string range, perms, offset, dev, inode, path;
      fields >> range >> perms >> offset >> dev >> inode;
      std::getline(fields, path);
      path.erase(0, path.find_first_not_of(' '));
      current = path.empty() ? "[anon]" : path;
      continue;
    }
    std::string key = line.substr(0, colon);
    long kb = std::atol(line.c_str() + colon + 1);
    MapMemory& m = out[current];
    if (key == "Rss") m.rss += kb;
    if (key == "Pss") m.pss += kb;
    if (key == "Shared_Clean") m.shared_clean += kb;
    if (key == "Shared_Dirty") m.shared_dirty += kb;
    if (key == "Private_Clean") m.private_clean += kb;
    if (key == "Private_Dirty") m.private_dirty += kb;
    if (key == "Anonymous") m.anonymous += kb;
  }
  return out;
}

// The value of `"key":"..."` in a flat-enough JSON line ("" if absent):
// `quoted_key` is "\"uid\":\"". Cheaper than parsing the line, for readers
// that must keep up with a log; the writers never escape these values.
inline std::string_view JsonStringField(std::string_view line, std::string_view quoted_key) {
  auto pos = line.find(quoted_key);
  if (pos == std::string_view::npos) return {};
  pos += quoted_key.size();
  auto end = line.find('"', pos);
  if (end == std::string_view::npos) return {};
  return line.substr(pos, end - pos);
}

inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Starts `args` with stdout on a pipe (returned in *stdout_fd) and stderr
// appended to `stderr_path`. Returns the pid, or -1.
inline pid_t SpawnWithStdoutPipe(const std::vector<std::string>& args,
                                 const std::string& stderr_path, int* stdout_fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  std::vector<std::string> copy = args;
  std::vector<char*> cargs;
  for (auto& a : copy) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cargs[0], &actions, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return -1;
  }
  *stdout_fd = fds[0];
  return pid;
}

}  // namespace ashiato::bench
