// LiveConfig: what an operator changes without restarting anything, read
// from a ConfigMap (--config-map NAMESPACE/NAME, docs/live-config.md):
//
//   namespaces          namespaces in scope: names or globs ("*-system"),
//                       comma- or newline-separated; empty = every namespace
//   excludeNamespaces   names or globs taken out of scope (win over namespaces)
//   labelSelector       pods in scope must match it (API server syntax)
//   captureAnnotations  annotations the agents record (as --capture-annotations)
//   logFormat           the aggregator's unified log: "json" (default) or "text"
//
// A key that is absent keeps the value the process was started with. An
// unknown key is refused like a bad value: a typo ("namespace") must not
// silently change what is recorded.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/annotation_capture.h"
#include "common/label_selector.h"
#include "common/status.h"

namespace ashiato {

// Which pods the outputs (unified log, ConfigMaps) report.
class PodScope {
 public:
  // Everything.
  PodScope() = default;
  // InvalidArgument for a glob that cannot match a namespace name, or a bad
  // selector.
  static Result<PodScope> Make(std::vector<std::string> include, std::vector<std::string> exclude,
                               const std::string& label_selector);

  bool Contains(const std::string& namespace_,
                const std::map<std::string, std::string>& labels) const;
  // The namespace part only (for pods whose labels are no longer known).
  bool ContainsNamespace(const std::string& namespace_) const;
  bool everything() const { return include_.empty() && exclude_.empty() && selector_.empty(); }
  // One line that identifies the scope ("" for everything), for logs, diffs
  // and the store: two scopes are equal iff their Canonical() are.
  std::string Canonical() const;
  // The inverse of Canonical().
  static Result<PodScope> FromCanonical(const std::string& text);

  const std::vector<std::string>& include() const { return include_; }
  const std::vector<std::string>& exclude() const { return exclude_; }
  const std::string& label_selector() const { return selector_text_; }

 private:
  std::vector<std::string> include_, exclude_;  // Sorted, unique.
  std::string selector_text_;
  LabelSelector selector_;
};

enum class LogFormat { kJson, kText };

struct LiveConfig {
  PodScope scope;
  // Entries as given (sorted), and their parsed form.
  std::vector<std::string> capture_entries;
  AnnotationCapture capture;
  LogFormat log_format = LogFormat::kJson;
};

// `data` over `base` (the flags' values). InvalidArgument names the key.
Result<LiveConfig> ParseLiveConfig(const std::map<std::string, std::string>& data,
                                   const LiveConfig& base);

// What differs, one "key: before -> after" per changed key (empty: same).
std::vector<std::string> LiveConfigChanges(const LiveConfig& before, const LiveConfig& after);

// "NAMESPACE/NAME" -> {namespace, name}; InvalidArgument otherwise.
Result<std::pair<std::string, std::string>> ParseConfigMapRef(const std::string& ref);

}  // namespace ashiato
