// Report: the wire format of POST /v1/reports, the agent -> aggregator
// delivery (docs/protocol.md). Versioned JSON with short keys, one envelope
// per batch; optionally gzip-compressed (Content-Encoding: gzip).
//
//   {"v":1,"node":"node-1","epoch":"9f2c…","seq":17,"snap":false,"sent":1732417200123,
//    "r":[{"op":"U","u":"<uid>","ns":"default","n":"web-1","ip":"10.0.0.7",...}]}
//
// Decoding is strict: anything malformed, truncated, of the wrong type or of
// an unknown version is an InvalidArgument Status, never a partial Report.
// Unknown keys are ignored so that a v1 reader accepts additive v1 fields.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "common/pod_record.h"
#include "common/status.h"

namespace ashiato {

// The only version this code writes and reads.
inline constexpr int kReportVersion = 1;

enum class RecordOp {
  kUpsert,  // "U": the pod exists on the node in this state.
  kDelete,  // "D": the pod is gone; `pod` is its last known state.
};

struct ReportRecord {
  RecordOp op = RecordOp::kUpsert;
  PodRecord pod;
  // When the agent observed the change, Unix milliseconds (0 = unknown).
  int64_t observed_unix_ms = 0;
  bool operator==(const ReportRecord& o) const {
    return op == o.op && observed_unix_ms == o.observed_unix_ms && pod.SameObservableState(o.pod) &&
           pod.resource_version == o.pod.resource_version;
  }
};

struct Report {
  // Node whose agent sent the report. Required.
  std::string node;
  // Random per agent process start; with `seq` it orders an agent's batches.
  std::string epoch;
  // Increases by one per batch within an epoch; a retried batch keeps its seq.
  uint64_t seq = 0;
  // True when `records` is the node's complete pod set (all kUpsert): pods the
  // receiver holds for this node and that are missing here are gone.
  bool snapshot = false;
  // True when the agent re-sends what an earlier aggregator instance
  // already acknowledged (its retained changes and the snapshot after
  // them), because the aggregator it reaches now lost that state. The
  // receiver stores the records but does not print them again.
  bool replay = false;
  // When the batch was (first) sent, Unix milliseconds (0 = unknown).
  int64_t sent_unix_ms = 0;
  std::vector<ReportRecord> records;
};

// Limits enforced by DecodeReport, beyond JSON well-formedness.
struct ReportLimits {
  // Records per report.
  size_t max_records = 100000;
  // Longest accepted string field (names are <= 253 in Kubernetes; label
  // values and images can be longer).
  size_t max_string_bytes = 4096;
  // Captured annotations per record: keys at most, and key + value bytes
  // at most (the agent captures at most 32 keys and 4 KiB, plus its
  // "annotations-omitted" marker: common/annotation_capture.h).
  size_t max_annotations = 64;
  size_t max_annotation_bytes = 8192;
};

// Serializes `report` as compact JSON (no whitespace).
std::string EncodeReport(const Report& report);
// One record as EncodeReport writes it in a report whose envelope names `node`.
std::string EncodeRecord(const ReportRecord& record, const std::string& node);
// The report `envelope` (its records ignored) holding `encoded_records`, each
// from EncodeRecord with envelope.node: the bytes EncodeReport would write
// for those records, without decoding them (the agent's replays).
std::string EncodeReport(const Report& envelope, const std::vector<std::string>& encoded_records);

// Parses and validates a report. InvalidArgument with a message naming the
// offending field on any error.
Result<Report> DecodeReport(std::string_view json, const ReportLimits& limits = {});

// gzip (RFC 1952) at `level` (1 fastest .. 9 smallest).
Result<std::string> GzipCompress(std::string_view data, int level = 6);
// Inflates gzip or zlib data. ResourceExhausted when the output would exceed
// `max_output_bytes` (a compression bomb), InvalidArgument when corrupt or
// truncated.
Result<std::string> GzipDecompress(std::string_view data, size_t max_output_bytes);

// The HTTP body as received: decompresses when `content_encoding` is "gzip"
// (InvalidArgument for any other non-identity encoding), then decodes.
Result<Report> DecodeReportBody(std::string_view body, std::string_view content_encoding,
                                size_t max_decoded_bytes, const ReportLimits& limits = {});

// "U" / "D".
const char* RecordOpName(RecordOp op);

// One extra top-level field of a log line written by AppendPodLogJson.
struct LogField {
  std::string_view key;
  std::string_view value;
  // True when `value` is JSON already (true, 12, null); else a string.
  bool raw = false;
};

// Appends one JSON object: the fields of PodRecordToLogJson(pod) plus
// `extra`, with keys in byte order as nlohmann's dump() writes an object, so
// the text equals PodRecordToLogJson(pod) + extra dumped with
// error_handler_t::replace, byte for byte, without building a json value.
// `extra` must be sorted by key and must not repeat a pod field.
void AppendPodLogJson(const PodRecord& pod, std::initializer_list<LogField> extra,
                      std::string* out);
// As above, with `extra_count` fields at `extra` (a list built at run time).
void AppendPodLogJson(const PodRecord& pod, const LogField* extra, size_t extra_count,
                      std::string* out);

// Appends `s` as a quoted JSON string, escaped as nlohmann's dump() does
// (invalid UTF-8 replaced by U+FFFD).
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace ashiato
