#include "tests/kubesim/tokens.h"

#include <openssl/rand.h>

#include "tests/kubesim/store.h"

namespace kubesim {

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string TokenTable::Issue(TokenInfo info) {
  std::lock_guard<std::mutex> lock(mu_);
  info.jti = RandomHex(16);
  nlohmann::json claims = {
      {"aud", info.audiences},
      {"exp", info.expires_at},
      {"iat", info.issued_at},
      {"nbf", info.issued_at},
      {"iss", "https://kubernetes.default.svc.cluster.local"},
      {"jti", info.jti},
      {"sub", "system:serviceaccount:" + info.ns + ":" + info.service_account},
      {"kubernetes.io",
       {{"namespace", info.ns},
        {"serviceaccount", {{"name", info.service_account}, {"uid", info.service_account_uid}}}}}};
  if (!info.pod_name.empty())
    claims["kubernetes.io"]["pod"] = {{"name", info.pod_name}, {"uid", info.pod_uid}};
  if (!info.node_name.empty())
    claims["kubernetes.io"]["node"] = {{"name", info.node_name}, {"uid", info.node_uid}};
  std::string header = R"({"alg":"RS256","kid":"kubesim"})";
  std::string token = Base64Encode(header, true) + "." + Base64Encode(claims.dump(), true) + "." +
                      Base64Encode(RandomHex(32), true);
  tokens_[token] = info;
  ++counter_;
  return token;
}

std::optional<TokenInfo> TokenTable::Lookup(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

nlohmann::json TokenTable::Dump() {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& [t, i] : tokens_) {
    arr.push_back({{"token", t},
                   {"ns", i.ns},
                   {"sa", i.service_account},
                   {"sa_uid", i.service_account_uid},
                   {"aud", i.audiences},
                   {"iat", i.issued_at},
                   {"exp", i.expires_at},
                   {"pod_name", i.pod_name},
                   {"pod_uid", i.pod_uid},
                   {"node_name", i.node_name},
                   {"node_uid", i.node_uid},
                   {"jti", i.jti}});
  }
  return arr;
}

void TokenTable::Load(const nlohmann::json& j) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!j.is_array()) return;
  for (const auto& e : j) {
    TokenInfo i;
    i.ns = e.value("ns", "");
    i.service_account = e.value("sa", "");
    i.service_account_uid = e.value("sa_uid", "");
    i.audiences = e.value("aud", std::vector<std::string>{});
    i.issued_at = e.value("iat", int64_t{0});
    i.expires_at = e.value("exp", int64_t{0});
    i.pod_name = e.value("pod_name", "");
    i.pod_uid = e.value("pod_uid", "");
    i.node_name = e.value("node_name", "");
    i.node_uid = e.value("node_uid", "");
    i.jti = e.value("jti", "");
    tokens_[e.value("token", "")] = i;
  }
}

}  // namespace kubesim
