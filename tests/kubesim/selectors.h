// Label and field selectors with the real API server's syntax:
//   labels: "a=b,c!=d,e in (x,y),f notin (z),g,!h"
//   fields: "spec.nodeName=node-1,status.phase!=Running" (= == !=)
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/kubesim/resources.h"

namespace kubesim {

class LabelSelector {
 public:
  // Empty text selects everything. Errors are worded like the API server's.
  static ApiOr<LabelSelector> Parse(const std::string& text);
  bool Matches(const std::map<std::string, std::string>& labels) const;
  bool empty() const { return reqs_.empty(); }

 private:
  enum class Op { kEq, kNotEq, kIn, kNotIn, kExists, kNotExists };
  struct Req {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };
  std::vector<Req> reqs_;
};

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
