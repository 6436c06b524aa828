#include "tests/kubesim/protobuf.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string_view>

#include "common/base64.h"

namespace kubesim {
namespace {

using ashiato::Base64Encode;

using json = nlohmann::json;

// A field of a protobuf message: number, wire type and value.
struct Field {
  int number = 0;
  int wire = 0;
  uint64_t varint = 0;
  std::string_view bytes;
};

bool ReadVarint(std::string_view& in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Calls `fn` for each field; false on malformed input.
bool ForEachField(std::string_view in, const std::function<void(const Field&)>& fn) {
  while (!in.empty()) {
    uint64_t key;
    if (!ReadVarint(in, &key)) return false;
    Field f;
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    switch (f.wire) {
      case 0:
        if (!ReadVarint(in, &f.varint)) return false;
        break;
      case 1:
        if (in.size() < 8) return false;
        in.remove_prefix(8);
        break;
      case 2: {
        uint64_t len;
        if (!ReadVarint(in, &len) || len > in.size()) return false;
        f.bytes = in.substr(0, len);
        in.remove_prefix(len);
        break;
      }
      case 5:
        if (in.size() < 4) return false;
        in.remove_prefix(4);
        break;
      default:
        return false;
    }
    fn(f);
  }
  return true;
}

std::string Str(const Field& f) { return std::string(f.bytes); }

std::pair<std::string, std::string> MapEntry(std::string_view b) {
  std::pair<std::string, std::string> kv;
  ForEachField(b, [&](const Field& f) {
    if (f.number == 1) kv.first = Str(f);
    if (f.number == 2) kv.second = Str(f);
  });
  return kv;
}

json ObjectMeta(std::string_view b) {
  json md = json::object();
  ForEachField(b, [&](const Field& f) {
    switch (f.number) {
      case 1:
        md["name"] = Str(f);
        break;
      case 2:
        if (!f.bytes.empty()) md["generateName"] = Str(f);
        break;
      case 3:
        md["namespace"] = Str(f);
        break;
      case 6:
        md["resourceVersion"] = Str(f);
        break;
      case 11: {
        auto [k, v] = MapEntry(f.bytes);
        md["labels"][k] = v;
        break;
      }
      case 12: {
        auto [k, v] = MapEntry(f.bytes);
        md["annotations"][k] = v;
        break;
      }
      case 14:
        md["finalizers"].push_back(Str(f));
        break;
      default:
        break;
    }
  });
  return md;
}

// rbac.authorization.k8s.io/v1 PolicyRule.
json PolicyRule(std::string_view b) {
  json rule = json::object();
  static const char* kLists[] = {"",          "verbs",         "apiGroups",
                                 "resources", "resourceNames", "nonResourceURLs"};
  ForEachField(b, [&](const Field& f) {
    if (f.number >= 1 && f.number <= 5) rule[kLists[f.number]].push_back(Str(f));
  });
  return rule;
}

// authorization.k8s.io/v1 ResourceAttributes / NonResourceAttributes.
json ResourceAttributes(std::string_view b) {
  json a = json::object();
  static const char* kNames[] = {"",        "namespace", "verb",        "group",
                                 "version", "resource",  "subresource", "name"};
  ForEachField(b, [&](const Field& f) {
    if (f.number >= 1 && f.number <= 7) a[kNames[f.number]] = Str(f);
  });
  return a;
}
json NonResourceAttributes(std::string_view b) {
  json a = json::object();
  ForEachField(b, [&](const Field& f) {
    if (f.number == 1) a["path"] = Str(f);
    if (f.number == 2) a["verb"] = Str(f);
  });
  return a;
}

// SubjectAccessReviewSpec (and SelfSubjectAccessReviewSpec: fields 1-2 only).
json AccessReviewSpec(std::string_view b) {
  json spec = json::object();
  ForEachField(b, [&](const Field& f) {
    switch (f.number) {
      case 1:
        spec["resourceAttributes"] = ResourceAttributes(f.bytes);
        break;
      case 2:
        spec["nonResourceAttributes"] = NonResourceAttributes(f.bytes);
        break;
      case 3:
        spec["user"] = Str(f);
        break;
      case 4:
        spec["groups"].push_back(Str(f));
        break;
      case 5: {
        std::string key;
        json values = json::array();
        ForEachField(f.bytes, [&](const Field& e) {
          if (e.number == 1) key = Str(e);
          if (e.number == 2) {
            ForEachField(e.bytes, [&](const Field& v) {
              if (v.number == 1) values.push_back(Str(v));
            });
          }
        });
        spec["extra"][key] = values;
        break;
      }
      case 6:
        spec["uid"] = Str(f);
        break;
      default:
        break;
    }
  });
  return spec;
}

json Decode(const std::string& api_version, const std::string& kind, std::string_view raw) {
  json obj = {{"apiVersion", api_version}, {"kind", kind}};
  ForEachField(raw, [&](const Field& f) {
    if (f.number == 1 && f.wire == 2 && kind != "DeleteOptions") {
      obj["metadata"] = ObjectMeta(f.bytes);
      return;
    }
    if (kind == "ConfigMap") {
      if (f.number == 2) {
        auto [k, v] = MapEntry(f.bytes);
        obj["data"][k] = v;
      } else if (f.number == 3) {
        std::string_view value;
        std::string key;
        ForEachField(f.bytes, [&](const Field& e) {
          if (e.number == 1) key = Str(e);
          if (e.number == 2) value = e.bytes;
        });
        obj["binaryData"][key] = Base64Encode(value);
      } else if (f.number == 4) {
        obj["immutable"] = f.varint != 0;
      }
    } else if (kind == "TokenRequest" && f.number == 2) {
      json spec = json::object();
      ForEachField(f.bytes, [&](const Field& s) {
        if (s.number == 1) spec["audiences"].push_back(Str(s));
        if (s.number == 4) spec["expirationSeconds"] = static_cast<int64_t>(s.varint);
        if (s.number == 3) {
          json ref = json::object();
          ForEachField(s.bytes, [&](const Field& r) {
            static const char* kNames[] = {"", "kind", "apiVersion", "name", "uid"};
            if (r.number >= 1 && r.number <= 4) ref[kNames[r.number]] = Str(r);
          });
          spec["boundObjectRef"] = ref;
        }
      });
      obj["spec"] = spec;
    } else if (kind == "DeleteOptions") {
      if (f.number == 1) obj["gracePeriodSeconds"] = static_cast<int64_t>(f.varint);
      if (f.number == 4) obj["propagationPolicy"] = Str(f);
      if (f.number == 2) {
        json pre = json::object();
        ForEachField(f.bytes, [&](const Field& p) {
          if (p.number == 1) pre["uid"] = Str(p);
          if (p.number == 2) pre["resourceVersion"] = Str(p);
        });
        obj["preconditions"] = pre;
      }
    } else if (kind == "ServiceAccount" && f.number == 4) {
      obj["automountServiceAccountToken"] = f.varint != 0;
    } else if ((kind == "Role" || kind == "ClusterRole") && f.number == 2) {
      obj["rules"].push_back(PolicyRule(f.bytes));
    } else if (kind == "RoleBinding" || kind == "ClusterRoleBinding") {
      if (f.number == 2) {
        json subject = json::object();
        static const char* kNames[] = {"", "kind", "apiGroup", "name", "namespace"};
        ForEachField(f.bytes, [&](const Field& sf) {
          if (sf.number >= 1 && sf.number <= 4 && !sf.bytes.empty()) {
            subject[kNames[sf.number]] = Str(sf);
          }
        });
        obj["subjects"].push_back(subject);
      } else if (f.number == 3) {
        json ref = json::object();
        static const char* kNames[] = {"", "apiGroup", "kind", "name"};
        ForEachField(f.bytes, [&](const Field& rf) {
          if (rf.number >= 1 && rf.number <= 3 && !rf.bytes.empty())
            ref[kNames[rf.number]] = Str(rf);
        });
        obj["roleRef"] = ref;
      }
    } else if ((kind == "SelfSubjectAccessReview" || kind == "SubjectAccessReview") &&
               f.number == 2) {
      obj["spec"] = AccessReviewSpec(f.bytes);
    }
  });
  if (!obj.contains("metadata") && kind != "DeleteOptions") obj["metadata"] = json::object();
  return obj;
}

}  // namespace

bool IsProtobuf(const std::string& content_type) {
  return content_type.rfind("application/vnd.kubernetes.protobuf", 0) == 0;
}

std::optional<nlohmann::json> DecodeProtobuf(const std::string& body) {
  static const std::string kMagic("k8s\0", 4);
  if (body.compare(0, 4, kMagic) != 0) return std::nullopt;
  std::string api_version, kind;
  std::string_view raw;
  bool ok = ForEachField(std::string_view(body).substr(4), [&](const Field& f) {
    if (f.number == 1) {
      ForEachField(f.bytes, [&](const Field& t) {
        if (t.number == 1) api_version = Str(t);
        if (t.number == 2) kind = Str(t);
      });
    } else if (f.number == 2) {
      raw = f.bytes;
    }
  });
  if (!ok) return std::nullopt;
  static const char* kKinds[] = {"ConfigMap",
                                 "TokenRequest",
                                 "Namespace",
                                 "ServiceAccount",
                                 "DeleteOptions",
                                 "Pod",
                                 "Role",
                                 "ClusterRole",
                                 "RoleBinding",
                                 "ClusterRoleBinding",
                                 "SubjectAccessReview",
                                 "SelfSubjectAccessReview"};
  if (std::find(std::begin(kKinds), std::end(kKinds), kind) == std::end(kKinds)) {
    return std::nullopt;
  }
  if (kind == "Pod") return std::nullopt;  // Pods from kubectl arrive as JSON.
  return Decode(api_version, kind, raw);
}

}  // namespace kubesim
