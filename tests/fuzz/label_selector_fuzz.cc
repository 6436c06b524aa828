// Label selectors (common/label_selector.h), as the aggregator's query API
// (?selector=) and kubesim read them: LabelSelector::Parse, Matches and
// SplitSelectorTerms.
//
// Input: the selector text; optionally "\n" then label lines "key=value"
// to match against.
//
// Invariants: SplitSelectorTerms loses no byte but the separating commas;
// the empty selector matches everything; a parsed selector is deterministic
// (the same text parses to a selector that matches the same labels).
#include <map>

#include "common/label_selector.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ashiato;
  std::string_view input = fuzz::AsText(data, size);
  std::string text(fuzz::SplitOnce(&input, '\n'));
  std::map<std::string, std::string> labels;
  while (!input.empty()) {
    std::string_view line = fuzz::SplitOnce(&input, '\n');
    std::string_view key = fuzz::SplitOnce(&line, '=');
    labels[std::string(key)] = std::string(line);
  }

  auto terms = SplitSelectorTerms(text);
  size_t bytes = 0;
  for (const auto& t : terms) bytes += t.size();
  FUZZ_CHECK(terms.empty() || bytes + terms.size() - 1 == text.size(),
             "SplitSelectorTerms lost bytes of " + text);

  auto sel = LabelSelector::Parse(text);
  if (!sel.ok()) {
    FUZZ_CHECK(sel.status().code() == StatusCode::kInvalidArgument, sel.status().ToString());
    return 0;
  }
  bool m = sel->Matches(labels);
  if (sel->empty()) FUZZ_CHECK(m, "an empty selector must match everything");
  auto again = LabelSelector::Parse(text);
  FUZZ_CHECK(again.ok() && again->Matches(labels) == m, "parse is not deterministic");
  (void)sel->Matches({});
  return 0;
}
