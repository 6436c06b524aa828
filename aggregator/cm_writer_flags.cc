#include "aggregator/cm_writer_flags.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>

#include "common/byte_size.h"
#include "common/duration.h"

namespace ashiato {

std::string DefaultConfigMapNamespace(const std::string& sa_namespace_file) {
  std::ifstream in(sa_namespace_file);
  std::string ns;
  if (in && std::getline(in, ns)) {
    while (!ns.empty() && std::isspace(static_cast<unsigned char>(ns.back()))) ns.pop_back();
    if (!ns.empty()) return ns;
  }
  return "default";
}

namespace {

void AddFlags(CLI::App& app, ConfigMapWriterOptions& options, const std::string& default_namespace,
              const std::string& namespace_help) {
  options.namespace_ = default_namespace;
  app.add_flag("--store-in-cm,!--no-store-in-cm", options.enabled,
               "Write hourly pod-ashiato-YYYYMMDDHH ConfigMaps (pod -> node per UTC hour)");
  app.add_option("--cm-namespace", options.namespace_, namespace_help)->capture_default_str();
  auto duration = [](std::chrono::milliseconds* out) {
    return [out](const std::string& text) {
      auto d = ParseDuration(text);
      if (!d) throw CLI::ValidationError("bad duration \"" + text + "\" (e.g. 10s, 500ms, 7d)");
      *out = *d;
    };
  };
  app.add_option_function<std::string>("--cm-debounce", duration(&options.debounce),
                                       "Write changed shards at most once per this interval "
                                       "(default 10s)");
  app.add_option_function<std::string>(
      "--cm-retention",
      [&options](const std::string& text) {
        auto d = ParseDuration(text);
        if (!d) throw CLI::ValidationError("bad duration \"" + text + "\" (e.g. 168h, 7d, 0)");
        options.retention = std::chrono::duration_cast<std::chrono::hours>(*d);
        if (d->count() > 0 && options.retention.count() == 0) {
          options.retention = std::chrono::hours(1);
        }
      },
      "Delete hourly ConfigMaps older than this, 0 keeps them (default 7d)");
  app.add_option_function<std::string>(
      "--cm-max-bytes",
      [&options](const std::string& text) {
        auto bytes = ParseByteSize(text);
        if (!bytes) {
          throw CLI::ValidationError("bad size \"" + text + "\" (e.g. 128Mi, 1Gi, 500MB, 0)");
        }
        options.max_total_bytes = *bytes;
      },
      "Byte budget for all hourly ConfigMaps together: over it the oldest hours are deleted "
      "(never the current one); 0: no budget (default 128Mi)");
}

}  // namespace

void AddConfigMapFlags(CLI::App& app, ConfigMapWriterOptions& options) {
  AddFlags(app, options, DefaultConfigMapNamespace(),
           "Namespace of the hourly ConfigMaps (default: own namespace in a pod, "
           "else \"default\")");
}

void AddConfigMapFlags(CLI::App& app, ConfigMapWriterOptions& options,
                       const std::string& default_namespace) {
  AddFlags(app, options, default_namespace, "Namespace of the hourly ConfigMaps");
}

}  // namespace ashiato
