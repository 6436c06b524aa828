#include "tests/kubesim/selectors.h"

#include <algorithm>
#include <cctype>

namespace kubesim {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

ApiOr<LabelSelector> ParseLabelSelector(const std::string& text) {
  auto sel = LabelSelector::Parse(text);
  if (!sel.ok()) return BadRequestError(sel.status().message());
  return std::move(sel).value();
}

ApiOr<FieldSelector> FieldSelector::Parse(const std::string& text, Kind kind) {
  FieldSelector sel;
  if (Trim(text).empty()) return sel;
  for (const std::string& raw : ashiato::SplitSelectorTerms(text)) {
    std::string part = Trim(raw);
    Req r;
    size_t p;
    if ((p = part.find("!=")) != std::string::npos) {
      r = {part.substr(0, p), true, part.substr(p + 2)};
    } else if ((p = part.find("==")) != std::string::npos) {
      r = {part.substr(0, p), false, part.substr(p + 2)};
    } else if ((p = part.find('=')) != std::string::npos) {
      r = {part.substr(0, p), false, part.substr(p + 1)};
    } else {
      return BadRequestError("invalid selector: '" + text + "'; can't understand '" + part + "'");
    }
    r.field = Trim(r.field);
    r.value = Trim(r.value);
    if (!SupportedField(kind, r.field)) {
      return BadRequestError("field label not supported: " + r.field);
    }
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

bool FieldSelector::Matches(const Object& obj) const {
  for (const Req& r : reqs_) {
    auto v = obj.Field(r.field);
    std::string value = v.value_or("");
    if ((value == r.value) == r.negate) return false;
  }
  return true;
}

std::optional<std::string> FieldSelector::Exact(const std::string& field) const {
  for (const Req& r : reqs_) {
    if (r.field == field && !r.negate) return r.value;
  }
  return std::nullopt;
}

}  // namespace kubesim
