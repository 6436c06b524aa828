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
  PutIfSet(j, kCreated, p.creation_timestamp);
  PutIfSet(j, kDeleted, p.deletion_timestamp);
  PutIfSet(j, kResourceVersion, p.resource_version);
  if (r.observed_unix_ms != 0) j[kObserved] = r.observed_unix_ms;
  return j;
}

// Strict field readers: each returns a Status naming `where` on a type error.
class Reader {
 public:
  explicit Reader(const ReportLimits& limits) : limits_(limits) {}

  Status String(const json& obj, const char* key, const std::string& where, bool required,
                std::string* out) const {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) return InvalidArgument(where + "." + key + ": missing");
      return Status::Ok();
    }
    return StringValue(*it, where + "." + key, out);
  }

  Status StringValue(const json& v, const std::string& where, std::string* out) const {
    if (!v.is_string()) return InvalidArgument(where + ": expected a string");
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > limits_.max_string_bytes) {
      return InvalidArgument(where + ": longer than " + std::to_string(limits_.max_string_bytes) +
                             " bytes");
    }
    *out = s;
    return Status::Ok();
  }

  Status StringArray(const json& v, const std::string& where, size_t exact_size,
                     std::vector<std::string>* out) const {
    if (!v.is_array()) return InvalidArgument(where + ": expected an array");
    if (exact_size != 0 && v.size() != exact_size) {
      return InvalidArgument(where + ": expected " + std::to_string(exact_size) + " elements");
    }
    if (v.size() > limits_.max_records) return InvalidArgument(where + ": too many elements");
    out->clear();
    for (size_t i = 0; i < v.size(); ++i) {
      std::string s;
      Status st = StringValue(v[i], where + "[" + std::to_string(i) + "]", &s);
      if (!st.ok()) return st;
      out->push_back(std::move(s));
    }
    return Status::Ok();
  }

  Status Record(const json& j, const std::string& where, const std::string& envelope_node,
                ReportRecord* out) const {
    if (!j.is_object()) return InvalidArgument(where + ": expected an object");
    std::string op;
    Status st = String(j, kOp, where, true, &op);
    if (!st.ok()) return st;
    if (op == "U") {
      out->op = RecordOp::kUpsert;
    } else if (op == "D") {
      out->op = RecordOp::kDelete;
    } else {
      return InvalidArgument(where + ".op: must be \"U\" or \"D\"");
    }
    PodRecord& p = out->pod;
    if (!(st = String(j, kUid, where, true, &p.uid)).ok()) return st;
    if (!(st = String(j, kNamespace, where, true, &p.namespace_)).ok()) return st;
    if (!(st = String(j, kName, where, true, &p.name)).ok()) return st;
    if (p.uid.empty() || p.namespace_.empty() || p.name.empty()) {
      return InvalidArgument(where + ": u, ns and n must not be empty");
    }
    p.node_name = envelope_node;
    if (!(st = String(j, kNode, where, false, &p.node_name)).ok()) return st;
    if (!(st = String(j, kPodIp, where, false, &p.pod_ip)).ok()) return st;
    if (auto it = j.find(kPodIps); it != j.end()) {
      if (!(st = StringArray(*it, where + ".ips", 0, &p.pod_ips)).ok()) return st;
    } else if (!p.pod_ip.empty()) {
      p.pod_ips = {p.pod_ip};
    }
    if (!(st = String(j, kHostIp, where, false, &p.host_ip)).ok()) return st;
    if (!(st = String(j, kPhase, where, false, &p.phase)).ok()) return st;
    if (auto it = j.find(kConditions); it != j.end()) {
      if (!it->is_array()) return InvalidArgument(where + ".c: expected an array");
      for (size_t i = 0; i < it->size(); ++i) {
        std::vector<std::string> f;
        st = StringArray((*it)[i], where + ".c[" + std::to_string(i) + "]", 3, &f);
        if (!st.ok()) return st;
        p.conditions.push_back({f[0], f[1], f[2]});
      }
    }
    if (auto it = j.find(kContainers); it != j.end()) {
      if (!it->is_array()) return InvalidArgument(where + ".k: expected an array");
      for (size_t i = 0; i < it->size(); ++i) {
        std::vector<std::string> f;
        st = StringArray((*it)[i], where + ".k[" + std::to_string(i) + "]", 3, &f);
        if (!st.ok()) return st;
        p.containers.push_back({f[0], f[1], f[2]});
      }
    }
    if (auto it = j.find(kOwner); it != j.end()) {
      const json& o = *it;
      if (!o.is_array() || o.size() != 3 || !o[0].is_string() || !o[1].is_string() ||
          !o[2].is_boolean()) {
        return InvalidArgument(where + ".o: expected [kind, name, inferred]");
      }
      if (!(st = StringValue(o[0], where + ".o[0]", &p.owner_kind)).ok()) return st;
      if (!(st = StringValue(o[1], where + ".o[1]", &p.owner_name)).ok()) return st;
      p.owner_inferred = o[2].get<bool>();
    }
    if (auto it = j.find(kLabels); it != j.end()) {
      if (!it->is_object()) return InvalidArgument(where + ".l: expected an object");
      for (const auto& [k, v] : it->items()) {
        std::string value;
        if (k.size() > limits_.max_string_bytes) {
          return InvalidArgument(where + ".l: label key too long");
        }
        if (!(st = StringValue(v, where + ".l." + k, &value)).ok()) return st;
        p.labels.emplace(k, std::move(value));
      }
    }
    if (!(st = String(j, kCreated, where, false, &p.creation_timestamp)).ok()) return st;
    if (!(st = String(j, kDeleted, where, false, &p.deletion_timestamp)).ok()) return st;
    if (!(st = String(j, kResourceVersion, where, false, &p.resource_version)).ok()) return st;
    if (auto it = j.find(kObserved); it != j.end()) {
      if (!it->is_number_integer()) return InvalidArgument(where + ".t: expected an integer");
      out->observed_unix_ms = it->get<int64_t>();
    }
    return Status::Ok();
  }

 private:
  const ReportLimits& limits_;
};

}  // namespace

const char* RecordOpName(RecordOp op) { return op == RecordOp::kDelete ? "D" : "U"; }

std::string EncodeReport(const Report& report) {
  json j = json::object();
  j["v"] = kReportVersion;
  j["node"] = report.node;
  j["epoch"] = report.epoch;
  j["seq"] = report.seq;
  if (report.snapshot) j["snap"] = true;
  if (report.sent_unix_ms != 0) j["sent"] = report.sent_unix_ms;
  json records = json::array();
  for (const auto& r : report.records) records.push_back(RecordToWire(r, report.node));
  j["r"] = std::move(records);
  // Replace invalid UTF-8 rather than throw: a pod name can't hold it, but
  // a label value from a broken client must not take the agent down.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Report> DecodeReport(std::string_view text, const ReportLimits& limits) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("report: malformed or truncated JSON");
  if (!j.is_object()) return InvalidArgument("report: expected a JSON object");
  auto v = j.find("v");
  if (v == j.end()) return InvalidArgument("report.v: missing (protocol version)");
  if (!v->is_number_integer()) return InvalidArgument("report.v: expected an integer");
  if (v->get<int64_t>() != kReportVersion) {
    return InvalidArgument("report.v: unsupported protocol version " + v->dump() +
                           " (this aggregator speaks " + std::to_string(kReportVersion) + ")");
  }
  Reader reader(limits);
  Report report;
  Status st = reader.String(j, "node", "report", true, &report.node);
  if (!st.ok()) return st;
  if (report.node.empty()) return InvalidArgument("report.node: must not be empty");
  if (!(st = reader.String(j, "epoch", "report", true, &report.epoch)).ok()) return st;
  if (report.epoch.empty()) return InvalidArgument("report.epoch: must not be empty");
  auto seq = j.find("seq");
  if (seq == j.end()) return InvalidArgument("report.seq: missing");
  if (!seq->is_number_unsigned()) {
    return InvalidArgument("report.seq: expected a non-negative integer");
  }
  report.seq = seq->get<uint64_t>();
  if (auto snap = j.find("snap"); snap != j.end()) {
    if (!snap->is_boolean()) return InvalidArgument("report.snap: expected a boolean");
    report.snapshot = snap->get<bool>();
  }
  if (auto sent = j.find("sent"); sent != j.end()) {
    if (!sent->is_number_integer()) return InvalidArgument("report.sent: expected an integer");
    report.sent_unix_ms = sent->get<int64_t>();
  }
  auto records = j.find("r");
  if (records == j.end()) return InvalidArgument("report.r: missing");
  if (!records->is_array()) return InvalidArgument("report.r: expected an array");
  if (records->size() > limits.max_records) {
    return InvalidArgument("report.r: more than " + std::to_string(limits.max_records) +
                           " records");
  }
  report.records.resize(records->size());
  for (size_t i = 0; i < records->size(); ++i) {
    st = reader.Record((*records)[i], "report.r[" + std::to_string(i) + "]", report.node,
                       &report.records[i]);
    if (!st.ok()) return st;
    if (report.snapshot && report.records[i].op != RecordOp::kUpsert) {
      return InvalidArgument("report.r[" + std::to_string(i) + "]: a snapshot holds only \"U\"");
    }
  }
  return report;
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

Result<Report> DecodeReportBody(std::string_view body, std::string_view content_encoding,
                                size_t max_decoded_bytes, const ReportLimits& limits) {
  if (content_encoding.empty() || content_encoding == "identity") {
    if (body.size() > max_decoded_bytes) {
      return Status(StatusCode::kResourceExhausted, "report: body too large");
    }
    return DecodeReport(body, limits);
  }
  if (content_encoding != "gzip") {
    return InvalidArgument("unsupported Content-Encoding \"" + std::string(content_encoding) +
                           "\" (use gzip or none)");
  }
  auto raw = GzipDecompress(body, max_decoded_bytes);
  if (!raw.ok()) return raw.status();
  return DecodeReport(*raw, limits);
}

}  // namespace ashiato
