#include "tests/kubesim/tables.h"

#include <chrono>

#include "common/time_util.h"

namespace kubesim {
namespace {

using json = nlohmann::json;

json Col(const char* name, const char* type, int priority, const char* format = "") {
  return {{"name", name},
          {"type", type},
          {"format", format},
          {"description", ""},
          {"priority", priority}};
}

json Columns(Kind k) {
  switch (k) {
    case Kind::kPod:
      return json::array({Col("Name", "string", 0, "name"), Col("Ready", "string", 0),
                          Col("Status", "string", 0), Col("Restarts", "string", 0),
                          Col("Age", "string", 0), Col("IP", "string", 1), Col("Node", "string", 1),
                          Col("Nominated Node", "string", 1), Col("Readiness Gates", "string", 1)});
    case Kind::kNode:
      return json::array(
          {Col("Name", "string", 0, "name"), Col("Status", "string", 0), Col("Roles", "string", 0),
           Col("Age", "string", 0), Col("Version", "string", 0), Col("Internal-IP", "string", 1),
           Col("External-IP", "string", 1), Col("OS-Image", "string", 1),
           Col("Kernel-Version", "string", 1), Col("Container-Runtime", "string", 1)});
    case Kind::kConfigMap:
      return json::array(
          {Col("Name", "string", 0, "name"), Col("Data", "integer", 0), Col("Age", "string", 0)});
    case Kind::kNamespace:
      return json::array(
          {Col("Name", "string", 0, "name"), Col("Status", "string", 0), Col("Age", "string", 0)});
    case Kind::kServiceAccount:
      return json::array({Col("Name", "string", 0, "name"), Col("Secrets", "integer", 0),
                          Col("Age", "string", 0)});
    case Kind::kRole:
    case Kind::kClusterRole:
      return json::array({Col("Name", "string", 0, "name"), Col("Created At", "date", 0)});
    case Kind::kRoleBinding:
    case Kind::kClusterRoleBinding:
      return json::array({Col("Name", "string", 0, "name"), Col("Role", "string", 0),
                          Col("Age", "string", 0), Col("Users", "string", 1),
                          Col("Groups", "string", 1), Col("ServiceAccounts", "string", 1)});
    default:
      return json::array();
  }
}

std::string Age(const json& md) {
  auto t = ashiato::ParseRfc3339(md.value("creationTimestamp", ""));
  if (!t) return "<unknown>";
  auto secs =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *t)
          .count();
  return HumanDuration(secs);
}

std::string Str(const json& j, std::initializer_list<const char*> path,
                const std::string& def = "<none>") {
  const json* cur = &j;
  for (const char* p : path) {
    if (!cur->is_object() || !cur->contains(p)) return def;
    cur = &(*cur)[p];
  }
  if (cur->is_string() && !cur->get<std::string>().empty()) return cur->get<std::string>();
  return def;
}

json Cells(Kind k, const json& o) {
  const json& md = o["metadata"];
  std::string name = md.value("name", "");
  switch (k) {
    case Kind::kPod: {
      int total = 0, ready = 0, restarts = 0;
      if (o.contains("spec") && o["spec"].contains("containers"))
        total = static_cast<int>(o["spec"]["containers"].size());
      std::string reason = Str(o, {"status", "reason"}, Str(o, {"status", "phase"}, "Pending"));
      if (o.contains("status") && o["status"].contains("containerStatuses")) {
        for (const auto& cs : o["status"]["containerStatuses"]) {
          if (cs.value("ready", false)) ++ready;
          restarts += cs.value("restartCount", 0);
          if (cs.contains("state") && cs["state"].contains("waiting")) {
            reason = cs["state"]["waiting"].value("reason", reason);
          }
        }
      }
      if (md.contains("deletionTimestamp")) reason = "Terminating";
      return json::array({name, std::to_string(ready) + "/" + std::to_string(total), reason,
                          std::to_string(restarts), Age(md), Str(o, {"status", "podIP"}),
                          Str(o, {"spec", "nodeName"}), Str(o, {"status", "nominatedNodeName"}),
                          "<none>"});
    }
    case Kind::kNode: {
      std::string status = "Unknown";
      std::string internal = "<none>", external = "<none>";
      if (o.contains("status")) {
        for (const auto& c : o["status"].value("conditions", json::array())) {
          if (c.value("type", "") == "Ready")
            status = c.value("status", "") == "True" ? "Ready" : "NotReady";
        }
        for (const auto& a : o["status"].value("addresses", json::array())) {
          if (a.value("type", "") == "InternalIP") internal = a.value("address", "");
          if (a.value("type", "") == "ExternalIP") external = a.value("address", "");
        }
      }
      if (o.contains("spec") && o["spec"].value("unschedulable", false))
        status += ",SchedulingDisabled";
      std::string roles = "<none>";
      if (md.contains("labels")) {
        for (const auto& [lk, lv] : md["labels"].items()) {
          const std::string p = "node-role.kubernetes.io/";
          if (lk.rfind(p, 0) == 0)
            roles = roles == "<none>" ? lk.substr(p.size()) : roles + "," + lk.substr(p.size());
        }
      }
      return json::array({name, status, roles, Age(md),
                          Str(o, {"status", "nodeInfo", "kubeletVersion"}), internal, external,
                          Str(o, {"status", "nodeInfo", "osImage"}, "<unknown>"),
                          Str(o, {"status", "nodeInfo", "kernelVersion"}, "<unknown>"),
                          Str(o, {"status", "nodeInfo", "containerRuntimeVersion"}, "<unknown>")});
    }
    case Kind::kConfigMap: {
      size_t n = 0;
      if (o.contains("data") && o["data"].is_object()) n += o["data"].size();
      if (o.contains("binaryData") && o["binaryData"].is_object()) n += o["binaryData"].size();
      return json::array({name, n, Age(md)});
    }
    case Kind::kNamespace:
      return json::array({name, Str(o, {"status", "phase"}, "Active"), Age(md)});
    case Kind::kServiceAccount:
      return json::array({name, o.contains("secrets") ? o["secrets"].size() : 0, Age(md)});
    case Kind::kRole:
    case Kind::kClusterRole:
      return json::array({name, md.value("creationTimestamp", "")});
    case Kind::kRoleBinding:
    case Kind::kClusterRoleBinding: {
      std::string users, groups, sas;
      auto add = [](std::string& list, const std::string& v) {
        list += (list.empty() ? "" : ", ") + v;
      };
      for (const auto& s : o.value("subjects", json::array())) {
        std::string kind = s.value("kind", "");
        if (kind == "User") add(users, s.value("name", ""));
        if (kind == "Group") add(groups, s.value("name", ""));
        if (kind == "ServiceAccount")
          add(sas, s.value("namespace", "") + "/" + s.value("name", ""));
      }
      std::string role = Str(o, {"roleRef", "kind"}, "") + "/" + Str(o, {"roleRef", "name"}, "");
      return json::array({name, role, Age(md), users, groups, sas});
    }
    default:
      return json::array({name});
  }
}

json Row(const Object& obj, TableMode mode) {
  json o = json::parse(obj.json);
  json row = {{"cells", Cells(obj.kind, o)}};
  if (mode == TableMode::kObject) {
    row["object"] = o;
  } else if (mode == TableMode::kPartialMetadata) {
    json md = o["metadata"];
    md.erase("managedFields");
    row["object"] = {
        {"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", md}};
  }
  return row;
}

}  // namespace

TableMode ParseIncludeObject(const std::string& value) {
  if (value == "Object") return TableMode::kObject;
  if (value == "None") return TableMode::kNoObject;
  return TableMode::kPartialMetadata;
}

std::string HumanDuration(long long s) {
  if (s < 0) s = 0;
  if (s < 120) return std::to_string(s) + "s";
  long long m = s / 60;
  if (m < 10) return std::to_string(m) + "m" + (s % 60 ? std::to_string(s % 60) + "s" : "");
  if (m < 180) return std::to_string(m) + "m";
  long long h = m / 60;
  if (h < 8) return std::to_string(h) + "h" + (m % 60 ? std::to_string(m % 60) + "m" : "");
  if (h < 48) return std::to_string(h) + "h";
  if (h < 24 * 8)
    return std::to_string(h / 24) + "d" + (h % 24 ? std::to_string(h % 24) + "h" : "");
  if (h < 24 * 365 * 2) return std::to_string(h / 24) + "d";
  return std::to_string(h / 24 / 365) + "y";
}

std::string TableListJson(Kind k, const std::vector<ObjectPtr>& items, uint64_t rv,
                          const std::string& continue_token, TableMode mode) {
  json t = {{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}, {"columnDefinitions", Columns(k)}};
  t["metadata"] = {{"resourceVersion", std::to_string(rv)}};
  if (!continue_token.empty()) t["metadata"]["continue"] = continue_token;
  json rows = json::array();
  for (const auto& o : items) rows.push_back(Row(*o, mode));
  t["rows"] = std::move(rows);
  return t.dump();
}

std::string TableEventLine(const char* type, const Object& obj, TableMode mode) {
  json t = {{"kind", "Table"},
            {"apiVersion", "meta.k8s.io/v1"},
            {"metadata", {{"resourceVersion", std::to_string(obj.rv)}}},
            {"columnDefinitions", Columns(obj.kind)},
            {"rows", json::array({Row(obj, mode)})}};
  return EventLine(type, t.dump());
}

}  // namespace kubesim
