// Runs a shell command and captures its stdout, for tests that drive external tools
// (kubectl kustomize, ldd, dpkg). Test-only: no timeout, no stdin.
#pragma once

#include <string>

namespace ashiato::testing {

struct CommandResult {
  int exit_code = -1;  // The shell's exit status; -1 if it could not be started.
  std::string out;     // Everything written to stdout.
};

// Runs `command` with /bin/sh -c; stderr is passed through to the test's stderr.
CommandResult RunCommand(const std::string& command);

// Quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

// Returns true iff `program` is found on PATH.
bool OnPath(const std::string& program);

}  // namespace ashiato::testing
