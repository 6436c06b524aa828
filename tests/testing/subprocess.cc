#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

extern char** environ;

namespace ashiato::testing {

namespace {

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::unique_ptr<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                              const std::string& stdout_path,
                                              const std::string& stderr_path,
                                              const std::vector<std::string>& extra_env) {
  std::vector<std::string> args = argv;
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  for (const auto& e : extra_env) env.push_back(e);
  auto cargs = CStrings(args);
  auto cenv = CStrings(env);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, cargs[0], &actions, nullptr, cargs.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return nullptr;
  auto p = std::unique_ptr<Subprocess>(new Subprocess());
  p->pid_ = pid;
  p->stdout_path_ = stdout_path;
  p->stderr_path_ = stderr_path;
  return p;
}

Subprocess::~Subprocess() { Kill(); }

bool Subprocess::Running() {
  if (reaped_ || pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = status;
    return false;
  }
  return r == 0;
}

int Subprocess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return reaped_ ? status_ : -1;
}

int Subprocess::Stop(std::chrono::milliseconds grace) {
  if (!Running()) return reaped_ ? status_ : -1;
  kill(pid_, SIGTERM);
  int status = Wait(grace);
  if (status == -1) {
    Kill();
    return reaped_ ? status_ : -1;
  }
  return status;
}

void Subprocess::Kill() {
  if (!Running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) {
    reaped_ = true;
    status_ = status;
  }
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  size_t start = 0;
  while (true) {
    size_t nl = content.find('\n', start);
    if (nl == std::string::npos) break;
    lines.push_back(content.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

bool WaitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  char* dir = mkdtemp(tmpl.data());
  return dir ? std::string(dir) : std::string();
}

std::string BinFromEnv(const char* env, const char* def) {
  const char* v = std::getenv(env);
  return v && *v ? v : def;
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

uint16_t WaitForReportedPort(const std::string& path, uint64_t from, const std::string& marker,
                             std::chrono::milliseconds timeout) {
  uint16_t port = 0;
  WaitFor(
      [&] {
        std::ifstream in(path);
        in.seekg(static_cast<std::streamoff>(from));
        std::string line;
        while (port == 0 && std::getline(in, line)) {
          size_t at = line.find(marker);
          if (at == std::string::npos) continue;
          unsigned long n = std::strtoul(line.c_str() + at + marker.size(), nullptr, 10);
          if (n > 0 && n < 65536) port = static_cast<uint16_t>(n);
        }
        return port != 0;
      },
      timeout);
  return port;
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  if (!path.empty()) std::filesystem::remove_all(path, ec);
}

int RunCommand(const std::vector<std::string>& argv, std::string* out,
               std::chrono::milliseconds timeout) {
  std::string dir = MakeTempDir("ashiato-cmd");
  auto p = Subprocess::Start(argv, dir + "/out", dir + "/err");
  if (!p) {
    RemoveTree(dir);
    return 127;
  }
  int status = p->Wait(timeout);
  if (status == -1) {
    p->Kill();
    status = -1;
  }
  if (out != nullptr) {
    std::ifstream in(dir + "/out", std::ios::binary);
    out->assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  RemoveTree(dir);
  if (status == -1) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace ashiato::testing
