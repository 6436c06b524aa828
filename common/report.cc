#include "common/report.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

namespace ashiato {
namespace {

using nlohmann::json;

// Short keys of a record (docs/protocol.md keeps the same table).
constexpr const char* kOp = "op";
constexpr const char* kUid = "u";
constexpr const char* kNamespace = "ns";
constexpr const char* kName = "n";
constexpr const char* kNode = "nd";  // Omitted when equal to the envelope's node.
constexpr const char* kPodIp = "ip";
constexpr const char* kPodIps = "ips";  // Omitted when equal to [ip] (or [] with no ip).
constexpr const char* kHostIp = "hip";
constexpr const char* kPhase = "ph";
constexpr const char* kConditions = "c";  // [[type, status, last_transition_time], ...]
constexpr const char* kContainers = "k";  // [[name, image, image_id], ...]
constexpr const char* kOwner = "o";       // [kind, name, inferred]
constexpr const char* kLabels = "l";
constexpr const char* kAnnotations = "a";  // Only those the agent was told to capture.
constexpr const char* kCreated = "ct";
constexpr const char* kDeleted = "dt";
constexpr const char* kResourceVersion = "rv";
constexpr const char* kObserved = "t";

bool DefaultPodIps(const PodRecord& p) {
  if (p.pod_ip.empty()) return p.pod_ips.empty();
  return p.pod_ips.size() == 1 && p.pod_ips[0] == p.pod_ip;
}

void PutIfSet(json& j, const char* key, const std::string& v) {
  if (!v.empty()) j[key] = v;
}

json RecordToWire(const ReportRecord& r, const std::string& envelope_node) {
  const PodRecord& p = r.pod;
  json j = json::object();
  j[kOp] = RecordOpName(r.op);
  j[kUid] = p.uid;
  j[kNamespace] = p.namespace_;
  j[kName] = p.name;
  if (p.node_name != envelope_node) j[kNode] = p.node_name;
  PutIfSet(j, kPodIp, p.pod_ip);
  if (!DefaultPodIps(p)) j[kPodIps] = p.pod_ips;
  PutIfSet(j, kHostIp, p.host_ip);
  PutIfSet(j, kPhase, p.phase);
  if (!p.conditions.empty()) {
    json c = json::array();
    for (const auto& x : p.conditions) c.push_back({x.type, x.status, x.last_transition_time});
    j[kConditions] = std::move(c);
  }
  if (!p.containers.empty()) {
    json k = json::array();
    for (const auto& x : p.containers) k.push_back({x.name, x.image, x.image_id});
    j[kContainers] = std::move(k);
  }
  if (!p.owner_kind.empty() || !p.owner_name.empty() || p.owner_inferred) {
    j[kOwner] = {p.owner_kind, p.owner_name, p.owner_inferred};
  }
  if (!p.labels.empty()) j[kLabels] = p.labels;
  if (!p.annotations.empty()) j[kAnnotations] = p.annotations;
  PutIfSet(j, kCreated, p.creation_timestamp);
  PutIfSet(j, kDeleted, p.deletion_timestamp);
  PutIfSet(j, kResourceVersion, p.resource_version);
  if (r.observed_unix_ms != 0) j[kObserved] = r.observed_unix_ms;
  return j;
}

}  // namespace

const char* RecordOpName(RecordOp op) { return op == RecordOp::kDelete ? "D" : "U"; }

namespace {

// The report without its records ("r" is an empty array).
json Envelope(const Report& report) {
  json j = json::object();
  j["v"] = kReportVersion;
  j["node"] = report.node;
  j["epoch"] = report.epoch;
  j["seq"] = report.seq;
  if (report.snapshot) j["snap"] = true;
  if (report.replay) j["rp"] = true;
  if (report.sent_unix_ms != 0) j["sent"] = report.sent_unix_ms;
  j["r"] = json::array();
  return j;
}

// Replace invalid UTF-8 rather than throw: a pod name can't hold it, but
// a label value from a broken client must not take the agent down.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::string EncodeReport(const Report& report) {
  json j = Envelope(report);
  json& records = j["r"];
  for (const auto& r : report.records) records.push_back(RecordToWire(r, report.node));
  return Dump(j);
}

std::string EncodeRecord(const ReportRecord& record, const std::string& node) {
  return Dump(RecordToWire(record, node));
}

std::string EncodeReport(const Report& envelope, const std::vector<std::string>& encoded_records) {
  std::string out = Dump(Envelope(envelope));
  // Inside a string value every quote is escaped, so `"r":[]` occurs once:
  // as the key Envelope wrote.
  size_t at = out.find("\"r\":[]");
  if (at == std::string::npos) return out;  // Cannot happen.
  std::string joined;
  for (const std::string& r : encoded_records) {
    if (!joined.empty()) joined += ',';
    joined += r;
  }
  out.insert(at + 5, joined);
  return out;
}

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (lead byte >= 0x80), or 0
// when it is not one; then `*bad_at` is where the sequence went wrong: the
// lead byte itself, the first byte that cannot continue it, or s.size() when
// the string ends inside it. RFC 3629, the ranges Hoehrmann's decoder (which
// nlohmann uses) accepts.
size_t Utf8SequenceLength(std::string_view s, size_t i, size_t* bad_at) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // Range of the second byte.
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // No surrogates.
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // Nothing above U+10FFFF.
  } else {
    *bad_at = i;
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) {
      *bad_at = s.size();
      return 0;
    }
    auto b = static_cast<unsigned char>(s[i + k]);
    if (b < lo || b > hi) {
      *bad_at = i + k;
      return 0;
    }
    lo = 0x80;
    hi = 0xBF;
  }
  return need + 1;
}

}  // namespace

// What nlohmann's dump(-1, ' ', false, error_handler_t::replace) writes for a
// string: the escapes below, other bytes as they are, and one U+FFFD for each
// ill-formed sequence (the byte that ended it is read again as a new start).
// ReportTest.FastLogLineEqualsPodRecordToLogJsonOnRandomRecords holds it to that.
void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t start = 0;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t bad_at = 0;
      size_t n = Utf8SequenceLength(s, i, &bad_at);
      if (n > 0) {
        i += n;
        continue;
      }
      out->append(s.data() + start, i - start);
      out->append("\xEF\xBF\xBD");
      // An invalid lead byte is consumed; a sequence cut short resumes at
      // the byte that cut it.
      i = bad_at == i ? i + 1 : bad_at;
      start = i;
      continue;
    }
    out->append(s.data() + start, i - start);
    start = ++i;
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default: {
        char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(u, 6);
      }
    }
  }
  out->append(s.data() + start, s.size() - start);
  out->push_back('"');
}

namespace {

// The pod's fields of the log schema, in key order.
enum class LogKey : uint8_t {
  kAnnotations,  // Only when some were captured.
  kConditions,
  kContainers,
  kCreated,
  kDeleted,
  kHostIp,
  kLabels,
  kNamespace,
  kNodeName,
  kOwner,
  kPhase,
  kPodIp,
  kPodIps,
  kPodName,
  kResourceVersion,
  kUid,
  kEnd
};
constexpr std::string_view kLogKeys[] = {
    "annotations", "conditions", "containers", "creation_timestamp", "deletion_timestamp",
    "host_ip",     "labels",     "namespace",  "node_name",          "owner",
    "phase",       "pod_ip",     "pod_ips",    "pod_name",           "resource_version",
    "uid"};

void AppendKey(std::string_view key, std::string* out) {
  out->push_back('"');
  out->append(key);  // Our own keys: nothing to escape.
  out->append("\":");
}

void AppendStringMap(const std::map<std::string, std::string>& m, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const auto& [key, value] : m) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(key, out);
    out->push_back(':');
    AppendJsonString(value, out);
  }
  out->push_back('}');
}

void AppendLogValue(const PodRecord& r, LogKey k, std::string* out) {
  switch (k) {
    case LogKey::kAnnotations:
      return AppendStringMap(r.annotations, out);
    case LogKey::kConditions: {
      out->push_back('[');
      bool first = true;
      for (const auto& c : r.conditions) {
        if (!first) out->push_back(',');
        first = false;
        out->append("{\"last_transition_time\":");
        AppendJsonString(c.last_transition_time, out);
        out->append(",\"status\":");
        AppendJsonString(c.status, out);
        out->append(",\"type\":");
        AppendJsonString(c.type, out);
        out->push_back('}');
      }
      out->push_back(']');
      return;
    }
    case LogKey::kContainers: {
      out->push_back('[');
      bool first = true;
      for (const auto& c : r.containers) {
        if (!first) out->push_back(',');
        first = false;
        out->append("{\"image\":");
        AppendJsonString(c.image, out);
        out->append(",\"image_id\":");
        AppendJsonString(c.image_id, out);
        out->append(",\"name\":");
        AppendJsonString(c.name, out);
        out->push_back('}');
      }
      out->push_back(']');
      return;
    }
    case LogKey::kCreated:
      return AppendJsonString(r.creation_timestamp, out);
    case LogKey::kDeleted:
      if (r.deletion_timestamp.empty()) {
        out->append("null");
      } else {
        AppendJsonString(r.deletion_timestamp, out);
      }
      return;
    case LogKey::kHostIp:
      return AppendJsonString(r.host_ip, out);
    case LogKey::kLabels:
      return AppendStringMap(r.labels, out);
    case LogKey::kNamespace:
      return AppendJsonString(r.namespace_, out);
    case LogKey::kNodeName:
      return AppendJsonString(r.node_name, out);
    case LogKey::kOwner:
      if (r.owner_kind.empty() && r.owner_name.empty()) {
        out->append("null");
        return;
      }
      out->append(r.owner_inferred ? "{\"inferred\":true,\"kind\":"
                                   : "{\"inferred\":false,\"kind\":");
      AppendJsonString(r.owner_kind, out);
      out->append(",\"name\":");
      AppendJsonString(r.owner_name, out);
      out->push_back('}');
      return;
    case LogKey::kPhase:
      return AppendJsonString(r.phase, out);
    case LogKey::kPodIp:
      return AppendJsonString(r.pod_ip, out);
    case LogKey::kPodIps: {
      out->push_back('[');
      bool first = true;
      for (const auto& ip : r.pod_ips) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(ip, out);
      }
      out->push_back(']');
      return;
    }
    case LogKey::kPodName:
      return AppendJsonString(r.name, out);
    case LogKey::kResourceVersion:
      return AppendJsonString(r.resource_version, out);
    case LogKey::kUid:
      return AppendJsonString(r.uid, out);
    case LogKey::kEnd:
      return;
  }
}

}  // namespace

void AppendPodLogJson(const PodRecord& pod, std::initializer_list<LogField> extra,
                      std::string* out) {
  AppendPodLogJson(pod, extra.begin(), extra.size(), out);
}

void AppendPodLogJson(const PodRecord& pod, const LogField* extra, size_t extra_count,
                      std::string* out) {
  out->push_back('{');
  const LogField* x = extra;
  const LogField* end = extra + extra_count;
  bool first = true;
  auto comma = [&] {
    if (!first) out->push_back(',');
    first = false;
  };
  auto append_extra = [&](const LogField& f) {
    comma();
    AppendKey(f.key, out);
    if (f.raw) {
      out->append(f.value);
    } else {
      AppendJsonString(f.value, out);
    }
  };
  for (int k = 0; k < static_cast<int>(LogKey::kEnd); ++k) {
    std::string_view key = kLogKeys[k];
    for (; x != end && x->key < key; ++x) append_extra(*x);
    if (static_cast<LogKey>(k) == LogKey::kAnnotations && pod.annotations.empty()) continue;
    comma();
    AppendKey(key, out);
    AppendLogValue(pod, static_cast<LogKey>(k), out);
  }
  for (; x != end; ++x) append_extra(*x);
  out->push_back('}');
}

Result<std::string> GzipCompress(std::string_view data, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Internal("gzip: deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Internal("gzip: deflate failed");
  out.resize(produced);
  return out;
}

Result<std::string> GzipDecompress(std::string_view data, size_t max_output_bytes) {
  z_stream zs{};
  // 15 + 32: detect gzip or zlib headers automatically.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return Internal("gzip: inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return InvalidArgument("gzip: corrupt or truncated body");
    }
    size_t n = sizeof(buf) - zs.avail_out;
    if (out.size() + n > max_output_bytes) {
      inflateEnd(&zs);
      return Status(
          StatusCode::kResourceExhausted,
          "gzip: decompressed body exceeds " + std::to_string(max_output_bytes) + " bytes");
    }
    out.append(buf, n);
    if (rc == Z_OK && n == 0 && zs.avail_in == 0) {
      inflateEnd(&zs);
      return InvalidArgument("gzip: truncated body");
    }
  }
  bool trailing = zs.avail_in != 0;
  inflateEnd(&zs);
  if (trailing) return InvalidArgument("gzip: trailing bytes after the stream");
  return out;
}

}  // namespace ashiato
