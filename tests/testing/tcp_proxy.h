// TcpProxy: a loopback TCP forwarder with a port that the test process
// owns for its whole life. It stands where a Kubernetes Service would: the
// agents keep one address while the aggregator behind it restarts on a new
// port-0 port (SetTarget), so no test ever picks a "free" port that
// someone else may take first. The chaos harness also partitions one agent
// with it: while partitioned, open connections are cut and new ones are
// closed at once (as a dropped route or a NetworkPolicy change would look).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace ashiato::testing {

class TcpProxy {
 public:
  // Forwards 127.0.0.1:<port()> to 127.0.0.1:target_port (0: nowhere
  // yet; connections are closed until SetTarget).
  explicit TcpProxy(uint16_t target_port = 0);
  ~TcpProxy();
  // Binds 127.0.0.1:0 and starts forwarding; false if the socket fails.
  bool Start();
  uint16_t port() const { return port_; }
  // Where new connections go from now on; open ones keep their upstream.
  void SetTarget(uint16_t target_port) { target_port_ = target_port; }
  void SetPartitioned(bool partitioned);
  // Connections refused or cut while partitioned.
  uint64_t refused() const { return refused_.load(); }

 private:
  void Run();
  void CloseAllLocked();

  std::atomic<uint16_t> target_port_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> partitioned_{false};
  std::atomic<uint64_t> refused_{0};
  std::mutex mu_;
  std::vector<std::pair<int, int>> pairs_;  // (client, upstream) fds.
  std::thread thread_;
};

}  // namespace ashiato::testing
