#include "tests/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace ashiato::testing {
namespace {

int ConnectLoopback(uint16_t port) {
  if (port == 0) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TcpProxy::TcpProxy(uint16_t target_port) : target_port_(target_port) {}

TcpProxy::~TcpProxy() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> l(mu_);
  CloseAllLocked();
  if (listen_fd_ >= 0) close(listen_fd_);
}

bool TcpProxy::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listen_fd_ < 0) return false;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return false;
  if (listen(listen_fd_, 128) != 0) return false;
  socklen_t len = sizeof(a);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { Run(); });
  return true;
}

void TcpProxy::SetPartitioned(bool partitioned) {
  // Run() cuts the open connections itself: fds are only closed on its
  // thread, so a number reused elsewhere in the process is never touched.
  partitioned_ = partitioned;
}

void TcpProxy::CloseAllLocked() {
  for (auto [c, u] : pairs_) {
    close(c);
    close(u);
  }
  pairs_.clear();
}

void TcpProxy::Run() {
  char buf[65536];
  while (!stop_) {
    std::vector<pollfd> fds;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (partitioned_ && !pairs_.empty()) {
        refused_ += pairs_.size();
        CloseAllLocked();
      }
      fds.push_back({listen_fd_, POLLIN, 0});
      for (auto [c, u] : pairs_) {
        fds.push_back({c, POLLIN, 0});
        fds.push_back({u, POLLIN, 0});
      }
    }
    if (poll(fds.data(), fds.size(), 100) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        int u = partitioned_ ? -1 : ConnectLoopback(target_port_);
        if (u < 0) {
          if (partitioned_) ++refused_;
          close(c);
        } else {
          std::lock_guard<std::mutex> l(mu_);
          pairs_.push_back({c, u});
        }
      }
    }
    std::lock_guard<std::mutex> l(mu_);
    // Pump what is readable; a pair whose side closed (or failed) goes.
    std::vector<int> dead;
    for (size_t i = 1; i + 1 < fds.size(); i += 2) {
      for (int side = 0; side < 2; ++side) {
        const pollfd& p = fds[i + side];
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        int to = side == 0 ? fds[i + 1].fd : fds[i].fd;
        ssize_t n = read(p.fd, buf, sizeof(buf));
        bool ok = n > 0;
        for (ssize_t off = 0; ok && off < n;) {
          ssize_t w = write(to, buf + off, static_cast<size_t>(n - off));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) ok = false;
          off += w > 0 ? w : 0;
        }
        if (!ok) dead.push_back(fds[i].fd);
      }
    }
    for (int c : dead) {
      for (auto it = pairs_.begin(); it != pairs_.end(); ++it) {
        if (it->first != c) continue;
        close(it->first);
        close(it->second);
        pairs_.erase(it);
        break;
      }
    }
  }
}

}  // namespace ashiato::testing
