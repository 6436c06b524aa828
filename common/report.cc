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

// Decoding streams nlohmann's SAX events straight into the Report: no DOM,
// no per-value json nodes (the DOM cost ~3x the time and most of the
// allocations of a decode). Validation is as strict as the wire format
// says: on the first error the handler stops and DecodeReport re-reads the
// text with VersionSax, so that malformed JSON and an unknown version are
// reported in preference to a field error (as a DOM reader would).
class ReportSax {
 public:
  ReportSax(const ReportLimits& limits, Report* out) : limits_(limits), out_(out) {
    stack_.reserve(8);
  }

  // Outcome, valid after sax_parse returned.
  const Status& error() const { return error_; }
  bool failed() const { return failed_; }

  // Checks done once the whole document was read.
  Status Finish() {
    if (!have_v_) return InvalidArgument("report.v: missing (protocol version)");
    if (!v_integer_) return InvalidArgument("report.v: expected an integer");
    if (v_repr_ != std::to_string(kReportVersion)) {
      return InvalidArgument("report.v: unsupported protocol version " + v_repr_ +
                             " (this aggregator speaks " + std::to_string(kReportVersion) + ")");
    }
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

  // --- nlohmann SAX interface.
  bool null() { return Scalar(Kind::kNull); }
  bool boolean(bool b) {
    bool_ = b;
    return Scalar(Kind::kBool);
  }
  bool number_integer(int64_t v) {
    int_ = v;
    return Scalar(Kind::kInt);
  }
  bool number_unsigned(uint64_t v) {
    uint_ = v;
    return Scalar(Kind::kUnsigned);
  }
  bool number_float(double, const std::string&) { return Scalar(Kind::kFloat); }
  bool binary(json::binary_t&) { return Fail(InvalidArgument("report: unexpected binary value")); }
  bool string(std::string& s) {
    str_ = &s;
    return Scalar(Kind::kString);
  }
  bool start_object(std::size_t) {
    return Container(+1, [&] { return Start(true); });
  }
  bool start_array(std::size_t) {
    return Container(+1, [&] { return Start(false); });
  }
  bool end_object() {
    return Container(-1, [&] { return End(); });
  }
  bool end_array() {
    return Container(-1, [&] { return End(); });
  }
  bool key(std::string& k) {
    switch (Top()) {
      case Frame::kTop:
        top_key_ = TopKeyOf(k);
        top_errors_ &= ~(1u << static_cast<unsigned>(top_key_));  // A later duplicate wins.
        break;
      case Frame::kRecord:
        rec_key_ = RecKeyOf(k);
        field_errors_ &= ~(1u << static_cast<unsigned>(rec_key_));
        break;
      case Frame::kLabels:
        if (k.size() > limits_.max_string_bytes) {
          return Fail(InvalidArgument(RecordWhere() + ".l: label key too long"));
        }
        label_key_ = std::move(k);
        break;
      case Frame::kAnnotations:
        annotation_bytes_ += k.size();
        if (++annotation_count_ > limits_.max_annotations ||
            annotation_bytes_ > limits_.max_annotation_bytes) {
          return Fail(InvalidArgument(RecordWhere() + ".a: more than " +
                                      std::to_string(limits_.max_annotations) + " annotations or " +
                                      std::to_string(limits_.max_annotation_bytes) + " bytes"));
        }
        label_key_ = std::move(k);
        break;
      default:
        break;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    failed_ = true;
    malformed_ = true;
    return false;
  }

 private:
  enum class Frame : uint8_t {
    kNone,
    kTop,
    kRecords,
    kRecord,
    kIps,
    kTuples,
    kTuple,
    kOwner,
    kLabels,
    kAnnotations,
    kSkip
  };
  enum class Kind : uint8_t { kNull, kBool, kInt, kUnsigned, kFloat, kString };
  enum class TopKey : uint8_t { kOther, kV, kNode, kEpoch, kSeq, kSnap, kReplay, kSent, kR };
  static constexpr unsigned kTopKeys = 9;
  static constexpr unsigned kRecKeys = 19;
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

  static TopKey TopKeyOf(std::string_view k) {
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

  static RecKey RecKeyOf(std::string_view k) {
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

  static const char* RecKeyName(RecKey k) {
    switch (k) {
      case RecKey::kOp:
        return kOp;
      case RecKey::kUid:
        return kUid;
      case RecKey::kNs:
        return kNamespace;
      case RecKey::kName:
        return kName;
      case RecKey::kNode:
        return kNode;
      case RecKey::kIp:
        return kPodIp;
      case RecKey::kIps:
        return kPodIps;
      case RecKey::kHip:
        return kHostIp;
      case RecKey::kPhase:
        return kPhase;
      case RecKey::kConditions:
        return kConditions;
      case RecKey::kContainers:
        return kContainers;
      case RecKey::kOwner:
        return kOwner;
      case RecKey::kLabels:
        return kLabels;
      case RecKey::kCreated:
        return kCreated;
      case RecKey::kDeleted:
        return kDeleted;
      case RecKey::kRv:
        return kResourceVersion;
      case RecKey::kObserved:
        return kObserved;
      case RecKey::kAnnotations:
        return kAnnotations;
      default:
        return "?";
    }
  }

  Frame Top() const { return stack_.empty() ? Frame::kNone : stack_.back(); }

  template <typename F>
  bool Container(int adjust, F f) {
    adjust_ = adjust;
    bool ok = f();
    adjust_ = 0;
    return ok;
  }

  // An error in the value of one key of the envelope or of a record is
  // remembered and the rest of that value skipped: a DOM keeps the last of
  // duplicate keys, so a later duplicate may still replace the bad value.
  // Any other error stops the parse.
  bool Fail(Status st) {
    if (!finishing_ && stack_.size() >= 3 && stack_[2] == Frame::kRecord &&
        stack_[1] == Frame::kRecords) {
      unsigned k = static_cast<unsigned>(rec_key_);
      if (!(field_errors_ & (1u << k))) field_error_[k] = std::move(st);
      field_errors_ |= 1u << k;
      return SkipRestOfValue(3);
    }
    if (stack_.size() == 1 && stack_[0] == Frame::kTop && top_key_ != TopKey::kOther) {
      unsigned k = static_cast<unsigned>(top_key_);
      if (!(top_errors_ & (1u << k))) top_error_[k] = std::move(st);
      top_errors_ |= 1u << k;
      return SkipRestOfValue(1);
    }
    if (!failed_) error_ = std::move(st);
    failed_ = true;
    return false;
  }

  // Replaces the frames above the first `keep` by one skip frame covering
  // the containers still open in the failed value.
  bool SkipRestOfValue(size_t keep) {
    long open = static_cast<long>(stack_.size() - keep) + adjust_;
    stack_.resize(keep);
    if (open > 0) {
      skip_depth_ = static_cast<size_t>(open);
      stack_.push_back(Frame::kSkip);
    }
    return true;
  }

  std::string RecordWhere() const {
    return "report.r[" + std::to_string(out_->records.size() - 1) + "]";
  }
  std::string FieldWhere() const { return RecordWhere() + "." + RecKeyName(rec_key_); }

  // Moves the current string value into `*out` after the length check.
  bool TakeString(const std::string& where, std::string* out) {
    if (str_->size() > limits_.max_string_bytes) {
      return Fail(InvalidArgument(where + ": longer than " +
                                  std::to_string(limits_.max_string_bytes) + " bytes"));
    }
    *out = std::move(*str_);
    return true;
  }

  bool Scalar(Kind kind) {
    switch (Top()) {
      case Frame::kNone:
        return Fail(InvalidArgument("report: expected a JSON object"));
      case Frame::kTop:
        return TopScalar(kind);
      case Frame::kRecords:
        return Fail(InvalidArgument("report.r[" + std::to_string(out_->records.size()) +
                                    "]: expected an object"));
      case Frame::kRecord:
        return RecordScalar(kind);
      case Frame::kIps: {
        auto& ips = out_->records.back().pod.pod_ips;
        if (kind != Kind::kString) {
          return Fail(InvalidArgument(RecordWhere() + ".ips[" + std::to_string(ips.size()) +
                                      "]: expected a string"));
        }
        if (ips.size() >= limits_.max_records) {
          return Fail(InvalidArgument(RecordWhere() + ".ips: too many elements"));
        }
        ips.emplace_back();
        if (str_->size() > limits_.max_string_bytes) {
          return TakeString(RecordWhere() + ".ips[" + std::to_string(ips.size() - 1) + "]",
                            &ips.back());
        }
        ips.back() = std::move(*str_);
        return true;
      }
      case Frame::kTuples:
        return Fail(InvalidArgument(TupleWhere() + ": expected an array"));
      case Frame::kTuple: {
        if (tuple_fill_ >= 3) return Fail(InvalidArgument(TupleWhere() + ": expected 3 elements"));
        std::string* slot = &tuple_[tuple_fill_];
        if (kind != Kind::kString) {
          return Fail(InvalidArgument(TupleWhere() + "[" + std::to_string(tuple_fill_) +
                                      "]: expected a string"));
        }
        if (str_->size() > limits_.max_string_bytes) {
          return TakeString(TupleWhere() + "[" + std::to_string(tuple_fill_) + "]", slot);
        }
        *slot = std::move(*str_);
        ++tuple_fill_;
        return true;
      }
      case Frame::kOwner: {
        PodRecord& p = out_->records.back().pod;
        if (owner_fill_ < 2 && kind == Kind::kString) {
          std::string* slot = owner_fill_ == 0 ? &p.owner_kind : &p.owner_name;
          if (str_->size() > limits_.max_string_bytes) {
            return TakeString(RecordWhere() + ".o[" + std::to_string(owner_fill_) + "]", slot);
          }
          *slot = std::move(*str_);
          ++owner_fill_;
          return true;
        }
        if (owner_fill_ == 2 && kind == Kind::kBool) {
          p.owner_inferred = bool_;
          ++owner_fill_;
          return true;
        }
        return Fail(InvalidArgument(RecordWhere() + ".o: expected [kind, name, inferred]"));
      }
      case Frame::kLabels: {
        if (kind != Kind::kString) {
          return Fail(InvalidArgument(RecordWhere() + ".l." + label_key_ + ": expected a string"));
        }
        if (str_->size() > limits_.max_string_bytes) {
          std::string value;
          return TakeString(RecordWhere() + ".l." + label_key_, &value);
        }
        out_->records.back().pod.labels.insert_or_assign(std::move(label_key_), std::move(*str_));
        return true;
      }
      case Frame::kAnnotations: {
        if (kind != Kind::kString) {
          return Fail(InvalidArgument(RecordWhere() + ".a." + label_key_ + ": expected a string"));
        }
        annotation_bytes_ += str_->size();
        if (annotation_bytes_ > limits_.max_annotation_bytes) {
          return Fail(InvalidArgument(RecordWhere() + ".a: more than " +
                                      std::to_string(limits_.max_annotation_bytes) + " bytes"));
        }
        out_->records.back().pod.annotations.insert_or_assign(std::move(label_key_),
                                                              std::move(*str_));
        return true;
      }
      case Frame::kSkip:
        return true;
    }
    return true;
  }

  bool TopScalar(Kind kind) {
    switch (top_key_) {
      case TopKey::kV:
        have_v_ = true;
        v_integer_ = kind == Kind::kInt || kind == Kind::kUnsigned;
        v_repr_ = kind == Kind::kInt ? std::to_string(int_)
                                     : (kind == Kind::kUnsigned ? std::to_string(uint_) : "");
        return true;
      case TopKey::kNode:
        have_node_ = true;
        if (kind != Kind::kString) return Fail(InvalidArgument("report.node: expected a string"));
        return TakeString("report.node", &out_->node);
      case TopKey::kEpoch:
        have_epoch_ = true;
        if (kind != Kind::kString) return Fail(InvalidArgument("report.epoch: expected a string"));
        return TakeString("report.epoch", &out_->epoch);
      case TopKey::kSeq:
        have_seq_ = true;
        if (kind != Kind::kUnsigned) {
          return Fail(InvalidArgument("report.seq: expected a non-negative integer"));
        }
        out_->seq = uint_;
        return true;
      case TopKey::kSnap:
        if (kind != Kind::kBool) return Fail(InvalidArgument("report.snap: expected a boolean"));
        out_->snapshot = bool_;
        return true;
      case TopKey::kReplay:
        if (kind != Kind::kBool) return Fail(InvalidArgument("report.rp: expected a boolean"));
        out_->replay = bool_;
        return true;
      case TopKey::kSent:
        if (kind == Kind::kInt) {
          out_->sent_unix_ms = int_;
        } else if (kind == Kind::kUnsigned) {
          out_->sent_unix_ms = static_cast<int64_t>(uint_);
        } else {
          return Fail(InvalidArgument("report.sent: expected an integer"));
        }
        return true;
      case TopKey::kR:
        return Fail(InvalidArgument("report.r: expected an array"));
      case TopKey::kOther:
        return true;
    }
    return true;
  }

  bool RecordScalar(Kind kind) {
    ReportRecord& r = out_->records.back();
    PodRecord& p = r.pod;
    std::string* field = nullptr;
    switch (rec_key_) {
      case RecKey::kOther:
        return true;
      case RecKey::kObserved:
        if (kind == Kind::kInt) {
          r.observed_unix_ms = int_;
        } else if (kind == Kind::kUnsigned) {
          r.observed_unix_ms = static_cast<int64_t>(uint_);
        } else {
          return Fail(InvalidArgument(RecordWhere() + ".t: expected an integer"));
        }
        return true;
      case RecKey::kIps:
      case RecKey::kConditions:
      case RecKey::kContainers:
      case RecKey::kLabels:
      case RecKey::kAnnotations:
        return Fail(InvalidArgument(FieldWhere() +
                                    (rec_key_ == RecKey::kLabels || rec_key_ == RecKey::kAnnotations
                                         ? ": expected an object"
                                         : ": expected an array")));
      case RecKey::kOwner:
        return Fail(InvalidArgument(RecordWhere() + ".o: expected [kind, name, inferred]"));
      case RecKey::kOp:
        field = &op_;
        seen_ |= kSeenOp;
        break;
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
    if (kind != Kind::kString) return Fail(InvalidArgument(FieldWhere() + ": expected a string"));
    if (str_->size() > limits_.max_string_bytes) return TakeString(FieldWhere(), field);
    *field = std::move(*str_);
    return true;
  }

  std::string TupleWhere() const {
    return RecordWhere() + (tuples_of_containers_ ? ".k[" : ".c[") + std::to_string(tuple_index_) +
           "]";
  }

  bool Start(bool object) {
    switch (Top()) {
      case Frame::kNone:
        if (!object) return Fail(InvalidArgument("report: expected a JSON object"));
        stack_.push_back(Frame::kTop);
        return true;
      case Frame::kTop:
        if (top_key_ == TopKey::kR) {
          if (object) return Fail(InvalidArgument("report.r: expected an array"));
          have_r_ = true;
          out_->records.clear();
          no_node_.clear();
          stack_.push_back(Frame::kRecords);
          return true;
        }
        if (top_key_ == TopKey::kOther) return Skip();
        if (top_key_ == TopKey::kV) return Fail(InvalidArgument("report.v: expected an integer"));
        return TopScalar(Kind::kNull);  // The type error of that key.
      case Frame::kRecords:
        if (!object) {
          return Fail(InvalidArgument("report.r[" + std::to_string(out_->records.size()) +
                                      "]: expected an object"));
        }
        if (out_->records.size() >= limits_.max_records) {
          return Fail(InvalidArgument("report.r: more than " + std::to_string(limits_.max_records) +
                                      " records"));
        }
        out_->records.emplace_back();
        seen_ = 0;
        field_errors_ = 0;
        rec_key_ = RecKey::kOther;
        stack_.push_back(Frame::kRecord);
        return true;
      case Frame::kRecord: {
        PodRecord& p = out_->records.back().pod;
        switch (rec_key_) {
          case RecKey::kOther:
            return Skip();
          case RecKey::kIps:
            if (object) return Fail(InvalidArgument(RecordWhere() + ".ips: expected an array"));
            p.pod_ips.clear();
            seen_ |= kSeenIps;
            stack_.push_back(Frame::kIps);
            return true;
          case RecKey::kConditions:
          case RecKey::kContainers:
            if (object) return Fail(InvalidArgument(FieldWhere() + ": expected an array"));
            tuples_of_containers_ = rec_key_ == RecKey::kContainers;
            if (tuples_of_containers_) {
              p.containers.clear();
            } else {
              p.conditions.clear();
            }
            tuple_index_ = 0;
            stack_.push_back(Frame::kTuples);
            return true;
          case RecKey::kOwner:
            if (object) {
              return Fail(InvalidArgument(RecordWhere() + ".o: expected [kind, name, inferred]"));
            }
            owner_fill_ = 0;
            stack_.push_back(Frame::kOwner);
            return true;
          case RecKey::kLabels:
            if (!object) return Fail(InvalidArgument(RecordWhere() + ".l: expected an object"));
            p.labels.clear();
            stack_.push_back(Frame::kLabels);
            return true;
          case RecKey::kAnnotations:
            if (!object) return Fail(InvalidArgument(RecordWhere() + ".a: expected an object"));
            p.annotations.clear();
            annotation_count_ = 0;
            annotation_bytes_ = 0;
            stack_.push_back(Frame::kAnnotations);
            return true;
          default:
            return RecordScalar(Kind::kNull);  // The type error of that key.
        }
      }
      case Frame::kTuples:
        if (object) return Fail(InvalidArgument(TupleWhere() + ": expected an array"));
        tuple_fill_ = 0;
        stack_.push_back(Frame::kTuple);
        return true;
      case Frame::kTuple:
        if (tuple_fill_ >= 3) return Fail(InvalidArgument(TupleWhere() + ": expected 3 elements"));
        return Fail(InvalidArgument(TupleWhere() + "[" + std::to_string(tuple_fill_) +
                                    "]: expected a string"));
      case Frame::kIps:
        return Fail(InvalidArgument(RecordWhere() + ".ips[" +
                                    std::to_string(out_->records.back().pod.pod_ips.size()) +
                                    "]: expected a string"));
      case Frame::kOwner:
        return Fail(InvalidArgument(RecordWhere() + ".o: expected [kind, name, inferred]"));
      case Frame::kLabels:
        return Fail(InvalidArgument(RecordWhere() + ".l." + label_key_ + ": expected a string"));
      case Frame::kAnnotations:
        return Fail(InvalidArgument(RecordWhere() + ".a." + label_key_ + ": expected a string"));
      case Frame::kSkip:
        ++skip_depth_;
        return true;
    }
    return true;
  }

  bool Skip() {
    skip_depth_ = 1;
    stack_.push_back(Frame::kSkip);
    return true;
  }

  bool End() {
    switch (Top()) {
      case Frame::kSkip:
        if (--skip_depth_ > 0) return true;
        break;
      case Frame::kRecord:
        if (!FinishRecord()) return false;
        break;
      case Frame::kTuple: {
        if (tuple_fill_ != 3) return Fail(InvalidArgument(TupleWhere() + ": expected 3 elements"));
        PodRecord& p = out_->records.back().pod;
        if (tuples_of_containers_) {
          p.containers.push_back(
              {std::move(tuple_[0]), std::move(tuple_[1]), std::move(tuple_[2])});
        } else {
          p.conditions.push_back(
              {std::move(tuple_[0]), std::move(tuple_[1]), std::move(tuple_[2])});
        }
        ++tuple_index_;
        break;
      }
      case Frame::kOwner:
        if (owner_fill_ != 3) {
          return Fail(InvalidArgument(RecordWhere() + ".o: expected [kind, name, inferred]"));
        }
        break;
      default:
        break;
    }
    stack_.pop_back();
    return true;
  }

  bool FinishRecord() {
    finishing_ = true;
    bool ok = CheckRecord();
    finishing_ = false;
    return ok;
  }

  bool CheckRecord() {
    for (unsigned k = 0; k < kRecKeys; ++k) {
      if (field_errors_ & (1u << k)) return Fail(field_error_[k]);
    }
    ReportRecord& r = out_->records.back();
    PodRecord& p = r.pod;
    if (!(seen_ & kSeenOp)) return Fail(InvalidArgument(RecordWhere() + ".op: missing"));
    if (op_ == "U") {
      r.op = RecordOp::kUpsert;
    } else if (op_ == "D") {
      r.op = RecordOp::kDelete;
    } else {
      return Fail(InvalidArgument(RecordWhere() + ".op: must be \"U\" or \"D\""));
    }
    if (!(seen_ & kSeenUid)) return Fail(InvalidArgument(RecordWhere() + ".u: missing"));
    if (!(seen_ & kSeenNs)) return Fail(InvalidArgument(RecordWhere() + ".ns: missing"));
    if (!(seen_ & kSeenName)) return Fail(InvalidArgument(RecordWhere() + ".n: missing"));
    if (p.uid.empty() || p.namespace_.empty() || p.name.empty()) {
      return Fail(InvalidArgument(RecordWhere() + ": u, ns and n must not be empty"));
    }
    if (!(seen_ & kSeenNode)) {
      if (have_node_) {
        p.node_name = out_->node;
      } else {
        no_node_.push_back(out_->records.size() - 1);
      }
    }
    if (!(seen_ & kSeenIps) && !p.pod_ip.empty()) p.pod_ips.assign(1, p.pod_ip);
    return true;
  }

  static constexpr unsigned kSeenOp = 1, kSeenUid = 2, kSeenNs = 4, kSeenName = 8, kSeenNode = 16,
                            kSeenIps = 32;

  const ReportLimits& limits_;
  Report* out_;
  std::vector<Frame> stack_;
  Status error_ = Status::Ok();
  bool failed_ = false;
  bool malformed_ = false;
  // The current scalar, set by the typed callbacks before Scalar().
  bool bool_ = false;
  int64_t int_ = 0;
  uint64_t uint_ = 0;
  std::string* str_ = nullptr;
  // Envelope.
  TopKey top_key_ = TopKey::kOther;
  bool have_v_ = false, v_integer_ = false, have_node_ = false, have_epoch_ = false,
       have_seq_ = false, have_r_ = false;
  std::string v_repr_;
  std::vector<size_t> no_node_;  // Records without "nd" read before "node".
  // Current record.
  RecKey rec_key_ = RecKey::kOther;
  unsigned seen_ = 0;
  std::string op_;
  std::string label_key_;  // Also the annotation key.
  size_t annotation_count_ = 0;
  size_t annotation_bytes_ = 0;
  bool tuples_of_containers_ = false;
  size_t tuple_index_ = 0;
  size_t tuple_fill_ = 0;
  std::string tuple_[3];
  size_t owner_fill_ = 0;
  size_t skip_depth_ = 0;
  // Deferred errors (see Fail), by key.
  int adjust_ = 0;  // +1 while opening a container, -1 while closing one.
  bool finishing_ = false;
  unsigned top_errors_ = 0;
  Status top_error_[kTopKeys];
  unsigned field_errors_ = 0;
  Status field_error_[kRecKeys];
};

// Second opinion after a field error: is the text well-formed JSON, an
// object, and of a version we speak? Those errors win, as they would if the
// whole document were parsed first.
class VersionSax {
 public:
  bool object = false;
  bool have_v = false, v_is_one = false, v_integer = false;
  std::string v_repr;

  bool null() { return Value(); }
  bool boolean(bool) { return Value(); }
  bool number_integer(int64_t v) {
    if (AtV()) Version(true, v == kReportVersion, std::to_string(v));
    return Value();
  }
  bool number_unsigned(uint64_t v) {
    if (AtV()) Version(true, v == static_cast<uint64_t>(kReportVersion), std::to_string(v));
    return Value();
  }
  bool number_float(double, const std::string&) { return Value(); }
  bool string(std::string&) { return Value(); }
  bool binary(json::binary_t&) { return Value(); }
  bool start_object(std::size_t) {
    if (depth_ == 0) object = true;
    Value();
    ++depth_;
    return true;
  }
  bool start_array(std::size_t) {
    Value();
    ++depth_;
    return true;
  }
  bool end_object() {
    --depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool key(std::string& k) {
    if (depth_ == 1) key_is_v_ = k == "v";
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

 private:
  bool AtV() const { return depth_ == 1 && key_is_v_; }
  void Version(bool integer, bool one, std::string repr) {
    have_v = true;
    v_integer = integer;
    v_is_one = one;
    v_repr = std::move(repr);
  }
  bool Value() {
    if (AtV()) {
      if (!have_v) Version(false, false, "");
      key_is_v_ = false;
    }
    return true;
  }
  int depth_ = 0;
  bool key_is_v_ = false;
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
  if (report.replay) j["rp"] = true;
  if (report.sent_unix_ms != 0) j["sent"] = report.sent_unix_ms;
  json records = json::array();
  for (const auto& r : report.records) records.push_back(RecordToWire(r, report.node));
  j["r"] = std::move(records);
  // Replace invalid UTF-8 rather than throw: a pod name can't hold it, but
  // a label value from a broken client must not take the agent down.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Report> DecodeReport(std::string_view text, const ReportLimits& limits) {
  Report report;
  ReportSax sax(limits, &report);
  bool ok = json::sax_parse(text.data(), text.data() + text.size(), &sax,
                            json::input_format_t::json, /*strict=*/true);
  if (ok && !sax.failed()) {
    Status st = sax.Finish();
    if (!st.ok()) return st;
    return report;
  }
  // Something is wrong: report it in the order a whole-document reader
  // would (malformed, not an object, version, then the first field error).
  VersionSax check;
  if (!json::sax_parse(text.data(), text.data() + text.size(), &check, json::input_format_t::json,
                       /*strict=*/true)) {
    return InvalidArgument("report: malformed or truncated JSON");
  }
  if (!check.object) return InvalidArgument("report: expected a JSON object");
  if (!check.have_v) return InvalidArgument("report.v: missing (protocol version)");
  if (!check.v_integer) return InvalidArgument("report.v: expected an integer");
  if (!check.v_is_one) {
    return InvalidArgument("report.v: unsupported protocol version " + check.v_repr +
                           " (this aggregator speaks " + std::to_string(kReportVersion) + ")");
  }
  if (sax.failed() && !sax.error().ok()) return sax.error();
  return InvalidArgument("report: malformed or truncated JSON");
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t mark = out->size();
  out->push_back('"');
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) continue;
    if (c >= 0x80) {
      // Non-ASCII: let nlohmann validate and replace exactly as dump() does.
      out->resize(mark);
      *out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
    out->append(s.data() + start, i - start);
    start = i + 1;
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
