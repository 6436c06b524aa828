// TcpProxy: a loopback TCP forwarder the chaos harness puts between one
// agent and the aggregator, so it can partition them: while partitioned,
// open connections are cut and new ones are closed at once (as a dropped
// route or a NetworkPolicy change would look to the agent).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace ashiato::chaos {

class TcpProxy {
 public:
  // Forwards 127.0.0.1:<port()> to 127.0.0.1:target_port.
  explicit TcpProxy(uint16_t target_port);
  ~TcpProxy();
  bool Start();
  uint16_t port() const { return port_; }
  void SetPartitioned(bool partitioned);
  // Connections refused or cut while partitioned.
  uint64_t refused() const { return refused_.load(); }

 private:
  void Run();
  void CloseAllLocked();

  uint16_t target_port_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> partitioned_{false};
  std::atomic<uint64_t> refused_{0};
  std::mutex mu_;
  std::vector<std::pair<int, int>> pairs_;  // (client, upstream) fds.
  std::thread thread_;
};

}  // namespace ashiato::chaos
