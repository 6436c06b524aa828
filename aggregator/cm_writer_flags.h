// Command-line flags of the hourly ConfigMap writer, so the aggregator and
// the standalone agent (docs/agent.md) wire them with one call:
//   --store-in-cm, --cm-namespace, --cm-debounce, --cm-retention, --cm-max-bytes.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "aggregator/cm_writer.h"

namespace ashiato {

// Registers the flags on `app`, writing into `options`. --cm-namespace
// defaults to `default_namespace`.
void AddConfigMapFlags(CLI::App& app, ConfigMapWriterOptions& options,
                       const std::string& default_namespace);
// As above, --cm-namespace defaulting to DefaultConfigMapNamespace() (the aggregator's).
void AddConfigMapFlags(CLI::App& app, ConfigMapWriterOptions& options);

// The namespace in the service account's namespace file (in a pod), else "default".
std::string DefaultConfigMapNamespace(
    const std::string& sa_namespace_file =
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace");

}  // namespace ashiato
