// Resource kinds kubesim serves, the stored form of an object, and the
// Kubernetes `Status` errors returned exactly as the real API server words them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kubesim {

enum class Kind {
  kPod = 0,
  kNode,
  kConfigMap,
  kNamespace,
  kServiceAccount,
  // rbac.authorization.k8s.io/v1
  kRole,
  kClusterRole,
  kRoleBinding,
  kClusterRoleBinding,
  kCount
};
constexpr int kKindCount = static_cast<int>(Kind::kCount);

constexpr char kRbacGroup[] = "rbac.authorization.k8s.io";

struct KindInfo {
  const char* resource;   // "pods"
  const char* kind;       // "Pod"
  const char* list_kind;  // "PodList"
  bool namespaced;
  const char* short_name;   // "po"
  const char* group;        // "" (core) or "rbac.authorization.k8s.io"
  const char* api_version;  // "v1" or "rbac.authorization.k8s.io/v1"
};
const KindInfo& Info(Kind k);
// "pods" -> kPod for the API group `group` ("" = core); nullopt for an
// unknown resource.
std::optional<Kind> KindFromResource(const std::string& resource, const std::string& group = "");

// An error answered as a meta/v1 Status object.
struct ApiError {
  int code = 500;
  std::string reason;  // "NotFound", "Conflict", ...
  std::string message;
  nlohmann::json details;  // Optional {"name","kind","causes",...}.
  int retry_after_seconds = 0;

  nlohmann::json ToJson() const;
  std::string ToString() const { return ToJson().dump(); }
};

ApiError NotFoundError(Kind k, const std::string& name);
ApiError AlreadyExistsError(Kind k, const std::string& name);
ApiError ConflictError(Kind k, const std::string& name);
ApiError BadRequestError(const std::string& message);
// `causes`: [{"reason","message","field"}].
ApiError InvalidError(Kind k, const std::string& name, nlohmann::json causes);
ApiError ExpiredError(const std::string& message);
ApiError MethodNotAllowedError();

// A value or an ApiError.
template <typename T>
class ApiOr {
 public:
  ApiOr(T v) : value_(std::move(v)) {}         // NOLINT
  ApiOr(ApiError e) : error_(std::move(e)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  const ApiError& error() const { return error_; }
  T& value() { return *value_; }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  ApiError error_;
};

// An immutable stored object: its canonical JSON (keys sorted, as nlohmann
// dumps them) and the fields selectors and indexes need.
struct Object {
  Kind kind = Kind::kPod;
  std::string json;      // Full object with apiVersion and kind.
  size_t list_skip = 0;  // Bytes after '{' to drop for the list-item form (no apiVersion/kind).
  std::string ns, name, uid;
  uint64_t rv = 0;
  std::map<std::string, std::string> labels;
  std::string node;                                         // spec.nodeName for pods.
  std::vector<std::pair<std::string, std::string>> fields;  // Field-selector values.

  // The value of a field-selector field, nullopt when the kind has no such field.
  std::optional<std::string> Field(const std::string& field) const;
  // Appends the object as a list item (no apiVersion/kind, as real lists are).
  void AppendListItem(std::string* out) const;
  std::string Key() const { return ns.empty() ? name : ns + "/" + name; }
};
using ObjectPtr = std::shared_ptr<const Object>;

// Builds the stored form of `obj` (which must carry metadata.name and
// metadata.resourceVersion).
ObjectPtr MakeObject(Kind k, const nlohmann::json& obj);

// Kind-specific validation as the API server does on create and update
// (ConfigMap size and keys, pod containers, names).
std::optional<ApiError> Validate(Kind k, const nlohmann::json& obj);

// Whether the field is supported in field selectors for the kind.
bool SupportedField(Kind k, const std::string& field);

// The limit on a ConfigMap's data + binaryData, as the real validation counts it.
constexpr size_t kMaxConfigMapBytes = 1 << 20;
// The API server's limit on a request body.
constexpr size_t kMaxRequestBodyBytes = 3 << 20;

}  // namespace kubesim
