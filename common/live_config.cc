#include "common/live_config.h"

#include <fnmatch.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace ashiato {
namespace {

// "a, b\nc" -> {"a", "b", "c"}: commas, newlines and blanks separate.
std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == ',' || c == '\n' || c == '\r' || c == ' ' || c == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

void SortUnique(std::vector<std::string>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

// A namespace name or a shell glob that could match one.
Status CheckNamespaceGlob(const std::string& key, const std::string& glob) {
  bool ok = !glob.empty() && glob.size() <= 63;
  for (char c : glob) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '*' || c == '?' ||
          c == '[' || c == ']' || c == '!')) {
      ok = false;
    }
  }
  if (ok) return Status::Ok();
  return InvalidArgument(key + ": \"" + glob +
                         "\" is neither a namespace name nor a glob of one (lower-case letters, "
                         "digits, '-', and * ? [...])");
}

bool MatchesAny(const std::vector<std::string>& globs, const std::string& ns) {
  for (const auto& g : globs) {
    if (g == ns || fnmatch(g.c_str(), ns.c_str(), 0) == 0) return true;
  }
  return false;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

const char* FormatName(LogFormat f) { return f == LogFormat::kText ? "text" : "json"; }

}  // namespace

Result<PodScope> PodScope::Make(std::vector<std::string> include, std::vector<std::string> exclude,
                                const std::string& label_selector) {
  PodScope s;
  for (const auto& g : include) {
    Status st = CheckNamespaceGlob("namespaces", g);
    if (!st.ok()) return st;
  }
  for (const auto& g : exclude) {
    Status st = CheckNamespaceGlob("excludeNamespaces", g);
    if (!st.ok()) return st;
  }
  auto selector = LabelSelector::Parse(label_selector);
  if (!selector.ok()) return InvalidArgument("labelSelector: " + selector.status().message());
  SortUnique(&include);
  SortUnique(&exclude);
  s.include_ = std::move(include);
  s.exclude_ = std::move(exclude);
  s.selector_text_ = label_selector;
  s.selector_ = std::move(*selector);
  return s;
}

bool PodScope::ContainsNamespace(const std::string& namespace_) const {
  if (!include_.empty() && !MatchesAny(include_, namespace_)) return false;
  return !MatchesAny(exclude_, namespace_);
}

bool PodScope::Contains(const std::string& namespace_,
                        const std::map<std::string, std::string>& labels) const {
  return ContainsNamespace(namespace_) && selector_.Matches(labels);
}

std::string PodScope::Canonical() const {
  if (everything()) return "";
  return nlohmann::json{
      {"namespaces", include_}, {"excludeNamespaces", exclude_}, {"labelSelector", selector_text_}}
      .dump();
}

Result<PodScope> PodScope::FromCanonical(const std::string& text) {
  if (text.empty()) return PodScope();
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return InvalidArgument("scope: not a JSON object");
  try {
    return Make(j.value("namespaces", std::vector<std::string>{}),
                j.value("excludeNamespaces", std::vector<std::string>{}),
                j.value("labelSelector", std::string()));
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("scope: ") + e.what());
  }
}

Result<LiveConfig> ParseLiveConfig(const std::map<std::string, std::string>& data,
                                   const LiveConfig& base) {
  static const char* const kKeys[] = {"namespaces", "excludeNamespaces", "labelSelector",
                                      "captureAnnotations", "logFormat"};
  for (const auto& [key, value] : data) {
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      return InvalidArgument("unknown key \"" + key +
                             "\" (known: namespaces, excludeNamespaces, labelSelector, "
                             "captureAnnotations, logFormat)");
    }
  }
  auto get = [&](const char* key) -> const std::string* {
    auto it = data.find(key);
    return it == data.end() ? nullptr : &it->second;
  };
  LiveConfig c = base;
  std::vector<std::string> include = base.scope.include(), exclude = base.scope.exclude();
  std::string selector = base.scope.label_selector();
  if (auto* v = get("namespaces")) include = SplitList(*v);
  if (auto* v = get("excludeNamespaces")) exclude = SplitList(*v);
  if (auto* v = get("labelSelector")) selector = *v;
  // Trim, so that a YAML block scalar's trailing newline is not a change.
  selector.erase(0, selector.find_first_not_of(" \t\r\n"));
  selector.erase(selector.find_last_not_of(" \t\r\n") + 1);
  auto scope = PodScope::Make(std::move(include), std::move(exclude), selector);
  if (!scope.ok()) return scope.status();
  c.scope = std::move(*scope);
  if (auto* v = get("captureAnnotations")) {
    c.capture_entries = SplitList(*v);
    SortUnique(&c.capture_entries);
    auto capture = AnnotationCapture::Parse(c.capture_entries);
    if (!capture.ok()) return InvalidArgument("captureAnnotations: " + capture.status().message());
    c.capture = std::move(*capture);
  }
  if (auto* v = get("logFormat")) {
    std::vector<std::string> words = SplitList(*v);
    std::string f = words.size() == 1 ? words[0] : *v;
    if (f == "json") {
      c.log_format = LogFormat::kJson;
    } else if (f == "text") {
      c.log_format = LogFormat::kText;
    } else {
      return InvalidArgument("logFormat: \"" + *v + "\" is neither json nor text");
    }
  }
  return c;
}

std::vector<std::string> LiveConfigChanges(const LiveConfig& before, const LiveConfig& after) {
  std::vector<std::string> out;
  auto add = [&](const char* key, const std::string& a, const std::string& b) {
    if (a != b) out.push_back(std::string(key) + ": \"" + a + "\" -> \"" + b + "\"");
  };
  add("namespaces", Joined(before.scope.include()), Joined(after.scope.include()));
  add("excludeNamespaces", Joined(before.scope.exclude()), Joined(after.scope.exclude()));
  add("labelSelector", before.scope.label_selector(), after.scope.label_selector());
  add("captureAnnotations", Joined(before.capture_entries), Joined(after.capture_entries));
  add("logFormat", FormatName(before.log_format), FormatName(after.log_format));
  return out;
}

Result<std::pair<std::string, std::string>> ParseConfigMapRef(const std::string& ref) {
  size_t slash = ref.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == ref.size() ||
      ref.find('/', slash + 1) != std::string::npos) {
    return InvalidArgument("--config-map: \"" + ref + "\" is not NAMESPACE/NAME");
  }
  return std::make_pair(ref.substr(0, slash), ref.substr(slash + 1));
}

}  // namespace ashiato
