// A small Dockerfile reader: enough to check our own Dockerfiles (stages, ARG
// defaults, LABELs, RUN commands, apt-get install lists) without a container engine.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ashiato::testing {

struct DockerInstruction {
  std::string keyword;  // Upper case: "FROM", "RUN", "COPY", ...
  std::string args;     // The rest, continuation lines joined with a space.
};

struct DockerStage {
  std::string base;                             // FROM image, e.g. "debian:bookworm".
  std::string name;                             // The AS name, empty if none.
  std::vector<DockerInstruction> instructions;  // After FROM.

  // Every instruction with this keyword, in order.
  std::vector<std::string> All(const std::string& keyword) const;
  // LABEL key -> value (quotes removed, ${VAR} not expanded).
  std::map<std::string, std::string> Labels() const;
  // Packages named after `apt-get install` in RUN instructions (options skipped).
  std::vector<std::string> AptPackages() const;
  // Shell commands of RUN instructions, split on && and ;, trimmed.
  std::vector<std::string> RunCommands() const;
};

struct Dockerfile {
  std::map<std::string, std::string> global_args;  // ARG NAME=default before the first FROM.
  std::vector<DockerStage> stages;
};

// Parses Dockerfile text. Comment lines (also inside continuations) are dropped.
Dockerfile ParseDockerfile(const std::string& text);

// Reads a whole file; empty string if it cannot be read.
std::string ReadFile(const std::string& path);

}  // namespace ashiato::testing
