#include "aggregator/cm_writer_flags.h"

#include <cctype>
#include <fstream>

namespace ashiato {

std::optional<std::chrono::milliseconds> ParseFlagDuration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (text == "0") return std::chrono::milliseconds(0);
  long long total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start || i - start > 12) return std::nullopt;
    long long n = std::stoll(text.substr(start, i - start));
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = text.substr(unit_start, i - unit_start);
    long long scale;
    if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60 * 1000;
    } else if (unit == "h") {
      scale = 3600 * 1000;
    } else if (unit == "d") {
      scale = 24LL * 3600 * 1000;
    } else {
      return std::nullopt;
    }
    total_ms += n * scale;
  }
  return std::chrono::milliseconds(total_ms);
}

std::string DefaultConfigMapNamespace(const std::string& sa_namespace_file) {
  std::ifstream in(sa_namespace_file);
  std::string ns;
  if (in && std::getline(in, ns)) {
    while (!ns.empty() && std::isspace(static_cast<unsigned char>(ns.back()))) ns.pop_back();
    if (!ns.empty()) return ns;
  }
  return "default";
}

void AddConfigMapFlags(CLI::App& app, ConfigMapWriterOptions& options) {
  options.namespace_ = DefaultConfigMapNamespace();
  app.add_flag("--store-in-cm,!--no-store-in-cm", options.enabled,
               "Write hourly pod-ashiato-YYYYMMDDHH ConfigMaps (pod -> node per UTC hour)");
  app.add_option("--cm-namespace", options.namespace_,
                 "Namespace of the hourly ConfigMaps (default: own namespace in a pod, "
                 "else \"default\")")
      ->capture_default_str();
  auto duration = [](std::chrono::milliseconds* out) {
    return [out](const std::string& text) {
      auto d = ParseFlagDuration(text);
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
        auto d = ParseFlagDuration(text);
        if (!d) throw CLI::ValidationError("bad duration \"" + text + "\" (e.g. 168h, 7d, 0)");
        options.retention = std::chrono::duration_cast<std::chrono::hours>(*d);
        if (d->count() > 0 && options.retention.count() == 0) {
          options.retention = std::chrono::hours(1);
        }
      },
      "Delete hourly ConfigMaps older than this, 0 keeps them (default 7d)");
}

}  // namespace ashiato
