// Field selectors as kubesim parses them for list, watch and
// deletecollection (tests/kubesim/selectors.h), for every kind, matched
// against a pod, and the label selector wrapper kubesim uses.
//
// Invariants: errors are 400 Bad Request; Exact(field) of an accepted
// selector agrees with Matches on an object holding that value.
#include <nlohmann/json.hpp>

#include "tests/fuzz/fuzz.h"
#include "tests/kubesim/selectors.h"

namespace {

kubesim::ObjectPtr Pod() {
  static kubesim::ObjectPtr pod = [] {
    nlohmann::json j = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", "web-1"},
          {"namespace", "default"},
          {"uid", "u1"},
          {"resourceVersion", "7"},
          {"labels", {{"app", "web"}}}}},
        {"spec", {{"nodeName", "node-1"}, {"containers", {{{"name", "c"}, {"image", "nginx"}}}}}},
        {"status", {{"phase", "Running"}, {"podIP", "10.0.0.1"}}}};
    return kubesim::MakeObject(kubesim::Kind::kPod, j);
  }();
  return pod;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kubesim;
  std::string text(ashiato::fuzz::AsText(data, size));
  for (int k = 0; k < static_cast<int>(Kind::kCount); ++k) {
    auto sel = FieldSelector::Parse(text, static_cast<Kind>(k));
    if (!sel.ok()) {
      FUZZ_CHECK(sel.error().code == 400, sel.error().message);
      continue;
    }
    if (static_cast<Kind>(k) != Kind::kPod) continue;
    bool m = sel->Matches(*Pod());
    auto node = sel->Exact("spec.nodeName");
    if (node && *node != "node-1") FUZZ_CHECK(!m, "matched a pod on another node");
  }
  auto labels = ParseLabelSelector(text);
  if (!labels.ok()) FUZZ_CHECK(labels.error().code == 400, labels.error().message);
  return 0;
}
