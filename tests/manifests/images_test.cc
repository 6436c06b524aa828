// What can be checked about the images without a container engine: the image names
// and user agree with daemonset/, the build stage runs the Makefile's commands, and
// the runtime stage installs a package for every shared library the binaries load.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/manifests/command.h"
#include "tests/manifests/dockerfile.h"

namespace ashiato::testing {
namespace {

using ::testing::Contains;

struct Component {
  std::string name;           // Binary, CMake target and image basename.
  std::string dockerfile;     // Relative to the repository root.
  std::string workload;       // "DaemonSet/ashiato-agent", "StatefulSet/ashiato-aggregator".
  std::string binary;         // Built binary to inspect with ldd; "" if none.
  std::string deps_command;   // The build stage's dependency step.
  std::string build_command;  // The build stage's Makefile build.
  std::string built_path;     // Where that build leaves the binary in the build stage.
  // The image ships a static executable (`make agent-static`): `binary` is then
  // that build's output, checked only when it exists.
  bool is_static = false;
};

// For readable test failure messages.
void PrintTo(const Component& c, std::ostream* os) { *os << c.name; }

std::vector<Component> Components() {
  return {{"ashiato-agent", "Dockerfile.agent", "DaemonSet/ashiato-agent", STATIC_AGENT_BIN,
           "make deps agent-static-deps", "make agent-static",
           "/src/build-static/bin/ashiato-agent", true},
          {"ashiato-aggregator", "Dockerfile.aggregator", "StatefulSet/ashiato-aggregator",
           AGGREGATOR_BIN, "make deps", "make build BUILD_TYPE=Release",
           "/src/build/bin/ashiato-aggregator"}};
}

std::string Root() { return ASHIATO_SOURCE_DIR; }

Dockerfile Load(const Component& c) {
  std::string text = ReadFile(Root() + "/" + c.dockerfile);
  EXPECT_FALSE(text.empty()) << c.dockerfile << " is missing";
  return ParseDockerfile(text);
}

class ImageTest : public ::testing::TestWithParam<Component> {};

TEST_P(ImageTest, StagesUserAndEntrypoint) {
  const Component& c = GetParam();
  Dockerfile df = Load(c);
  ASSERT_EQ(df.stages.size(), 2u);
  const DockerStage& build = df.stages[0];
  const DockerStage& run = df.stages[1];
  EXPECT_EQ(build.base, "debian:bookworm");
  EXPECT_EQ(build.name, "build");
  EXPECT_EQ(run.base, "debian:bookworm-slim");
  EXPECT_THAT(run.All("USER"), ::testing::ElementsAre("65532:65532"));
  EXPECT_THAT(run.All("ENTRYPOINT"), ::testing::ElementsAre("[\"/usr/local/bin/" + c.name + "\"]"));
  // The entrypoint is the binary the build stage produced.
  EXPECT_THAT(run.All("COPY"),
              Contains("--from=build " + c.built_path + " /usr/local/bin/" + c.name));
  EXPECT_THAT(build.All("WORKDIR"), ::testing::ElementsAre("/src"));
}

TEST_P(ImageTest, OciLabels) {
  const Component& c = GetParam();
  auto labels = Load(c).stages.back().Labels();
  for (const char* key : {"title", "description", "version", "source", "ref.name", "base.name"}) {
    EXPECT_FALSE(labels["org.opencontainers.image." + std::string(key)].empty()) << key;
  }
  EXPECT_EQ(labels["org.opencontainers.image.title"], c.name);
  EXPECT_EQ(labels["org.opencontainers.image.version"], "${VERSION}");
  EXPECT_EQ(labels["org.opencontainers.image.ref.name"], "${IMAGE_NAME}:${VERSION}");
}

// The Makefile's default for a `VAR ?= value` line.
std::string MakeDefault(const std::string& makefile, const std::string& var) {
  std::smatch m;
  std::regex re("(^|\n)" + var + " \\?= ([^\n]*)");
  return std::regex_search(makefile, m, re) ? m[2].str() : "";
}

TEST_P(ImageTest, BuildStageRunsTheMakefileBuild) {
  const Component& c = GetParam();
  std::string makefile = ReadFile(Root() + "/Makefile");
  ASSERT_FALSE(makefile.empty());
  // The targets the Dockerfile calls exist, and build/ is where `make build` puts binaries.
  EXPECT_THAT(makefile, ::testing::HasSubstr("\ndeps:"));
  EXPECT_THAT(makefile, ::testing::HasSubstr("\nbuild: configure"));
  EXPECT_THAT(makefile, ::testing::HasSubstr("\nagent-static-deps:"));
  EXPECT_THAT(makefile, ::testing::HasSubstr("\nagent-static:"));
  EXPECT_THAT(makefile, ::testing::HasSubstr("-DCMAKE_BUILD_TYPE=$(BUILD_TYPE)"));
  EXPECT_EQ(MakeDefault(makefile, "BUILD_DIR"), "build");
  EXPECT_FALSE(MakeDefault(makefile, "BUILD_TYPE").empty());

  std::vector<std::string> cmds = Load(c).stages[0].RunCommands();
  // Dependencies come from the Makefile's own list (no second list to drift), then the
  // README's build command with a Release build type.
  auto deps = std::find(cmds.begin(), cmds.end(), c.deps_command);
  auto build = std::find(cmds.begin(), cmds.end(), c.build_command);
  ASSERT_NE(deps, cmds.end());
  ASSERT_NE(build, cmds.end());
  EXPECT_LT(deps, build);
  for (const auto& cmd : cmds) {
    EXPECT_EQ(cmd.find("cmake "), std::string::npos) << "bypasses the Makefile: " << cmd;
  }
  // The README documents the same build command.
  EXPECT_THAT(ReadFile(Root() + "/README.md"), ::testing::HasSubstr(c.build_command));
}

TEST_P(ImageTest, NameVersionAndUserMatchTheManifests) {
  const Component& c = GetParam();
  if (!OnPath("kubectl")) GTEST_SKIP() << "kubectl not on PATH";
  Dockerfile df = Load(c);
  std::string image = df.global_args["IMAGE_NAME"] + ":" + df.global_args["VERSION"];
  EXPECT_EQ(df.global_args["IMAGE_NAME"], "ghcr.io/ashiato/" + c.name);

  CommandResult r = RunCommand("kubectl kustomize " + ShellQuote(Root() + "/daemonset"));
  ASSERT_EQ(r.exit_code, 0);
  bool found = false;
  for (const auto& o : YAML::LoadAll(r.out)) {
    if (!o.IsMap() ||
        o["kind"].as<std::string>() + "/" + o["metadata"]["name"].as<std::string>() != c.workload) {
      continue;
    }
    found = true;
    for (const auto& ct : o["spec"]["template"]["spec"]["containers"]) {
      EXPECT_EQ(ct["image"].as<std::string>(), image);
      std::string user = df.stages.back().All("USER").at(0);
      EXPECT_EQ(ct["securityContext"]["runAsUser"].as<std::string>() + ":" +
                    ct["securityContext"]["runAsGroup"].as<std::string>(),
                user);
    }
  }
  EXPECT_TRUE(found) << c.workload << " not rendered";
}

// The aggregator's store directory exists in the image, belongs to the nonroot user
// (so a run without a mounted volume can write it), is a declared VOLUME, and is the
// directory the StatefulSet passes as --data-dir and mounts its claim on.
TEST(AggregatorImage, DataDirIsOwnedByNonrootAndMatchesTheManifest) {
  const std::string dir = "/var/lib/ashiato";
  Dockerfile df = ParseDockerfile(ReadFile(Root() + "/Dockerfile.aggregator"));
  ASSERT_EQ(df.stages.size(), 2u);
  const DockerStage& run = df.stages.back();
  std::vector<std::string> cmds = run.RunCommands();
  EXPECT_THAT(cmds, Contains("mkdir -p " + dir));
  EXPECT_THAT(cmds, Contains("chown 65532:65532 " + dir));
  // Created after the user exists (useradd), in the runtime stage.
  auto useradd = std::find_if(cmds.begin(), cmds.end(),
                              [](const std::string& c) { return c.rfind("useradd ", 0) == 0; });
  auto chown = std::find(cmds.begin(), cmds.end(), "chown 65532:65532 " + dir);
  ASSERT_NE(useradd, cmds.end());
  EXPECT_LT(useradd, chown);
  EXPECT_THAT(run.All("VOLUME"), ::testing::ElementsAre("[\"" + dir + "\"]"));
  EXPECT_THAT(run.All("USER"), ::testing::ElementsAre("65532:65532"));

  if (!OnPath("kubectl")) GTEST_SKIP() << "kubectl not on PATH: manifest side skipped";
  CommandResult r = RunCommand("kubectl kustomize " + ShellQuote(Root() + "/daemonset"));
  ASSERT_EQ(r.exit_code, 0);
  bool found = false;
  for (const auto& o : YAML::LoadAll(r.out)) {
    if (!o.IsMap() || o["kind"].as<std::string>() != "StatefulSet") continue;
    found = true;
    const YAML::Node c = o["spec"]["template"]["spec"]["containers"][0];
    bool arg = false, mounted = false;
    for (const auto& a : c["args"]) arg = arg || a.as<std::string>() == "--data-dir=" + dir;
    for (const auto& m : c["volumeMounts"]) {
      mounted = mounted || m["mountPath"].as<std::string>() == dir;
    }
    EXPECT_TRUE(arg) << "--data-dir=" << dir << " not passed";
    EXPECT_TRUE(mounted) << dir << " not mounted";
  }
  EXPECT_TRUE(found) << "no StatefulSet rendered";
}

// --- Shared libraries -> Debian packages ------------------------------------------

// Installed package owning each path (dpkg -S), trying the merged-/usr aliases
// (ldd says /lib/..., dpkg may have recorded /usr/lib/... or the reverse). One dpkg
// call for all paths: dpkg is slow to start. Paths no package owns are absent.
std::map<std::string, std::string> OwningPackages(const std::vector<std::string>& paths) {
  std::map<std::string, std::vector<std::string>> aliases;  // path -> candidates
  std::string args;
  for (const auto& path : paths) {
    std::vector<std::string> c = {path};
    std::string real = RunCommand("realpath -e " + ShellQuote(path) + " 2>/dev/null").out;
    while (!real.empty() && real.back() == '\n') real.pop_back();
    if (!real.empty() && real != path) c.push_back(real);
    for (size_t i = 0, n = c.size(); i < n; ++i) {
      c.push_back(c[i].rfind("/usr/", 0) == 0 ? c[i].substr(4) : "/usr" + c[i]);
    }
    for (const auto& p : c) args += " " + ShellQuote(p);
    aliases[path] = c;
  }
  // Lines look like "libcurl4:amd64: /usr/lib/x86_64-linux-gnu/libcurl.so.4".
  std::map<std::string, std::string> owner_of;  // candidate -> package
  std::istringstream lines(RunCommand("dpkg -S" + args + " 2>/dev/null").out);
  std::string line;
  while (std::getline(lines, line)) {
    size_t sep = line.find(": ");
    if (sep == std::string::npos || line.rfind("diversion", 0) == 0) continue;
    std::string pkg = line.substr(0, sep);
    pkg = pkg.substr(0, pkg.find(','));
    owner_of[line.substr(sep + 2)] = pkg.substr(0, pkg.find(':'));
  }
  std::map<std::string, std::string> out;
  for (const auto& [path, candidates] : aliases) {
    for (const auto& c : candidates) {
      if (owner_of.count(c)) {
        out[path] = owner_of[c];
        break;
      }
    }
  }
  return out;
}

// soname -> resolved path, for every library ldd reports (direct and indirect).
std::map<std::string, std::string> Ldd(const std::string& binary) {
  std::map<std::string, std::string> libs;
  CommandResult r = RunCommand("ldd " + ShellQuote(binary));
  EXPECT_EQ(r.exit_code, 0) << "ldd " << binary;
  std::istringstream lines(r.out);
  std::string line;
  std::regex arrow(R"(^\s*(\S+) => (\S+) \()"), bare(R"(^\s*(/\S+) \()");
  std::smatch m;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.find("not found"), std::string::npos) << line;
    if (std::regex_search(line, m, arrow)) {
      libs[m[1].str()] = m[2].str();
    } else if (std::regex_search(line, m, bare)) {
      libs[m[1].str()] = m[1].str();  // The dynamic loader.
    }
  }
  return libs;
}

// DT_NEEDED entries: the libraries the binary itself links.
std::set<std::string> Needed(const std::string& binary) {
  std::set<std::string> needed;
  CommandResult r = RunCommand("readelf -d " + ShellQuote(binary));
  EXPECT_EQ(r.exit_code, 0) << "readelf -d " << binary;
  std::regex re(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), re), end; it != end; ++it) {
    needed.insert((*it)[1].str());
  }
  return needed;
}

// Packages apt installs with `pkgs`: their Depends/Pre-Depends closure, as installed
// here (one dpkg-query for every installed package, then walked in memory).
std::set<std::string> DependencyClosure(const std::vector<std::string>& pkgs) {
  std::map<std::string, std::string> depends;  // package -> "Depends, Pre-Depends"
  std::istringstream lines(
      RunCommand("dpkg-query -W -f='${Package}\\t${Depends}, ${Pre-Depends}\\n'").out);
  std::string line;
  while (std::getline(lines, line)) {
    size_t tab = line.find('\t');
    if (tab != std::string::npos) depends[line.substr(0, tab)] += ", " + line.substr(tab + 1);
  }
  std::regex name(R"((^|[,|]\s*)([a-z0-9][a-z0-9+.-]+))");
  std::set<std::string> seen;
  std::vector<std::string> todo(pkgs.begin(), pkgs.end());
  while (!todo.empty()) {
    std::string p = todo.back();
    todo.pop_back();
    if (!seen.insert(p).second) continue;
    const std::string& deps = depends[p];
    for (std::sregex_iterator it(deps.begin(), deps.end(), name), end; it != end; ++it) {
      todo.push_back((*it)[2].str());
    }
  }
  return seen;
}

// In every debian:bookworm-slim image: the C library and the GCC runtime it needs.
const std::set<std::string> kBaseImagePackages = {"libc6", "libgcc-s1"};

class RuntimeLibsTest : public ::testing::TestWithParam<Component> {
 protected:
  void SetUp() override {
    if (!OnPath("dpkg") || !OnPath("ldd") || !OnPath("readelf")) {
      GTEST_SKIP() << "needs dpkg, ldd and readelf (Debian)";
    }
  }
};

TEST_P(RuntimeLibsTest, RuntimePackagesAreRealAndNotBuildTools) {
  std::vector<std::string> pkgs = Load(GetParam()).stages.back().AptPackages();
  ASSERT_FALSE(pkgs.empty());
  EXPECT_THAT(pkgs, Contains("ca-certificates"));  // TLS to the API server.
  for (const auto& p : pkgs) {
    EXPECT_EQ(p.find("-dev"), std::string::npos) << p;
    EXPECT_FALSE(p == "g++" || p == "cmake" || p == "make") << p;
    // This machine is Debian bookworm with the -dev packages, so each runtime
    // package is installed here; a typo or a wrong soname version fails.
    EXPECT_EQ(RunCommand("dpkg-query -W " + ShellQuote(p) + " >/dev/null 2>&1").exit_code, 0)
        << p << " is not a package installed here";
  }
}

// The static agent (`make agent-static`, when it has been run): no dynamic section,
// so the image's one runtime package (ca-certificates) is all it needs.
TEST_P(RuntimeLibsTest, StaticBinaryLoadsNoSharedLibrary) {
  const Component& c = GetParam();
  if (!c.is_static) GTEST_SKIP() << c.name << " is dynamically linked";
  if (RunCommand("test -x " + ShellQuote(c.binary)).exit_code != 0) {
    GTEST_SKIP() << c.binary << " not built (make agent-static)";
  }
  CommandResult r = RunCommand("readelf -d -l " + ShellQuote(c.binary) + " 2>&1");
  EXPECT_THAT(r.out, ::testing::HasSubstr("There is no dynamic section"));
  EXPECT_THAT(r.out, ::testing::Not(::testing::HasSubstr("INTERP")));
  EXPECT_THAT(Load(c).stages.back().AptPackages(), ::testing::ElementsAre("ca-certificates"));
}

TEST_P(RuntimeLibsTest, RuntimePackagesCoverEverySharedLibrary) {
  const Component& c = GetParam();
  if (c.is_static) GTEST_SKIP() << c.name << " is static: see StaticBinaryLoadsNoSharedLibrary";
  if (c.binary.empty()) GTEST_SKIP() << "no binary built for " << c.name;
  std::vector<std::string> listed = Load(c).stages.back().AptPackages();
  std::set<std::string> explicit_pkgs(listed.begin(), listed.end());
  explicit_pkgs.insert(kBaseImagePackages.begin(), kBaseImagePackages.end());
  std::vector<std::string> roots(explicit_pkgs.begin(), explicit_pkgs.end());
  std::set<std::string> closure = DependencyClosure(roots);

  std::map<std::string, std::string> libs = Ldd(c.binary);
  ASSERT_FALSE(libs.empty()) << c.binary << " is not dynamically linked?";
  std::set<std::string> needed = Needed(c.binary);
  std::vector<std::string> paths;
  for (const auto& [soname, path] : libs) paths.push_back(path);
  std::map<std::string, std::string> owners = OwningPackages(paths);
  for (const auto& [soname, path] : libs) {
    std::string pkg = owners[path];
    ASSERT_FALSE(pkg.empty()) << soname << " (" << path << ") belongs to no package";
    if (needed.count(soname)) {
      // Linked directly: name its package in the Dockerfile.
      EXPECT_TRUE(explicit_pkgs.count(pkg)) << c.binary << " links " << soname << " from " << pkg
                                            << ", which " << c.dockerfile << " does not install";
    } else {
      // Loaded through another library: apt brings it as a dependency.
      EXPECT_TRUE(closure.count(pkg))
          << soname << " from " << pkg << " is not pulled in by " << c.dockerfile;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Images, ImageTest, ::testing::ValuesIn(Components()),
                         [](const auto& info) {
                           return info.param.name == "ashiato-agent" ? std::string("Agent")
                                                                     : std::string("Aggregator");
                         });
INSTANTIATE_TEST_SUITE_P(Images, RuntimeLibsTest, ::testing::ValuesIn(Components()),
                         [](const auto& info) {
                           return info.param.name == "ashiato-agent" ? std::string("Agent")
                                                                     : std::string("Aggregator");
                         });

}  // namespace
}  // namespace ashiato::testing
