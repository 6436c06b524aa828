// Label and field selectors with the real API server's syntax:
//   labels: "a=b,c!=d,e in (x,y),f notin (z),g,!h"
//   fields: "spec.nodeName=node-1,status.phase!=Running" (= == !=)
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/label_selector.h"
#include "tests/kubesim/resources.h"

namespace kubesim {

using ashiato::LabelSelector;

// Parses a label selector (common/label_selector.h); a syntax error is a 400
// worded like the API server's.
ApiOr<LabelSelector> ParseLabelSelector(const std::string& text);

class FieldSelector {
 public:
  // Fails (400) on syntax errors and on fields the kind does not support.
  static ApiOr<FieldSelector> Parse(const std::string& text, Kind kind);
  bool Matches(const Object& obj) const;
  bool empty() const { return reqs_.empty(); }
  // The value required by `field=value`, if the selector has one.
  std::optional<std::string> Exact(const std::string& field) const;

 private:
  struct Req {
    std::string field;
    bool negate;
    std::string value;
  };
  std::vector<Req> reqs_;
};

}  // namespace kubesim
