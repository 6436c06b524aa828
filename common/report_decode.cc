// DecodeReport on simdjson's DOM parser: the whole body is validated (JSON
// grammar and UTF-8) at a few GB/s first, then the tape is walked straight
// into the Report, with no per-character token buffer and no DOM of our own.
//
// The result is what a whole-document reader (nlohmann's DOM, which the
// protocol was first written against) gives, error for error:
// - malformed, truncated or not UTF-8: "malformed or truncated JSON";
// - then not an object, then the version ("v", the last one if repeated);
// - then field errors. A repeated key keeps its last value, so an error in
//   the value of one key is remembered and cleared by a later duplicate of
//   that key; what is left is reported when the object ends (by key, in a
//   fixed order). Errors inside a record end the decode at that record.
// Where simdjson is stricter than nlohmann's grammar (an integer beyond 64
// bits, which nlohmann reads as a float; nesting beyond 1,024 levels; a
// leading byte order mark), the text takes a slower path that accepts what
// nlohmann accepts; "-0" for "seq", a negative integer to nlohmann, is told
// from "0" the same way.
#include <simdjson.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/report.h"

namespace ashiato {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Bodies up to this size keep the thread's parser buffers for the next
// report (a batch of 500 records is ~450 KB); larger ones free them after.
constexpr size_t kKeepParserCapacity = 512 * 1024;

enum class TopKey : uint8_t { kOther, kV, kNode, kEpoch, kSeq, kSnap, kReplay, kSent, kR };
constexpr unsigned kTopKeys = 9;

enum class RecKey : uint8_t {
  kOther,
  kOp,
  kUid,
  kNs,
  kName,
  kNode,
  kIp,
  kIps,
  kHip,
  kPhase,
  kConditions,
  kContainers,
  kOwner,
  kLabels,
  kCreated,
  kDeleted,
  kRv,
  kObserved,
  kAnnotations
};
constexpr unsigned kRecKeys = 19;
// The record keys of docs/protocol.md, by RecKey.
constexpr const char* kRecKeyNames[kRecKeys] = {"?",   "op",  "u",  "ns", "n", "nd", "ip",
                                                "ips", "hip", "ph", "c",  "k", "o",  "l",
                                                "ct",  "dt",  "rv", "t",  "a"};

TopKey TopKeyOf(std::string_view k) {
  if (k == "v") return TopKey::kV;
  if (k == "node") return TopKey::kNode;
  if (k == "epoch") return TopKey::kEpoch;
  if (k == "seq") return TopKey::kSeq;
  if (k == "snap") return TopKey::kSnap;
  if (k == "rp") return TopKey::kReplay;
  if (k == "sent") return TopKey::kSent;
  if (k == "r") return TopKey::kR;
  return TopKey::kOther;
}

RecKey RecKeyOf(std::string_view k) {
  switch (k.size()) {
    case 1:
      switch (k[0]) {
        case 'u':
          return RecKey::kUid;
        case 'n':
          return RecKey::kName;
        case 'c':
          return RecKey::kConditions;
        case 'k':
          return RecKey::kContainers;
        case 'o':
          return RecKey::kOwner;
        case 'l':
          return RecKey::kLabels;
        case 'a':
          return RecKey::kAnnotations;
        case 't':
          return RecKey::kObserved;
        default:
          return RecKey::kOther;
      }
    case 2:
      if (k == "op") return RecKey::kOp;
      if (k == "ns") return RecKey::kNs;
      if (k == "nd") return RecKey::kNode;
      if (k == "ip") return RecKey::kIp;
      if (k == "ph") return RecKey::kPhase;
      if (k == "ct") return RecKey::kCreated;
      if (k == "dt") return RecKey::kDeleted;
      if (k == "rv") return RecKey::kRv;
      return RecKey::kOther;
    case 3:
      if (k == "ips") return RecKey::kIps;
      if (k == "hip") return RecKey::kHip;
      return RecKey::kOther;
    default:
      return RecKey::kOther;
  }
}

bool IsInteger(element e) {
  return e.type() == element_type::INT64 || e.type() == element_type::UINT64;
}
// The value of an integer element (UINT64 above INT64_MAX wraps, as before).
int64_t IntegerOf(element e) {
  return e.type() == element_type::INT64 ? e.get_int64().value_unsafe()
                                         : static_cast<int64_t>(e.get_uint64().value_unsafe());
}
// Accessors for an element whose type was checked. They return by value:
// value_unsafe() refers into the temporary simdjson_result.
std::string_view StringOf(element e) { return e.get_string().value_unsafe(); }
simdjson::dom::array ArrayOf(element e) { return e.get_array().value_unsafe(); }
simdjson::dom::object ObjectOf(element e) { return e.get_object().value_unsafe(); }

// True iff the last top-level "seq" of the (well-formed) text is a negative
// integer literal: "-0" reads as 0 in simdjson, as a negative number in
// nlohmann, and "seq" must be non-negative.
bool SeqIsNegativeLiteral(std::string_view text) {
  struct Sax {
    int depth = 0;
    bool at_seq = false, negative = false;
    bool Value(bool is_negative) {
      if (depth == 1 && at_seq) negative = is_negative;
      at_seq = false;
      return true;
    }
    bool null() { return Value(false); }
    bool boolean(bool) { return Value(false); }
    bool number_integer(int64_t) { return Value(true); }
    bool number_unsigned(uint64_t) { return Value(false); }
    bool number_float(double, const std::string&) { return Value(false); }
    bool string(std::string&) { return Value(false); }
    bool binary(nlohmann::json::binary_t&) { return Value(false); }
    bool start_object(std::size_t) {
      Value(false);
      ++depth;
      return true;
    }
    bool start_array(std::size_t) {
      Value(false);
      ++depth;
      return true;
    }
    bool end_object() {
      --depth;
      return true;
    }
    bool end_array() {
      --depth;
      return true;
    }
    bool key(std::string& k) {
      at_seq = depth == 1 && k == "seq";
      return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
      return false;
    }
  } sax;
  nlohmann::json::sax_parse(text.data(), text.data() + text.size(), &sax,
                            nlohmann::json::input_format_t::json, /*strict=*/true);
  return sax.negative;
}

// The (well-formed) text with every integer literal outside int64/uint64
// replaced by "0.0": nlohmann reads such a literal as a float, and no field
// of a report accepts a float, whatever its value.
std::string WithWideIntegersAsFloats(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < text.size() && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
      out.append(text, i, j + 1 - i);
      i = j + 1;
      continue;
    }
    if (c != '-' && (c < '0' || c > '9')) {
      out.push_back(c);
      ++i;
      continue;
    }
    size_t j = i;
    bool integer = true;
    while (j < text.size() &&
           (text[j] == '-' || text[j] == '+' || text[j] == '.' || text[j] == 'e' ||
            text[j] == 'E' || (text[j] >= '0' && text[j] <= '9'))) {
      if (text[j] == '.' || text[j] == 'e' || text[j] == 'E') integer = false;
      ++j;
    }
    bool wide = false;
    if (integer) {
      const char* first = text.data() + i;
      const char* last = text.data() + j;
      if (c == '-') {
        int64_t v;
        wide = std::from_chars(first, last, v).ec == std::errc::result_out_of_range;
      } else {
        uint64_t v;
        wide = std::from_chars(first, last, v).ec == std::errc::result_out_of_range;
      }
    }
    if (wide) {
      out.append("0.0");
    } else {
      out.append(text, i, j - i);
    }
    i = j;
  }
  return out;
}

// Walks a parsed document into a Report.
class ReportWalker {
 public:
  ReportWalker(const ReportLimits& limits, std::string_view text, Report* out)
      : limits_(limits), text_(text), out_(out) {}

  Status Walk(element root) {
    if (root.type() != element_type::OBJECT) {
      return InvalidArgument("report: expected a JSON object");
    }
    simdjson::dom::object top = ObjectOf(root);
    Status st = CheckVersion(top);
    if (!st.ok()) return st;
    for (auto field : top) {
      auto key = TopKeyOf(field.key);
      unsigned bit = 1u << static_cast<unsigned>(key);
      top_errors_ &= ~bit;  // A later duplicate replaces the value, and its error.
      st = TopField(key, field.value);
      if (st.ok()) continue;
      if (records_failed_) return st;  // An error in the records ends the decode there.
      top_error_[static_cast<unsigned>(key)] = std::move(st);
      top_errors_ |= bit;
    }
    return Finish();
  }

 private:
  static Status CheckVersion(simdjson::dom::object top) {
    bool have_v = false;
    element v;
    for (auto field : top) {
      if (field.key == "v") {
        have_v = true;
        v = field.value;
      }
    }
    if (!have_v) return InvalidArgument("report.v: missing (protocol version)");
    if (!IsInteger(v)) return InvalidArgument("report.v: expected an integer");
    std::string repr = v.type() == element_type::INT64
                           ? std::to_string(v.get_int64().value_unsafe())
                           : std::to_string(v.get_uint64().value_unsafe());
    if (repr != std::to_string(kReportVersion)) {
      return InvalidArgument("report.v: unsupported protocol version " + repr +
                             " (this aggregator speaks " + std::to_string(kReportVersion) + ")");
    }
    return Status::Ok();
  }

  // A string within the length limit, viewed in the parser's buffer. `where`
  // names it in an error (a callable: built only on error).
  template <typename Where>
  Status ViewString(element e, const Where& where, std::string_view* out) const {
    if (e.type() != element_type::STRING) return InvalidArgument(where() + ": expected a string");
    *out = StringOf(e);
    if (out->size() > limits_.max_string_bytes) {
      return InvalidArgument(where() + ": longer than " + std::to_string(limits_.max_string_bytes) +
                             " bytes");
    }
    return Status::Ok();
  }
  template <typename Where>
  Status TakeString(element e, const Where& where, std::string* out) const {
    std::string_view s;
    Status st = ViewString(e, where, &s);
    if (st.ok()) out->assign(s.data(), s.size());
    return st;
  }

  Status TopField(TopKey key, element value) {
    switch (key) {
      case TopKey::kOther:
      case TopKey::kV:  // Checked first.
        return Status::Ok();
      case TopKey::kNode:
        have_node_ = true;
        return TakeString(
            value, [] { return std::string("report.node"); }, &out_->node);
      case TopKey::kEpoch:
        have_epoch_ = true;
        return TakeString(
            value, [] { return std::string("report.epoch"); }, &out_->epoch);
      case TopKey::kSeq:
        have_seq_ = true;
        if (value.type() == element_type::UINT64) {
          out_->seq = value.get_uint64().value_unsafe();
          return Status::Ok();
        }
        if (value.type() == element_type::INT64) {
          int64_t v = value.get_int64().value_unsafe();
          if (v > 0 || (v == 0 && !SeqIsNegativeLiteral(text_))) {
            out_->seq = static_cast<uint64_t>(v);
            return Status::Ok();
          }
        }
        return InvalidArgument("report.seq: expected a non-negative integer");
      case TopKey::kSnap:
      case TopKey::kReplay: {
        bool* flag = key == TopKey::kSnap ? &out_->snapshot : &out_->replay;
        if (value.type() != element_type::BOOL) {
          return InvalidArgument(key == TopKey::kSnap ? "report.snap: expected a boolean"
                                                      : "report.rp: expected a boolean");
        }
        *flag = value.get_bool().value_unsafe();
        return Status::Ok();
      }
      case TopKey::kSent:
        if (!IsInteger(value)) return InvalidArgument("report.sent: expected an integer");
        out_->sent_unix_ms = IntegerOf(value);
        return Status::Ok();
      case TopKey::kR: {
        if (value.type() != element_type::ARRAY) {
          return InvalidArgument("report.r: expected an array");
        }
        have_r_ = true;
        Status st = Records(ArrayOf(value));
        records_failed_ = !st.ok();
        return st;
      }
    }
    return Status::Ok();
  }

  Status Finish() {
    for (unsigned k = 0; k < kTopKeys; ++k) {
      if (top_errors_ & (1u << k)) return top_error_[k];
    }
    if (!have_node_) return InvalidArgument("report.node: missing");
    if (out_->node.empty()) return InvalidArgument("report.node: must not be empty");
    if (!have_epoch_) return InvalidArgument("report.epoch: missing");
    if (out_->epoch.empty()) return InvalidArgument("report.epoch: must not be empty");
    if (!have_seq_) return InvalidArgument("report.seq: missing");
    if (!have_r_) return InvalidArgument("report.r: missing");
    for (size_t i : no_node_) out_->records[i].pod.node_name = out_->node;
    if (out_->snapshot) {
      for (size_t i = 0; i < out_->records.size(); ++i) {
        if (out_->records[i].op != RecordOp::kUpsert) {
          return InvalidArgument("report.r[" + std::to_string(i) +
                                 "]: a snapshot holds only \"U\"");
        }
      }
    }
    return Status::Ok();
  }

  Status Records(simdjson::dom::array records) {
    out_->records.clear();
    out_->records.reserve(std::min(records.size(), limits_.max_records));
    no_node_.clear();
    for (element e : records) {
      size_t i = out_->records.size();
      if (e.type() != element_type::OBJECT) {
        return InvalidArgument("report.r[" + std::to_string(i) + "]: expected an object");
      }
      if (i >= limits_.max_records) {
        return InvalidArgument("report.r: more than " + std::to_string(limits_.max_records) +
                               " records");
      }
      out_->records.emplace_back();
      Status st = Record(ObjectOf(e), i, &out_->records.back());
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }

  static std::string Where(size_t record) { return "report.r[" + std::to_string(record) + "]"; }
  static std::string Where(size_t record, RecKey key) {
    return Where(record) + "." + kRecKeyNames[static_cast<unsigned>(key)];
  }

  Status Record(simdjson::dom::object fields, size_t index, ReportRecord* r) {
    seen_ = 0;
    unsigned errors = 0;
    for (auto field : fields) {
      RecKey key = RecKeyOf(field.key);
      unsigned bit = 1u << static_cast<unsigned>(key);
      errors &= ~bit;
      Status st = RecordField(key, field.value, index, r);
      if (!st.ok()) {
        field_error_[static_cast<unsigned>(key)] = std::move(st);
        errors |= bit;
      }
    }
    for (unsigned k = 0; k < kRecKeys; ++k) {
      if (errors & (1u << k)) return field_error_[k];
    }
    PodRecord& p = r->pod;
    if (!(seen_ & kSeenOp)) return InvalidArgument(Where(index) + ".op: missing");
    if (op_ == "U") {
      r->op = RecordOp::kUpsert;
    } else if (op_ == "D") {
      r->op = RecordOp::kDelete;
    } else {
      return InvalidArgument(Where(index) + ".op: must be \"U\" or \"D\"");
    }
    if (!(seen_ & kSeenUid)) return InvalidArgument(Where(index) + ".u: missing");
    if (!(seen_ & kSeenNs)) return InvalidArgument(Where(index) + ".ns: missing");
    if (!(seen_ & kSeenName)) return InvalidArgument(Where(index) + ".n: missing");
    if (p.uid.empty() || p.namespace_.empty() || p.name.empty()) {
      return InvalidArgument(Where(index) + ": u, ns and n must not be empty");
    }
    if (!(seen_ & kSeenNode)) no_node_.push_back(index);
    if (!(seen_ & kSeenIps) && !p.pod_ip.empty()) p.pod_ips.assign(1, p.pod_ip);
    return Status::Ok();
  }

  Status RecordField(RecKey key, element value, size_t index, ReportRecord* r) {
    PodRecord& p = r->pod;
    std::string* field = nullptr;
    switch (key) {
      case RecKey::kOther:
        return Status::Ok();
      case RecKey::kObserved:
        if (!IsInteger(value)) return InvalidArgument(Where(index) + ".t: expected an integer");
        r->observed_unix_ms = IntegerOf(value);
        return Status::Ok();
      case RecKey::kIps:
        seen_ |= kSeenIps;
        return Ips(value, index, &p.pod_ips);
      case RecKey::kConditions:
      case RecKey::kContainers:
        return Tuples(key, value, index, &p);
      case RecKey::kOwner:
        return Owner(value, index, &p);
      case RecKey::kLabels:
        return Labels(value, index, &p.labels);
      case RecKey::kAnnotations:
        return Annotations(value, index, &p.annotations);
      case RecKey::kOp:
        seen_ |= kSeenOp;
        return ViewString(
            value, [&] { return Where(index, key); }, &op_);
      case RecKey::kUid:
        field = &p.uid;
        seen_ |= kSeenUid;
        break;
      case RecKey::kNs:
        field = &p.namespace_;
        seen_ |= kSeenNs;
        break;
      case RecKey::kName:
        field = &p.name;
        seen_ |= kSeenName;
        break;
      case RecKey::kNode:
        field = &p.node_name;
        seen_ |= kSeenNode;
        break;
      case RecKey::kIp:
        field = &p.pod_ip;
        break;
      case RecKey::kHip:
        field = &p.host_ip;
        break;
      case RecKey::kPhase:
        field = &p.phase;
        break;
      case RecKey::kCreated:
        field = &p.creation_timestamp;
        break;
      case RecKey::kDeleted:
        field = &p.deletion_timestamp;
        break;
      case RecKey::kRv:
        field = &p.resource_version;
        break;
    }
    return TakeString(
        value, [&] { return Where(index, key); }, field);
  }

  Status Ips(element value, size_t index, std::vector<std::string>* ips) {
    if (value.type() != element_type::ARRAY) {
      return InvalidArgument(Where(index) + ".ips: expected an array");
    }
    ips->clear();
    for (element e : ArrayOf(value)) {
      if (e.type() != element_type::STRING) {
        return InvalidArgument(Where(index) + ".ips[" + std::to_string(ips->size()) +
                               "]: expected a string");
      }
      if (ips->size() >= limits_.max_records) {
        return InvalidArgument(Where(index) + ".ips: too many elements");
      }
      std::string_view s = StringOf(e);
      if (s.size() > limits_.max_string_bytes) {
        return InvalidArgument(Where(index) + ".ips[" + std::to_string(ips->size()) +
                               "]: longer than " + std::to_string(limits_.max_string_bytes) +
                               " bytes");
      }
      ips->emplace_back(s);
    }
    return Status::Ok();
  }

  // "c" and "k": [[a, b, c], ...].
  Status Tuples(RecKey key, element value, size_t index, PodRecord* p) {
    if (value.type() != element_type::ARRAY) {
      return InvalidArgument(Where(index, key) + ": expected an array");
    }
    simdjson::dom::array tuples = ArrayOf(value);
    bool containers = key == RecKey::kContainers;
    if (containers) {
      p->containers.clear();
      p->containers.reserve(tuples.size());
    } else {
      p->conditions.clear();
      p->conditions.reserve(tuples.size());
    }
    size_t t = 0;
    for (element tuple : tuples) {
      auto where = [&] { return Where(index, key) + "[" + std::to_string(t) + "]"; };
      if (tuple.type() != element_type::ARRAY) {
        return InvalidArgument(where() + ": expected an array");
      }
      std::string_view f[3];
      size_t fill = 0;
      for (element e : ArrayOf(tuple)) {
        if (fill >= 3) return InvalidArgument(where() + ": expected 3 elements");
        if (e.type() != element_type::STRING) {
          return InvalidArgument(where() + "[" + std::to_string(fill) + "]: expected a string");
        }
        f[fill] = StringOf(e);
        if (f[fill].size() > limits_.max_string_bytes) {
          return InvalidArgument(where() + "[" + std::to_string(fill) + "]: longer than " +
                                 std::to_string(limits_.max_string_bytes) + " bytes");
        }
        ++fill;
      }
      if (fill != 3) return InvalidArgument(where() + ": expected 3 elements");
      if (containers) {
        p->containers.push_back({std::string(f[0]), std::string(f[1]), std::string(f[2])});
      } else {
        p->conditions.push_back({std::string(f[0]), std::string(f[1]), std::string(f[2])});
      }
      ++t;
    }
    return Status::Ok();
  }

  // "o": [kind, name, inferred].
  Status Owner(element value, size_t index, PodRecord* p) {
    auto bad = [&] {
      return InvalidArgument(Where(index) + ".o: expected [kind, name, inferred]");
    };
    if (value.type() != element_type::ARRAY) return bad();
    size_t fill = 0;
    for (element e : ArrayOf(value)) {
      if (fill < 2 && e.type() == element_type::STRING) {
        std::string_view s = StringOf(e);
        if (s.size() > limits_.max_string_bytes) {
          return InvalidArgument(Where(index) + ".o[" + std::to_string(fill) + "]: longer than " +
                                 std::to_string(limits_.max_string_bytes) + " bytes");
        }
        (fill == 0 ? p->owner_kind : p->owner_name).assign(s.data(), s.size());
      } else if (fill == 2 && e.type() == element_type::BOOL) {
        p->owner_inferred = e.get_bool().value_unsafe();
      } else {
        return bad();
      }
      ++fill;
    }
    return fill == 3 ? Status::Ok() : bad();
  }

  Status Labels(element value, size_t index, std::map<std::string, std::string>* labels) {
    if (value.type() != element_type::OBJECT) {
      return InvalidArgument(Where(index) + ".l: expected an object");
    }
    labels->clear();
    for (auto field : ObjectOf(value)) {
      if (field.key.size() > limits_.max_string_bytes) {
        return InvalidArgument(Where(index) + ".l: label key too long");
      }
      std::string k(field.key);
      if (field.value.type() != element_type::STRING) {
        return InvalidArgument(Where(index) + ".l." + k + ": expected a string");
      }
      std::string_view v = StringOf(field.value);
      if (v.size() > limits_.max_string_bytes) {
        return InvalidArgument(Where(index) + ".l." + k + ": longer than " +
                               std::to_string(limits_.max_string_bytes) + " bytes");
      }
      labels->insert_or_assign(std::move(k), std::string(v));
    }
    return Status::Ok();
  }

  Status Annotations(element value, size_t index, std::map<std::string, std::string>* out) {
    if (value.type() != element_type::OBJECT) {
      return InvalidArgument(Where(index) + ".a: expected an object");
    }
    out->clear();
    size_t count = 0, bytes = 0;
    for (auto field : ObjectOf(value)) {
      bytes += field.key.size();
      if (++count > limits_.max_annotations || bytes > limits_.max_annotation_bytes) {
        return InvalidArgument(Where(index) + ".a: more than " +
                               std::to_string(limits_.max_annotations) + " annotations or " +
                               std::to_string(limits_.max_annotation_bytes) + " bytes");
      }
      std::string k(field.key);
      if (field.value.type() != element_type::STRING) {
        return InvalidArgument(Where(index) + ".a." + k + ": expected a string");
      }
      std::string_view v = StringOf(field.value);
      bytes += v.size();
      if (bytes > limits_.max_annotation_bytes) {
        return InvalidArgument(Where(index) + ".a: more than " +
                               std::to_string(limits_.max_annotation_bytes) + " bytes");
      }
      out->insert_or_assign(std::move(k), std::string(v));
    }
    return Status::Ok();
  }

  static constexpr unsigned kSeenOp = 1, kSeenUid = 2, kSeenNs = 4, kSeenName = 8, kSeenNode = 16,
                            kSeenIps = 32;

  const ReportLimits& limits_;
  std::string_view text_;
  Report* out_;
  bool have_node_ = false, have_epoch_ = false, have_seq_ = false, have_r_ = false;
  bool records_failed_ = false;
  unsigned top_errors_ = 0;
  Status top_error_[kTopKeys];
  std::vector<size_t> no_node_;  // Records without "nd": they are on the envelope's node.
  // Current record.
  unsigned seen_ = 0;
  std::string_view op_;  // Into the parser's buffer.
  Status field_error_[kRecKeys];
};

// The decode of a text simdjson refused: malformed unless nlohmann's grammar
// accepts it (see the top of this file), else parsed again as nlohmann
// reads it.
Result<Report> DecodeUnusual(std::string_view text, const ReportLimits& limits) {
  if (!nlohmann::json::accept(text.begin(), text.end())) {
    return InvalidArgument("report: malformed or truncated JSON");
  }
  std::string rewritten = WithWideIntegersAsFloats(text);
  simdjson::dom::parser parser;
  // Any depth the text can hold (nlohmann has no limit).
  if (parser.allocate(rewritten.size(), rewritten.size() / 2 + 2) != simdjson::SUCCESS) {
    return InvalidArgument("report: too large to parse");
  }
  element root;
  if (parser.parse(rewritten).get(root) != simdjson::SUCCESS) {
    return InvalidArgument("report: malformed or truncated JSON");
  }
  Report report;
  Status st = ReportWalker(limits, rewritten, &report).Walk(root);
  if (!st.ok()) return st;
  return report;
}

}  // namespace

Result<Report> DecodeReport(std::string_view text, const ReportLimits& limits) {
  // nlohmann skips a UTF-8 byte order mark; simdjson does not.
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  thread_local simdjson::dom::parser parser;
  Result<Report> result = Report();
  element root;
  if (parser.parse(text.data(), text.size()).get(root) == simdjson::SUCCESS) {
    Status st = ReportWalker(limits, text, &*result).Walk(root);
    if (!st.ok()) result = st;
  } else {
    result = DecodeUnusual(text, limits);
  }
  if (parser.capacity() > kKeepParserCapacity) parser = simdjson::dom::parser();
  return result;
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
