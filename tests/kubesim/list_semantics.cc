#include "tests/kubesim/list_semantics.h"

#include <cstdlib>

namespace kubesim {

namespace {

ApiError InvalidListOptions(const std::string& detail) {
  return ApiError{422, "Invalid", "ListOptions.meta.k8s.io \"\" is invalid: " + detail, {}, 0};
}

}  // namespace

const char* ListSemanticsName(ListSemantics s) {
  switch (s) {
    case ListSemantics::kMostRecent:
      return "most_recent";
    case ListSemantics::kAny:
      return "any";
    case ListSemantics::kNotOlderThan:
      return "not_older_than";
    case ListSemantics::kExact:
      return "exact";
    case ListSemantics::kContinue:
      return "continue";
  }
  return "unknown";
}

ApiOr<ListPlan> PlanList(const ListParams& p) {
  const std::string& rv = p.resource_version;
  const bool numeric_rv = !rv.empty() && rv != "0";
  if (numeric_rv && rv.find_first_not_of("0123456789") != std::string::npos) {
    return BadRequestError("invalid resource version: " + rv);
  }
  if (!p.match.empty() && p.match != "Exact" && p.match != "NotOlderThan") {
    return InvalidListOptions("resourceVersionMatch: Unsupported value: \"" + p.match +
                              "\": supported values: \"Exact\", \"NotOlderThan\", \"\"");
  }
  if (!p.match.empty() && rv.empty()) {
    return InvalidListOptions(
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
        "resourceVersion is provided");
  }
  if (p.match == "Exact" && rv == "0") {
    return InvalidListOptions(
        "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for "
        "resourceVersion \"0\"");
  }
  ListPlan plan;
  if (p.continue_token) {
    if (!p.match.empty()) {
      return InvalidListOptions(
          "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is "
          "provided");
    }
    if (numeric_rv) {
      return BadRequestError("specifying resource version is not allowed when using continue");
    }
    plan.semantics = ListSemantics::kContinue;  // The token's RV, read from etcd.
    return plan;
  }
  if (rv.empty()) {
    plan.semantics = ListSemantics::kMostRecent;
    plan.from_etcd = p.limit || !p.consistent_reads_from_cache;
    return plan;
  }
  if (rv == "0") {
    plan.semantics = ListSemantics::kAny;  // The cache ignores limit here.
    plan.from_etcd = false;
    return plan;
  }
  plan.rv = std::strtoull(rv.c_str(), nullptr, 10);
  if (p.match == "Exact" || (p.match.empty() && p.limit)) {
    plan.semantics = ListSemantics::kExact;
    return plan;
  }
  plan.semantics = ListSemantics::kNotOlderThan;
  // With a limit the cache delegates to etcd; without, it waits until it
  // holds that RV and answers with its (newer or equal) state.
  plan.from_etcd = p.limit;
  return plan;
}

}  // namespace kubesim
