#include "aggregator/label_selector.h"

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

bool ValidKey(const std::string& k) {
  if (k.empty() || k.size() > 317) return false;
  return std::all_of(k.begin(), k.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/';
  });
}

// Splits on commas that are not inside parentheses.
Result<std::vector<std::string>> SplitTerms(const std::string& text) {
  std::vector<std::string> terms;
  std::string cur;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')' && --depth < 0) return InvalidArgument("selector: unbalanced ')'");
    if (c == ',' && depth == 0) {
      terms.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (depth != 0) return InvalidArgument("selector: unbalanced '('");
  terms.push_back(cur);
  return terms;
}

}  // namespace

Result<LabelSelector> LabelSelector::Parse(const std::string& text) {
  LabelSelector sel;
  if (Trim(text).empty()) return sel;
  auto terms = SplitTerms(text);
  if (!terms.ok()) return terms.status();
  for (const std::string& raw : *terms) {
    std::string t = Trim(raw);
    if (t.empty()) return InvalidArgument("selector: empty requirement");
    Requirement r;
    size_t pos;
    if (t[0] == '!') {
      r.key = Trim(t.substr(1));
      r.op = Op::kNotExists;
    } else if ((pos = t.find("!=")) != std::string::npos) {
      r.key = Trim(t.substr(0, pos));
      r.op = Op::kNotEquals;
      r.values = {Trim(t.substr(pos + 2))};
    } else if ((pos = t.find("==")) != std::string::npos) {
      r.key = Trim(t.substr(0, pos));
      r.op = Op::kEquals;
      r.values = {Trim(t.substr(pos + 2))};
    } else if ((pos = t.find('=')) != std::string::npos) {
      r.key = Trim(t.substr(0, pos));
      r.op = Op::kEquals;
      r.values = {Trim(t.substr(pos + 1))};
    } else if (size_t open = t.find('('); open != std::string::npos) {
      if (t.back() != ')') return InvalidArgument("selector: expected ')' in \"" + t + "\"");
      std::string head = Trim(t.substr(0, open));
      size_t sp = head.find_last_of(" \t");
      if (sp == std::string::npos) return InvalidArgument("selector: bad set term \"" + t + "\"");
      std::string op = head.substr(sp + 1);
      r.key = Trim(head.substr(0, sp));
      if (op == "in") {
        r.op = Op::kIn;
      } else if (op == "notin") {
        r.op = Op::kNotIn;
      } else {
        return InvalidArgument("selector: unknown operator \"" + op + "\"");
      }
      std::string list = t.substr(open + 1, t.size() - open - 2);
      size_t start = 0;
      while (true) {
        size_t comma = list.find(',', start);
        std::string v = Trim(list.substr(start, comma - start));
        if (!v.empty()) r.values.push_back(v);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      if (r.values.empty()) return InvalidArgument("selector: empty set in \"" + t + "\"");
    } else {
      r.key = t;
      r.op = Op::kExists;
    }
    if (!ValidKey(r.key)) return InvalidArgument("selector: invalid key \"" + r.key + "\"");
    sel.requirements_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& r : requirements_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    auto in_values = [&] {
      return has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    };
    switch (r.op) {
      case Op::kEquals:
      case Op::kIn:
        if (!in_values()) return false;
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        if (in_values()) return false;
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
