#include "aggregator/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ashiato {
namespace {

Status Errno(const std::string& what) {
  return Status(StatusCode::kUnavailable, what + ": " + std::strerror(errno));
}

Status WriteAll(int fd, const std::string& text, const std::string& path) {
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write " + path);
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<StateFile>> StateFile::Open(const std::string& path,
                                                   std::vector<std::string>* lines) {
  std::unique_ptr<StateFile> f(new StateFile());
  f->path_ = path;
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      std::string all = ss.str();
      size_t start = 0;
      while (true) {
        size_t nl = all.find('\n', start);
        if (nl == std::string::npos) break;  // Partial last line: dropped.
        if (nl > start) lines->push_back(all.substr(start, nl - start));
        start = nl + 1;
      }
      if (start < all.size()) {
        // Cut the partial line so later appends start on a fresh line.
        if (::truncate(path.c_str(), static_cast<off_t>(start)) != 0) {
          return Errno("truncate " + path);
        }
      }
    }
  }
  f->fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (f->fd_ < 0) return Errno("open " + path);
  return f;
}

StateFile::~StateFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status StateFile::Append(const std::string& text) {
  if (text.empty()) return Status::Ok();
  Status st = WriteAll(fd_, text, path_);
  if (st.ok()) appended_lines_ += static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  return st;
}

Status StateFile::Rewrite(const std::string& text) {
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open " + tmp);
  Status st = WriteAll(fd, text, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Errno("fsync " + tmp);
  ::close(fd);
  if (!st.ok()) return st;
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return Errno("rename " + tmp);
  int nfd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (nfd < 0) return Errno("reopen " + path_);
  ::close(fd_);
  fd_ = nfd;
  appended_lines_ = 0;
  return Status::Ok();
}

Status StateFile::Sync() {
  if (::fsync(fd_) != 0) return Errno("fsync " + path_);
  return Status::Ok();
}

}  // namespace ashiato
