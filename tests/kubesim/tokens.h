// Service account tokens: issued by TokenRequest, checked by TokenReview and
// by the bearer-token authenticator. Tokens are JWT-shaped (header.claims.sig
// with the claims the real issuer puts in) but verified by table lookup.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace kubesim {

struct TokenInfo {
  std::string ns, service_account, service_account_uid;
  std::vector<std::string> audiences;
  int64_t issued_at = 0;   // Unix seconds.
  int64_t expires_at = 0;  // Unix seconds.
  // Bound object, when the token was requested with one.
  std::string pod_name, pod_uid, node_name, node_uid;
  std::string jti;
};

class TokenTable {
 public:
  // Returns the token text.
  std::string Issue(TokenInfo info);
  std::optional<TokenInfo> Lookup(const std::string& token);
  nlohmann::json Dump();
  void Load(const nlohmann::json& j);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, TokenInfo> tokens_;
  uint64_t counter_ = 0;
};

// Random bytes as lowercase hex (OpenSSL RAND_bytes).
std::string RandomHex(size_t bytes);

}  // namespace kubesim
