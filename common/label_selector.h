// LabelSelector: the Kubernetes label selector syntax, as the API server
// parses it: "a=b", "a==b", "a!=b", "a", "!a", "a in (x,y)", "a notin (x)",
// comma-separated; every requirement must match.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace ashiato {

// Splits selector text at commas outside parentheses ("a in (x,y),b" ->
// "a in (x,y)", "b"), as label and field selectors both separate terms.
std::vector<std::string> SplitSelectorTerms(const std::string& text);

class LabelSelector {
 public:
  // Parses `text`; "" selects everything. InvalidArgument on bad syntax,
  // worded like the API server ("unable to parse requirement: ...").
  static Result<LabelSelector> Parse(const std::string& text);
  // Returns true iff `labels` satisfy every requirement.
  bool Matches(const std::map<std::string, std::string>& labels) const;
  bool empty() const { return requirements_.empty(); }

 private:
  enum class Op { kEquals, kNotEquals, kExists, kNotExists, kIn, kNotIn };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };
  std::vector<Requirement> requirements_;
};

}  // namespace ashiato
