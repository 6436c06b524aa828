// Kubeconfig files (YAML): LoadKubeConfigFile with the current context and
// with a named one. The input is written to a file in a private temporary
// directory, as the loader reads paths.
//
// Invariants: no exception escapes (yaml-cpp throws; the loader must turn
// every error into a Status); a loaded config has a server without a
// trailing '/', and every file path it names is absolute.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/kube_client.h"
#include "tests/fuzz/fuzz.h"

namespace {

std::string& Dir() {
  static std::string dir;
  return dir;
}

void RemoveDir() {
  std::error_code ec;
  if (!Dir().empty()) std::filesystem::remove_all(Dir(), ec);
}

void CheckConfig(const ashiato::KubeConfig& c) {
  FUZZ_CHECK(!c.server.empty() && c.server.back() != '/', c.server);
  for (const std::string* p :
       {&c.ca_file, &c.client_cert_file, &c.client_key_file, &c.token_file}) {
    FUZZ_CHECK(p->empty() || (*p)[0] == '/', "relative path " + *p);
  }
  if (c.exec) {
    FUZZ_CHECK(!c.exec->command.empty() && !c.exec->api_version.empty(), "exec without command");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/ashiato-fuzz-kubeconfig-XXXXXX";
  FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
  Dir() = tmpl;
  std::atexit(RemoveDir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (Dir().empty()) LLVMFuzzerInitialize(nullptr, nullptr);
  std::string path = Dir() + "/config";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  for (const char* context : {"", "ctx"}) {
    auto config = ashiato::LoadKubeConfigFile(path, context);
    if (config.ok()) {
      CheckConfig(*config);
    } else {
      FUZZ_CHECK(!config.status().message().empty(), "an error without a message");
    }
  }
  return 0;
}
