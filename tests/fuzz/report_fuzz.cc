// POST /v1/reports bodies: DecodeReportBody (gzip and identity), the simdjson
// report decoder, EncodeReport and AppendPodLogJson.
//
// Invariants:
// - the decoder agrees with a straightforward DOM decoder (the first one,
//   below): whatever it accepts, the DOM reader accepts with the
//   same value; whatever the DOM reader accepts, it accepts too unless the
//   text repeats a key inside one object (then it may be stricter);
// - decode(encode(r)) == r and encode is a fixpoint;
// - AppendPodLogJson(pod) equals PodRecordToLogJson(pod).dump(), byte for byte;
// - gzip: a body starting with the gzip magic is inflated under a limit.
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "common/report.h"
#include "tests/fuzz/fuzz.h"

namespace ashiato {
namespace {

using nlohmann::json;

// The DOM decoder of the first protocol version (before the SAX one), with
// "rp" (replay) added: the reference the decoder must agree with.
class DomReader {
 public:
  explicit DomReader(const ReportLimits& limits) : limits_(limits) {}

  bool String(const json& obj, const char* key, bool required, std::string* out) const {
    auto it = obj.find(key);
    if (it == obj.end()) return !required;
    return StringValue(*it, out);
  }
  bool StringValue(const json& v, std::string* out) const {
    if (!v.is_string()) return false;
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > limits_.max_string_bytes) return false;
    *out = s;
    return true;
  }
  bool StringArray(const json& v, size_t exact_size, std::vector<std::string>* out) const {
    if (!v.is_array()) return false;
    if (exact_size != 0 && v.size() != exact_size) return false;
    if (v.size() > limits_.max_records) return false;
    out->clear();
    for (const auto& e : v) {
      std::string s;
      if (!StringValue(e, &s)) return false;
      out->push_back(std::move(s));
    }
    return true;
  }
  bool Record(const json& j, const std::string& envelope_node, ReportRecord* out) const {
    if (!j.is_object()) return false;
    std::string op;
    if (!String(j, "op", true, &op)) return false;
    if (op == "U") {
      out->op = RecordOp::kUpsert;
    } else if (op == "D") {
      out->op = RecordOp::kDelete;
    } else {
      return false;
    }
    PodRecord& p = out->pod;
    if (!String(j, "u", true, &p.uid) || !String(j, "ns", true, &p.namespace_) ||
        !String(j, "n", true, &p.name)) {
      return false;
    }
    if (p.uid.empty() || p.namespace_.empty() || p.name.empty()) return false;
    p.node_name = envelope_node;
    if (!String(j, "nd", false, &p.node_name) || !String(j, "ip", false, &p.pod_ip)) return false;
    if (auto it = j.find("ips"); it != j.end()) {
      if (!StringArray(*it, 0, &p.pod_ips)) return false;
    } else if (!p.pod_ip.empty()) {
      p.pod_ips = {p.pod_ip};
    }
    if (!String(j, "hip", false, &p.host_ip) || !String(j, "ph", false, &p.phase)) return false;
    for (const char* key : {"c", "k"}) {
      auto it = j.find(key);
      if (it == j.end()) continue;
      if (!it->is_array()) return false;
      for (const auto& t : *it) {
        std::vector<std::string> f;
        if (!StringArray(t, 3, &f)) return false;
        if (key[0] == 'c') {
          p.conditions.push_back({f[0], f[1], f[2]});
        } else {
          p.containers.push_back({f[0], f[1], f[2]});
        }
      }
    }
    if (auto it = j.find("o"); it != j.end()) {
      const json& o = *it;
      if (!o.is_array() || o.size() != 3 || !o[0].is_string() || !o[1].is_string() ||
          !o[2].is_boolean()) {
        return false;
      }
      if (!StringValue(o[0], &p.owner_kind) || !StringValue(o[1], &p.owner_name)) return false;
      p.owner_inferred = o[2].get<bool>();
    }
    if (auto it = j.find("l"); it != j.end()) {
      if (!it->is_object()) return false;
      for (const auto& [k, v] : it->items()) {
        std::string value;
        if (k.size() > limits_.max_string_bytes || !StringValue(v, &value)) return false;
        p.labels.emplace(k, std::move(value));
      }
    }
    if (!String(j, "ct", false, &p.creation_timestamp) ||
        !String(j, "dt", false, &p.deletion_timestamp) ||
        !String(j, "rv", false, &p.resource_version)) {
      return false;
    }
    if (auto it = j.find("t"); it != j.end()) {
      if (!it->is_number_integer()) return false;
      out->observed_unix_ms = it->get<int64_t>();
    }
    return true;
  }

 private:
  const ReportLimits& limits_;
};

bool DomDecode(std::string_view text, const ReportLimits& limits, Report* report) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return false;
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer()) return false;
  if (v->is_number_unsigned() ? v->get<uint64_t>() != static_cast<uint64_t>(kReportVersion)
                              : v->get<int64_t>() != kReportVersion) {
    return false;
  }
  DomReader reader(limits);
  if (!reader.String(j, "node", true, &report->node) || report->node.empty()) return false;
  if (!reader.String(j, "epoch", true, &report->epoch) || report->epoch.empty()) return false;
  auto seq = j.find("seq");
  if (seq == j.end() || !seq->is_number_unsigned()) return false;
  report->seq = seq->get<uint64_t>();
  for (auto [key, out] : {std::pair{"snap", &report->snapshot}, {"rp", &report->replay}}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_boolean()) return false;
    *out = it->get<bool>();
  }
  if (auto sent = j.find("sent"); sent != j.end()) {
    if (!sent->is_number_integer()) return false;
    report->sent_unix_ms = sent->get<int64_t>();
  }
  auto records = j.find("r");
  if (records == j.end() || !records->is_array() || records->size() > limits.max_records) {
    return false;
  }
  report->records.resize(records->size());
  for (size_t i = 0; i < records->size(); ++i) {
    if (!reader.Record((*records)[i], report->node, &report->records[i])) return false;
    if (report->snapshot && report->records[i].op != RecordOp::kUpsert) return false;
  }
  return true;
}

// True iff some object in the (well-formed) text repeats a key.
class DuplicateKeySax {
 public:
  bool duplicate = false;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(int64_t) { return true; }
  bool number_unsigned(uint64_t) { return true; }
  bool number_float(double, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) {
    keys_.emplace_back();
    return true;
  }
  bool end_object() {
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool key(std::string& k) {
    if (!keys_.back().insert(k).second) duplicate = true;
    return !duplicate;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

 private:
  std::vector<std::set<std::string>> keys_;
};

bool HasDuplicateKeys(std::string_view text) {
  DuplicateKeySax sax;
  json::sax_parse(text.data(), text.data() + text.size(), &sax, json::input_format_t::json, true);
  return sax.duplicate;
}

bool SameReport(const Report& a, const Report& b) {
  if (a.node != b.node || a.epoch != b.epoch || a.seq != b.seq || a.snapshot != b.snapshot ||
      a.replay != b.replay || a.sent_unix_ms != b.sent_unix_ms ||
      a.records.size() != b.records.size()) {
    return false;
  }
  for (size_t i = 0; i < a.records.size(); ++i) {
    if (!(a.records[i] == b.records[i])) return false;
  }
  return true;
}

void CheckDecoded(std::string_view text, const ReportLimits& limits) {
  auto sax = DecodeReport(text, limits);
  Report dom;
  bool dom_ok = DomDecode(text, limits, &dom);
  if (sax.ok()) {
    FUZZ_CHECK(dom_ok, "the decoder accepted what the DOM decoder rejects");
    FUZZ_CHECK(SameReport(*sax, dom), "the decoder and the DOM decoder disagree on the value");
  } else {
    FUZZ_CHECK(sax.status().code() == StatusCode::kInvalidArgument, sax.status().ToString());
    FUZZ_CHECK(!dom_ok || HasDuplicateKeys(text),
               "the decoder rejected what the DOM decoder accepts: " + sax.status().ToString());
    return;
  }
  // Round trip: encode, decode, encode again.
  std::string encoded = EncodeReport(*sax);
  auto again = DecodeReport(encoded, limits);
  FUZZ_CHECK(again.ok(), "decode(encode(r)) failed: " + again.status().ToString());
  FUZZ_CHECK(SameReport(*sax, *again), "decode(encode(r)) != r");
  FUZZ_CHECK(EncodeReport(*again) == encoded, "encode is not a fixpoint");
  // The hand-written log line equals nlohmann's dump of the same fields.
  for (const auto& r : sax->records) {
    std::string line;
    AppendPodLogJson(r.pod, {}, &line);
    std::string want =
        PodRecordToLogJson(r.pod).dump(-1, ' ', false, json::error_handler_t::replace);
    FUZZ_CHECK(line == want, "AppendPodLogJson != PodRecordToLogJson: " + line + " vs " + want);
  }
}

}  // namespace
}  // namespace ashiato

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ashiato;
  std::string_view body = fuzz::AsText(data, size);
  ReportLimits limits;
  limits.max_records = 64;  // Small limits so that the fuzzer reaches them.
  limits.max_string_bytes = 64;
  constexpr size_t kMaxDecoded = 1 << 20;
  bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  auto decoded = DecodeReportBody(body, gzip ? "gzip" : "", kMaxDecoded, limits);
  if (gzip) {
    auto raw = GzipDecompress(body, kMaxDecoded);
    FUZZ_CHECK(raw.ok() || !decoded.ok(), "decoded a body that does not inflate");
    if (raw.ok()) {
      FUZZ_CHECK(raw->size() <= kMaxDecoded, "inflated past the limit");
      CheckDecoded(*raw, limits);
      // Compression round trip.
      auto again = GzipCompress(*raw, 1);
      FUZZ_CHECK(again.ok(), again.status().ToString());
      auto back = GzipDecompress(*again, kMaxDecoded);
      FUZZ_CHECK(back.ok() && *back == *raw, "gunzip(gzip(x)) != x");
    }
  } else {
    CheckDecoded(body, limits);
  }
  return 0;
}
