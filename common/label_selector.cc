#include "common/label_selector.h"

#include <algorithm>
#include <cctype>

namespace ashiato {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::vector<std::string> SplitSelectorTerms(const std::string& text) {
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

namespace {

// Qualified names: an optional DNS prefix and "/", then up to 63 characters.
bool ValidKey(const std::string& k) {
  if (k.empty() || k.size() > 317) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

bool ValidValue(const std::string& v) {
  if (v.size() > 63) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

Status ParseError(const std::string& text, const std::string& why) {
  return InvalidArgument("unable to parse requirement: " + why + " in selector \"" + text + "\"");
}

}  // namespace

Result<LabelSelector> LabelSelector::Parse(const std::string& text) {
  LabelSelector sel;
  if (Trim(text).empty()) return sel;
  for (const std::string& raw : SplitSelectorTerms(text)) {
    std::string part = Trim(raw);
    if (part.empty()) return ParseError(text, "found '', expected: identifier");
    Requirement r;
    if (part[0] == '!') {
      r.key = Trim(part.substr(1));
      r.op = Op::kNotExists;
    } else if (auto p = part.find("!="); p != std::string::npos) {
      r.key = Trim(part.substr(0, p));
      r.op = Op::kNotEquals;
      r.values.push_back(Trim(part.substr(p + 2)));
    } else if (auto p2 = part.find("=="); p2 != std::string::npos) {
      r.key = Trim(part.substr(0, p2));
      r.op = Op::kEquals;
      r.values.push_back(Trim(part.substr(p2 + 2)));
    } else if (auto p3 = part.find('='); p3 != std::string::npos) {
      r.key = Trim(part.substr(0, p3));
      r.op = Op::kEquals;
      r.values.push_back(Trim(part.substr(p3 + 1)));
    } else if (auto lp = part.find('('); lp != std::string::npos) {
      auto rp = part.rfind(')');
      if (rp == std::string::npos || rp < lp) return ParseError(text, "expected ')'");
      if (rp != part.size() - 1) return ParseError(text, "unexpected text after ')'");
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
      std::string inner = Trim(part.substr(lp + 1, rp - lp - 1));
      if (inner.empty()) {
        return ParseError(text, "for 'in', 'notin' operators, values set can't be empty");
      }
      size_t start = 0;
      while (true) {
        size_t comma = inner.find(',', start);
        r.values.push_back(Trim(
            inner.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      r.key = part;
      r.op = Op::kExists;
    }
    if (!ValidKey(r.key)) return ParseError(text, "invalid label key \"" + r.key + "\"");
    for (const auto& v : r.values) {
      if (!ValidValue(v)) return ParseError(text, "invalid label value: \"" + v + "\"");
    }
    sel.requirements_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const Requirement& r : requirements_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    bool listed = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    switch (r.op) {
      case Op::kEquals:
      case Op::kIn:
        if (!listed) return false;
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        if (listed) return false;
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

}  // namespace ashiato
