#include "tests/kubesim/rbac.h"

#include <algorithm>

namespace kubesim {
namespace {

using json = nlohmann::json;

bool Has(const json& list, const std::string& v) {
  if (!list.is_array()) return false;
  for (const auto& e : list) {
    if (e.is_string() && e.get<std::string>() == v) return true;
  }
  return false;
}

bool RuleMatches(const json& rule, const RbacRequest& r) {
  if (!Has(rule.value("verbs", json::array()), r.verb) &&
      !Has(rule.value("verbs", json::array()), "*")) {
    return false;
  }
  if (!r.path.empty()) {
    for (const auto& u : rule.value("nonResourceURLs", json::array())) {
      if (!u.is_string()) continue;
      std::string url = u.get<std::string>();
      if (url == "*" || url == r.path) return true;
      if (!url.empty() && url.back() == '*' &&
          r.path.compare(0, url.size() - 1, url, 0, url.size() - 1) == 0) {
        return true;
      }
    }
    return false;
  }
  json groups = rule.value("apiGroups", json::array());
  if (!Has(groups, r.group) && !Has(groups, "*")) return false;
  json resources = rule.value("resources", json::array());
  std::string combined = r.subresource.empty() ? r.resource : r.resource + "/" + r.subresource;
  bool resource_ok = Has(resources, "*") || Has(resources, combined) ||
                     (!r.subresource.empty() && Has(resources, "*/" + r.subresource));
  if (!resource_ok) return false;
  json names = rule.value("resourceNames", json::array());
  if (names.is_array() && !names.empty()) return !r.name.empty() && Has(names, r.name);
  return true;
}

bool SubjectMatches(const json& s, const RbacUser& u, const std::string& binding_ns) {
  std::string kind = s.value("kind", ""), name = s.value("name", "");
  if (kind == "User") return name == u.name;
  if (kind == "Group") return std::find(u.groups.begin(), u.groups.end(), name) != u.groups.end();
  if (kind == "ServiceAccount") {
    std::string ns = s.value("namespace", binding_ns);
    return u.name == "system:serviceaccount:" + ns + ":" + name;
  }
  return false;
}

std::string SubjectText(const json& s, const std::string& binding_ns) {
  std::string kind = s.value("kind", "");
  if (kind == "ServiceAccount") {
    return "ServiceAccount \"" + s.value("namespace", binding_ns) + "/" + s.value("name", "") +
           "\"";
  }
  return kind + " \"" + s.value("name", "") + "\"";
}

// The rules of a binding's role; empty if the role does not exist.
json RulesOf(Store& store, const json& binding, const std::string& binding_ns) {
  const json& ref = binding.value("roleRef", json::object());
  std::string kind = ref.value("kind", ""), name = ref.value("name", "");
  ApiOr<ObjectPtr> role = kind == "Role" ? store.Get(Kind::kRole, binding_ns, name)
                                         : store.Get(Kind::kClusterRole, "", name);
  if (!role.ok()) return json::array();
  json j = json::parse((*role)->json, nullptr, false);
  return j.is_object() ? j.value("rules", json::array()) : json::array();
}

// Whether any binding of `kind` (in `ns`) grants the request; fills `why`.
bool Granted(Store& store, Kind kind, const std::string& ns, const RbacUser& u,
             const RbacRequest& r, std::string* why) {
  ListOptions lo;
  lo.ns = ns;
  auto bindings = store.List(kind, lo);
  if (!bindings.ok()) return false;
  for (const auto& o : bindings->items) {
    json b = json::parse(o->json, nullptr, false);
    if (!b.is_object()) continue;
    for (const auto& s : b.value("subjects", json::array())) {
      if (!SubjectMatches(s, u, o->ns)) continue;
      for (const auto& rule : RulesOf(store, b, o->ns)) {
        if (!RuleMatches(rule, r)) continue;
        const json& ref = b.value("roleRef", json::object());
        *why = "RBAC: allowed by " + std::string(Info(kind).kind) + " \"" + o->name + "\" of " +
               ref.value("kind", "") + " \"" + ref.value("name", "") + "\" to " +
               SubjectText(s, o->ns);
        return true;
      }
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> ServiceAccountGroups(const std::string& ns) {
  return {"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"};
}

RbacDecision Authorize(Store& store, const RbacUser& u, const RbacRequest& r) {
  if (std::find(u.groups.begin(), u.groups.end(), "system:masters") != u.groups.end()) {
    return {true, ""};
  }
  RbacDecision d;
  if (Granted(store, Kind::kClusterRoleBinding, "", u, r, &d.reason)) {
    d.allowed = true;
  } else if (r.path.empty() && !r.ns.empty() &&
             Granted(store, Kind::kRoleBinding, r.ns, u, r, &d.reason)) {
    d.allowed = true;
  }
  return d;
}

std::string ForbiddenMessage(const RbacUser& u, const RbacRequest& r) {
  std::string who = "User \"" + u.name + "\"";
  if (!r.path.empty()) {
    return "forbidden: " + who + " cannot " + r.verb + " path \"" + r.path + "\"";
  }
  std::string what = r.subresource.empty() ? r.resource : r.resource + "/" + r.subresource;
  std::string msg = r.resource + (r.name.empty() ? "" : " \"" + r.name + "\"") +
                    " is forbidden: " + who + " cannot " + r.verb + " resource \"" + what +
                    "\" in API group \"" + r.group + "\"";
  msg += r.ns.empty() ? " at the cluster scope" : " in the namespace \"" + r.ns + "\"";
  return msg;
}

}  // namespace kubesim
