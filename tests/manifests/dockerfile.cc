#include "tests/manifests/dockerfile.h"

#include <cctype>
#include <fstream>
#include <sstream>

namespace ashiato::testing {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> SplitWords(const std::string& s) {
  std::vector<std::string> words;
  std::istringstream in(s);
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

// Splits a shell command line on && and ; (our Dockerfiles quote neither).
std::vector<std::string> SplitShell(const std::string& s) {
  std::vector<std::string> parts;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ';' || (s[i] == '&' && i + 1 < s.size() && s[i + 1] == '&')) {
      parts.push_back(Trim(cur));
      cur.clear();
      if (s[i] == '&') ++i;
    } else {
      cur += s[i];
    }
  }
  parts.push_back(Trim(cur));
  std::vector<std::string> nonempty;
  for (auto& p : parts) {
    if (!p.empty()) nonempty.push_back(p);
  }
  return nonempty;
}

}  // namespace

std::vector<std::string> DockerStage::All(const std::string& keyword) const {
  std::vector<std::string> out;
  for (const auto& i : instructions) {
    if (i.keyword == keyword) out.push_back(i.args);
  }
  return out;
}

std::map<std::string, std::string> DockerStage::Labels() const {
  std::map<std::string, std::string> labels;
  for (const auto& args : All("LABEL")) {
    size_t i = 0;
    while (i < args.size()) {
      while (i < args.size() && std::isspace(static_cast<unsigned char>(args[i]))) ++i;
      size_t eq = args.find('=', i);
      if (eq == std::string::npos) break;
      std::string key = args.substr(i, eq - i);
      std::string value;
      i = eq + 1;
      if (i < args.size() && args[i] == '"') {
        size_t end = args.find('"', i + 1);
        if (end == std::string::npos) end = args.size();
        value = args.substr(i + 1, end - i - 1);
        i = end + 1;
      } else {
        size_t end = i;
        while (end < args.size() && !std::isspace(static_cast<unsigned char>(args[end]))) ++end;
        value = args.substr(i, end - i);
        i = end;
      }
      labels[key] = value;
    }
  }
  return labels;
}

std::vector<std::string> DockerStage::RunCommands() const {
  std::vector<std::string> out;
  for (const auto& args : All("RUN")) {
    for (auto& c : SplitShell(args)) out.push_back(c);
  }
  return out;
}

std::vector<std::string> DockerStage::AptPackages() const {
  std::vector<std::string> packages;
  for (const auto& cmd : RunCommands()) {
    std::vector<std::string> words = SplitWords(cmd);
    bool in_install = false;
    for (size_t i = 0; i < words.size(); ++i) {
      if (!in_install) {
        in_install = words[i] == "install" && i > 0 && words[i - 1] == "apt-get";
        if (!in_install && words[i] == "install" && i > 1 && words[i - 2] == "apt-get") {
          in_install = true;  // apt-get -y install ...
        }
        continue;
      }
      if (!words[i].empty() && words[i][0] != '-') packages.push_back(words[i]);
    }
  }
  return packages;
}

Dockerfile ParseDockerfile(const std::string& text) {
  // Join continuation lines, dropping comment lines as Docker does.
  std::vector<std::string> logical;
  std::string cur;
  bool continuing = false;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (!t.empty() && t[0] == '#') continue;
    if (t.empty() && !continuing) continue;
    bool cont = !t.empty() && t.back() == '\\';
    if (cont) t = Trim(t.substr(0, t.size() - 1));
    cur += (cur.empty() ? "" : " ") + t;
    continuing = cont;
    if (!cont) {
      logical.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) logical.push_back(cur);

  Dockerfile df;
  for (const auto& l : logical) {
    size_t sp = l.find_first_of(" \t");
    std::string keyword = l.substr(0, sp);
    for (auto& c : keyword) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string args = sp == std::string::npos ? "" : Trim(l.substr(sp));
    if (keyword == "FROM") {
      DockerStage stage;
      std::vector<std::string> w = SplitWords(args);
      for (size_t i = 0; i < w.size(); ++i) {
        if (w[i].rfind("--", 0) == 0) continue;  // --platform=...
        if (stage.base.empty()) {
          stage.base = w[i];
        } else if ((w[i] == "AS" || w[i] == "as") && i + 1 < w.size()) {
          stage.name = w[++i];
        }
      }
      df.stages.push_back(stage);
    } else if (df.stages.empty()) {
      if (keyword == "ARG") {
        size_t eq = args.find('=');
        std::string name = Trim(args.substr(0, eq));
        df.global_args[name] = eq == std::string::npos ? "" : Trim(args.substr(eq + 1));
      }
    } else {
      df.stages.back().instructions.push_back({keyword, args});
    }
  }
  return df;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace ashiato::testing
