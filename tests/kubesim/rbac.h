// RBAC authorization as the API server's RBAC authorizer does it, over the
// Roles, ClusterRoles, RoleBindings and ClusterRoleBindings in the Store:
// SubjectAccessReview, SelfSubjectAccessReview (`kubectl auth can-i`) and,
// with --authorization-mode RBAC, kubesim's own requests. Members of
// `system:masters` may do anything, as on a real server. Aggregated
// ClusterRoles (aggregationRule) are not expanded.
#pragma once

#include <string>
#include <vector>

#include "tests/kubesim/store.h"

namespace kubesim {

struct RbacUser {
  std::string name;
  std::vector<std::string> groups;
};

// What is asked: a resource request (path empty) or a non-resource URL.
struct RbacRequest {
  std::string verb;
  std::string group;        // API group, "" = core.
  std::string resource;     // "pods"
  std::string subresource;  // "status", "" = none.
  std::string ns;           // "" = cluster-scoped or all namespaces.
  std::string name;         // "" = any.
  std::string path;         // Non-resource URL ("/metrics"); set = non-resource request.
};

struct RbacDecision {
  bool allowed = false;
  // "RBAC: allowed by ClusterRoleBinding \"x\" of ClusterRole \"y\" to User \"u\"", or "".
  std::string reason;
};

RbacDecision Authorize(Store& store, const RbacUser& user, const RbacRequest& request);

// The groups the API server gives a service account's tokens.
std::vector<std::string> ServiceAccountGroups(const std::string& ns);

// The message of the 403 the API server answers for a denied request:
// `pods is forbidden: User "x" cannot list resource "pods" in API group ""
// in the namespace "y"`.
std::string ForbiddenMessage(const RbacUser& user, const RbacRequest& request);

}  // namespace kubesim
