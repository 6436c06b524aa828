#include "tests/kubesim/resources.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace kubesim {
namespace {

const std::array<KindInfo, kKindCount> kKinds = {{
    {"pods", "Pod", "PodList", true, "po", "", "v1"},
    {"nodes", "Node", "NodeList", false, "no", "", "v1"},
    {"configmaps", "ConfigMap", "ConfigMapList", true, "cm", "", "v1"},
    {"namespaces", "Namespace", "NamespaceList", false, "ns", "", "v1"},
    {"serviceaccounts", "ServiceAccount", "ServiceAccountList", true, "sa", "", "v1"},
    {"roles", "Role", "RoleList", true, "", kRbacGroup, "rbac.authorization.k8s.io/v1"},
    {"clusterroles", "ClusterRole", "ClusterRoleList", false, "", kRbacGroup,
     "rbac.authorization.k8s.io/v1"},
    {"rolebindings", "RoleBinding", "RoleBindingList", true, "", kRbacGroup,
     "rbac.authorization.k8s.io/v1"},
    {"clusterrolebindings", "ClusterRoleBinding", "ClusterRoleBindingList", false, "", kRbacGroup,
     "rbac.authorization.k8s.io/v1"},
}};

// Field-selector fields beyond metadata.name/metadata.namespace, per kind,
// with their JSON path.
struct FieldPath {
  const char* field;
  std::vector<const char*> path;
};
const std::vector<FieldPath>& KindFields(Kind k) {
  static const std::vector<FieldPath> kPodFields = {
      {"spec.nodeName", {"spec", "nodeName"}},
      {"spec.restartPolicy", {"spec", "restartPolicy"}},
      {"spec.schedulerName", {"spec", "schedulerName"}},
      {"spec.serviceAccountName", {"spec", "serviceAccountName"}},
      {"spec.hostNetwork", {"spec", "hostNetwork"}},
      {"status.phase", {"status", "phase"}},
      {"status.podIP", {"status", "podIP"}},
      {"status.nominatedNodeName", {"status", "nominatedNodeName"}},
  };
  static const std::vector<FieldPath> kNodeFields = {
      {"spec.unschedulable", {"spec", "unschedulable"}}};
  static const std::vector<FieldPath> kNamespaceFields = {{"status.phase", {"status", "phase"}}};
  static const std::vector<FieldPath> kNone;
  switch (k) {
    case Kind::kPod:
      return kPodFields;
    case Kind::kNode:
      return kNodeFields;
    case Kind::kNamespace:
      return kNamespaceFields;
    default:
      return kNone;
  }
}

std::string FieldText(const nlohmann::json& obj, const std::vector<const char*>& path) {
  const nlohmann::json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object()) return "";
    auto it = cur->find(p);
    if (it == cur->end()) return "";
    cur = &*it;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_boolean()) return cur->get<bool>() ? "true" : "false";
  if (cur->is_null()) return "";
  return cur->dump();
}

bool IsDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return false;
  }
  auto alnum = [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c));
  };
  return alnum(s.front()) && alnum(s.back());
}

bool IsConfigMapKey(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'))
      return false;
  }
  return s != "." && s != "..";
}

}  // namespace

const KindInfo& Info(Kind k) { return kKinds[static_cast<int>(k)]; }

std::optional<Kind> KindFromResource(const std::string& resource, const std::string& group) {
  for (int i = 0; i < kKindCount; ++i) {
    if (resource == kKinds[i].resource && group == kKinds[i].group) return static_cast<Kind>(i);
  }
  return std::nullopt;
}

nlohmann::json ApiError::ToJson() const {
  nlohmann::json j = {
      {"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
      {"status", "Failure"}, {"message", message}, {"reason", reason},
      {"code", code}};
  if (!details.is_null() && !details.empty()) j["details"] = details;
  return j;
}

ApiError NotFoundError(Kind k, const std::string& name) {
  return {404,
          "NotFound",
          std::string(Info(k).resource) + " \"" + name + "\" not found",
          {{"name", name}, {"kind", Info(k).resource}}};
}

ApiError AlreadyExistsError(Kind k, const std::string& name) {
  return {409,
          "AlreadyExists",
          std::string(Info(k).resource) + " \"" + name + "\" already exists",
          {{"name", name}, {"kind", Info(k).resource}}};
}

ApiError ConflictError(Kind k, const std::string& name) {
  return {409,
          "Conflict",
          std::string("Operation cannot be fulfilled on ") + Info(k).resource + " \"" + name +
              "\": the object has been modified; please apply your changes to the latest version "
              "and try again",
          {{"name", name}, {"kind", Info(k).resource}}};
}

ApiError BadRequestError(const std::string& message) { return {400, "BadRequest", message, {}}; }

ApiError InvalidError(Kind k, const std::string& name, nlohmann::json causes) {
  std::string msg = std::string(Info(k).kind) + " \"" + name + "\" is invalid: ";
  bool first = true;
  for (const auto& c : causes) {
    if (!first) msg += ", ";
    first = false;
    msg += c.value("field", "") + ": " + c.value("message", "");
  }
  if (causes.size() > 1) {
    msg = std::string(Info(k).kind) + " \"" + name + "\" is invalid: [" +
          msg.substr(msg.find(": ") + 2) + "]";
  }
  return {422, "Invalid", msg, {{"name", name}, {"kind", Info(k).kind}, {"causes", causes}}};
}

ApiError ExpiredError(const std::string& message) { return {410, "Expired", message, {}}; }

ApiError MethodNotAllowedError() {
  return {405,
          "MethodNotAllowed",
          "the server does not allow this method on the requested resource",
          {}};
}

std::optional<std::string> Object::Field(const std::string& field) const {
  if (field == "metadata.name") return name;
  if (field == "metadata.namespace") return ns;
  for (const auto& [f, v] : fields) {
    if (f == field) return v;
  }
  return std::nullopt;
}

void Object::AppendListItem(std::string* out) const {
  out->push_back('{');
  out->append(json, 1 + list_skip, std::string::npos);
}

ObjectPtr MakeObject(Kind k, const nlohmann::json& obj) {
  auto o = std::make_shared<Object>();
  o->kind = k;
  o->json = obj.dump();
  // Keys are sorted: `{"apiVersion":"v1","kind":"Pod",` comes first.
  if (obj.contains("apiVersion") && obj.contains("kind")) {
    std::string prefix =
        "\"apiVersion\":" + obj["apiVersion"].dump() + ",\"kind\":" + obj["kind"].dump() + ",";
    if (o->json.compare(1, prefix.size(), prefix) == 0) o->list_skip = prefix.size();
  }
  const auto& md = obj["metadata"];
  o->name = md.value("name", "");
  o->ns = Info(k).namespaced ? md.value("namespace", "") : "";
  o->uid = md.value("uid", "");
  o->rv = std::stoull(md.value("resourceVersion", "0"));
  if (md.contains("labels") && md["labels"].is_object()) {
    for (const auto& [lk, lv] : md["labels"].items()) {
      if (lv.is_string()) o->labels[lk] = lv.get<std::string>();
    }
  }
  for (const auto& fp : KindFields(k)) o->fields.emplace_back(fp.field, FieldText(obj, fp.path));
  if (k == Kind::kPod) o->node = FieldText(obj, {"spec", "nodeName"});
  return o;
}

bool SupportedField(Kind k, const std::string& field) {
  if (field == "metadata.name" || field == "metadata.namespace") return true;
  for (const auto& fp : KindFields(k)) {
    if (field == fp.field) return true;
  }
  return false;
}

std::optional<ApiError> Validate(Kind k, const nlohmann::json& obj) {
  nlohmann::json causes = nlohmann::json::array();
  std::string name = obj["metadata"].value("name", "");
  if (!IsDnsSubdomain(name) || (k == Kind::kNamespace && name.size() > 63)) {
    causes.push_back(
        {{"reason", "FieldValueInvalid"},
         {"field", "metadata.name"},
         {"message",
          "Invalid value: \"" + name +
              "\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
              "characters, '-' or '.', and must start and end with an alphanumeric character "
              "(e.g. 'example.com', regex used for validation is "
              "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"}});
  }
  if (obj["metadata"].contains("labels") && !obj["metadata"]["labels"].is_object() &&
      !obj["metadata"]["labels"].is_null()) {
    causes.push_back({{"reason", "FieldValueInvalid"},
                      {"field", "metadata.labels"},
                      {"message", "Invalid value: must be a map"}});
  }
  if (k == Kind::kConfigMap) {
    size_t total = 0;
    for (const char* section : {"data", "binaryData"}) {
      if (!obj.contains(section) || obj[section].is_null()) continue;
      if (!obj[section].is_object()) {
        causes.push_back({{"reason", "FieldValueInvalid"},
                          {"field", section},
                          {"message", "Invalid value: must be a map of strings"}});
        continue;
      }
      for (const auto& [key, value] : obj[section].items()) {
        if (!IsConfigMapKey(key)) {
          causes.push_back(
              {{"reason", "FieldValueInvalid"},
               {"field", std::string(section) + "[" + key + "]"},
               {"message",
                "Invalid value: \"" + key +
                    "\": a valid config key must consist of alphanumeric characters, '-', '_' or "
                    "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                    "validation is '[-._a-zA-Z0-9]+')"}});
        }
        if (!value.is_string()) {
          causes.push_back({{"reason", "FieldValueInvalid"},
                            {"field", std::string(section) + "[" + key + "]"},
                            {"message", "Invalid value: must be a string"}});
          continue;
        }
        // binaryData is base64 on the wire; the limit counts decoded bytes.
        size_t vlen = value.get_ref<const std::string&>().size();
        if (std::string(section) == "binaryData") vlen = vlen / 4 * 3;
        total += key.size() + vlen;
      }
    }
    if (total > kMaxConfigMapBytes) {
      causes.push_back({{"reason", "FieldValueTooLong"},
                        {"field", "[]"},
                        {"message", "Too long: must have at most 1048576 bytes"}});
    }
  }
  if (k == Kind::kPod) {
    const auto& spec = obj.contains("spec") ? obj["spec"] : nlohmann::json();
    if (!spec.is_object() || !spec.contains("containers") || !spec["containers"].is_array() ||
        spec["containers"].empty()) {
      causes.push_back({{"reason", "FieldValueRequired"},
                        {"field", "spec.containers"},
                        {"message", "Required value"}});
    } else {
      for (size_t i = 0; i < spec["containers"].size(); ++i) {
        const auto& c = spec["containers"][i];
        if (!c.is_object() || c.value("name", "").empty()) {
          causes.push_back({{"reason", "FieldValueRequired"},
                            {"field", "spec.containers[" + std::to_string(i) + "].name"},
                            {"message", "Required value"}});
        }
        if (!c.is_object() || c.value("image", "").empty()) {
          causes.push_back({{"reason", "FieldValueRequired"},
                            {"field", "spec.containers[" + std::to_string(i) + "].image"},
                            {"message", "Required value"}});
        }
      }
    }
  }
  if (k == Kind::kRoleBinding || k == Kind::kClusterRoleBinding) {
    const auto& ref = obj.contains("roleRef") ? obj["roleRef"] : nlohmann::json();
    std::string kind = ref.is_object() ? ref.value("kind", "") : "";
    if (!ref.is_object() || ref.value("name", "").empty()) {
      causes.push_back({{"reason", "FieldValueRequired"},
                        {"field", "roleRef.name"},
                        {"message", "Required value"}});
    }
    if (kind != "ClusterRole" && (kind != "Role" || k == Kind::kClusterRoleBinding)) {
      causes.push_back(
          {{"reason", "FieldValueNotSupported"},
           {"field", "roleRef.kind"},
           {"message", "Unsupported value: \"" + kind + "\": supported values: " +
                           (k == Kind::kRoleBinding ? "\"Role\", " : "") + "\"ClusterRole\""}});
    }
  }
  if (causes.empty()) return std::nullopt;
  return InvalidError(k, name, causes);
}

}  // namespace kubesim
