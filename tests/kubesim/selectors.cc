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

// Splits on commas outside parentheses.
std::vector<std::string> SplitTopLevel(const std::string& text) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

bool ValidLabelKey(const std::string& k) {
  if (k.empty() || k.size() > 317) return false;
  for (char c : k) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '/'))
      return false;
  }
  return true;
}

bool ValidLabelValue(const std::string& v) {
  if (v.size() > 63) return false;
  for (char c : v) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  }
  return true;
}

ApiError ParseError(const std::string& text, const std::string& why) {
  return BadRequestError("unable to parse requirement: " + why + " in selector \"" + text + "\"");
}

}  // namespace

ApiOr<LabelSelector> LabelSelector::Parse(const std::string& text) {
  LabelSelector sel;
  if (Trim(text).empty()) return sel;
  for (const std::string& raw : SplitTopLevel(text)) {
    std::string part = Trim(raw);
    if (part.empty()) return ParseError(text, "found '', expected: identifier");
    Req r;
    if (part[0] == '!') {
      r.key = Trim(part.substr(1));
      r.op = Op::kNotExists;
    } else if (auto p = part.find("!="); p != std::string::npos) {
      r.key = Trim(part.substr(0, p));
      r.op = Op::kNotEq;
      r.values.push_back(Trim(part.substr(p + 2)));
    } else if (auto p2 = part.find("=="); p2 != std::string::npos) {
      r.key = Trim(part.substr(0, p2));
      r.op = Op::kEq;
      r.values.push_back(Trim(part.substr(p2 + 2)));
    } else if (auto p3 = part.find('='); p3 != std::string::npos) {
      r.key = Trim(part.substr(0, p3));
      r.op = Op::kEq;
      r.values.push_back(Trim(part.substr(p3 + 1)));
    } else if (auto lp = part.find('('); lp != std::string::npos) {
      auto rp = part.rfind(')');
      if (rp == std::string::npos || rp < lp) return ParseError(text, "expected ')'");
      std::string head = Trim(part.substr(0, lp));
      auto sp = head.find_last_of(" \t");
      if (sp == std::string::npos) return ParseError(text, "expected 'in' or 'notin'");
      std::string op = Trim(head.substr(sp + 1));
      r.key = Trim(head.substr(0, sp));
      if (op == "in") {
        r.op = Op::kIn;
      } else if (op == "notin") {
        r.op = Op::kNotIn;
      } else {
        return ParseError(text, "found '" + op + "', expected: in, notin");
      }
      std::string inner = part.substr(lp + 1, rp - lp - 1);
      size_t start = 0;
      while (true) {
        size_t comma = inner.find(',', start);
        std::string v = Trim(
            inner.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        r.values.push_back(v);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      r.key = part;
      r.op = Op::kExists;
    }
    if (!ValidLabelKey(r.key)) return ParseError(text, "invalid label key \"" + r.key + "\"");
    for (const auto& v : r.values) {
      if (!ValidLabelValue(v)) return ParseError(text, "invalid label value: \"" + v + "\"");
    }
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const Req& r : reqs_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    switch (r.op) {
      case Op::kEq:
      case Op::kIn:
        if (!has || std::find(r.values.begin(), r.values.end(), it->second) == r.values.end())
          return false;
        break;
      case Op::kNotEq:
      case Op::kNotIn:
        if (has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end())
          return false;
        break;
      case Op::kExists:
        if (!has) return false;
        break;
      case Op::kNotExists:
        if (has) return false;
        break;
    }
  }
  return true;
}

ApiOr<FieldSelector> FieldSelector::Parse(const std::string& text, Kind kind) {
  FieldSelector sel;
  if (Trim(text).empty()) return sel;
  for (const std::string& raw : SplitTopLevel(text)) {
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
