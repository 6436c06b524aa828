#include "common/report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

namespace ashiato {
namespace {

// A realistic pod: unique uid, name suffix and IP; one of a few deployments
// (images and digests repeat across replicas, as in a real node).
PodRecord TypicalPod(int i = 0) {
  static const char* kApps[] = {"checkout-api", "payments-worker", "web-frontend", "redis-cache"};
  std::mt19937 rng(static_cast<unsigned>(i) * 7919u + 17u);
  auto hex = [&rng](int n) {
    std::string s;
    for (int k = 0; k < n; ++k) s += "0123456789abcdef"[rng() % 16];
    return s;
  };
  auto alnum = [&rng](int n) {
    std::string s;
    for (int k = 0; k < n; ++k) s += "bcdfghjklmnpqrstvwxz2456789"[rng() % 27];
    return s;
  };
  std::string app = kApps[i % 4];
  std::string hash = "7d4b9c8f" + std::to_string(i % 4) + "d";
  PodRecord p;
  p.uid = hex(8) + "-" + hex(4) + "-" + hex(4) + "-" + hex(4) + "-" + hex(12);
  p.namespace_ = "payments";
  p.name = app + "-" + hash + "-" + alnum(5);
  p.node_name = "node-1";
  p.pod_ip = "10.244.1." + std::to_string(2 + i % 250);
  p.pod_ips = {p.pod_ip};
  p.host_ip = "172.18.0.3";
  p.phase = "Running";
  p.conditions = {{"PodReadyToStartContainers", "True", "2026-11-24T03:00:02Z"},
                  {"Initialized", "True", "2026-11-24T03:00:01Z"},
                  {"Ready", "True", "2026-11-24T03:00:04Z"},
                  {"ContainersReady", "True", "2026-11-24T03:00:04Z"},
                  {"PodScheduled", "True", "2026-11-24T03:00:00Z"}};
  std::string digest = "sha256:" + std::string(64, "0123"[i % 4]);
  p.containers = {{"app", "registry.example.com/payments/" + app + ":1.42.0",
                   "registry.example.com/payments/" + app + "@" + digest},
                  {"istio-proxy", "docker.io/istio/proxyv2:1.22.1",
                   "docker.io/istio/proxyv2@sha256:"
                   "0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}};
  p.owner_kind = "Deployment";
  p.owner_name = app;
  p.owner_inferred = true;
  p.labels = {{"app", app}, {"pod-template-hash", hash}};
  p.creation_timestamp = "2026-11-24T02:59:58Z";
  p.resource_version = std::to_string(123456 + i * 37);
  return p;
}

Report TypicalReport(int n) {
  Report r;
  r.node = "node-1";
  r.epoch = "5f1e2d3c4b5a6978";
  r.seq = 42;
  r.sent_unix_ms = 1732417200123;
  for (int i = 0; i < n; ++i) {
    r.records.push_back(
        {i % 5 == 4 ? RecordOp::kDelete : RecordOp::kUpsert, TypicalPod(i), 1732417200000 + i});
  }
  return r;
}

TEST(ReportTest, RoundTrip) {
  Report in = TypicalReport(10);
  in.records[3].pod.pod_ips = {"10.244.1.17", "fd00::17"};  // Dual stack.
  in.records[4].pod.node_name = "node-9";                   // Differs from the envelope.
  in.records[5].pod.deletion_timestamp = "2026-11-24T04:00:00Z";
  in.records[6].pod = PodRecord{};
  in.records[6].pod.uid = "u6";
  in.records[6].pod.namespace_ = "ns";
  in.records[6].pod.name = "pending";
  std::string wire = EncodeReport(in);
  auto out = DecodeReport(wire);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->node, in.node);
  EXPECT_EQ(out->epoch, in.epoch);
  EXPECT_EQ(out->seq, in.seq);
  EXPECT_EQ(out->sent_unix_ms, in.sent_unix_ms);
  EXPECT_FALSE(out->snapshot);
  ASSERT_EQ(out->records.size(), in.records.size());
  for (size_t i = 0; i < in.records.size(); ++i) {
    EXPECT_TRUE(out->records[i] == in.records[i]) << i;
    EXPECT_EQ(out->records[i].pod.pod_ips, in.records[i].pod.pod_ips) << i;
  }
  EXPECT_EQ(out->records[4].pod.node_name, "node-9");
}

// The agent replays records as it encoded them when first delivered: the
// spliced report is the bytes EncodeReport writes for the same records,
// whatever the envelope's strings hold (a node name with `"r":[]` in it).
TEST(ReportTest, ReportOfEncodedRecordsEqualsEncodeReport) {
  for (const std::string& node :
       {std::string("node-1"), std::string("x\"r\":[]y"), std::string("bad\xff\xfe utf-8")}) {
    Report in = TypicalReport(7);
    in.node = node;
    in.replay = true;
    in.records[2].pod.node_name = node;
    in.records[3].pod.labels["q"] = "\"r\":[] \x01 \xc3";
    std::vector<std::string> encoded;
    for (const auto& r : in.records) encoded.push_back(EncodeRecord(r, in.node));
    Report envelope = in;
    envelope.records.clear();
    EXPECT_EQ(EncodeReport(envelope, encoded), EncodeReport(in)) << node;
    EXPECT_EQ(EncodeReport(envelope, {}), EncodeReport(envelope)) << node;
  }
}

TEST(ReportTest, SnapshotFlagAndEmptyRecords) {
  Report in;
  in.node = "n";
  in.epoch = "e";
  in.seq = 0;
  in.snapshot = true;
  auto out = DecodeReport(EncodeReport(in));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->snapshot);
  EXPECT_FALSE(out->replay);
  EXPECT_TRUE(out->records.empty());
  in.replay = true;
  std::string wire = EncodeReport(in);
  EXPECT_NE(wire.find("\"rp\":true"), std::string::npos) << wire;
  out = DecodeReport(wire);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->replay);
  EXPECT_FALSE(DecodeReport(R"({"v":1,"node":"n","epoch":"e","seq":1,"rp":1,"r":[]})").ok());
}

TEST(ReportTest, ShortKeysOmitDefaults) {
  Report in = TypicalReport(1);
  std::string wire = EncodeReport(in);
  EXPECT_EQ(wire.find("\"nd\""), std::string::npos) << wire;   // Same node as envelope.
  EXPECT_EQ(wire.find("\"ips\""), std::string::npos) << wire;  // Same as [ip].
  EXPECT_EQ(wire.find("namespace"), std::string::npos) << wire;
}

TEST(ReportTest, RejectsUnknownVersion) {
  auto r = DecodeReport(R"({"v":2,"node":"n","epoch":"e","seq":1,"r":[]})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("version"), std::string::npos);
  EXPECT_FALSE(DecodeReport(R"({"node":"n","epoch":"e","seq":1,"r":[]})").ok());
  EXPECT_FALSE(DecodeReport(R"({"v":"1","node":"n","epoch":"e","seq":1,"r":[]})").ok());
}

TEST(ReportTest, RejectsWrongTypes) {
  const char* bad[] = {
      R"([])",
      R"("x")",
      R"(null)",
      R"({"v":1,"node":5,"epoch":"e","seq":1,"r":[]})",
      R"({"v":1,"node":"","epoch":"e","seq":1,"r":[]})",
      R"({"v":1,"node":"n","epoch":"","seq":1,"r":[]})",
      R"({"v":1,"node":"n","epoch":"e","seq":-1,"r":[]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1.5,"r":[]})",
      R"({"v":1,"node":"n","epoch":"e","seq":"1","r":[]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":{}})",
      R"({"v":1,"node":"n","epoch":"e","seq":1})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"snap":1,"r":[]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[5]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"X","u":"u","ns":"a","n":"b"}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","ns":"a","n":"b"}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"","ns":"a","n":"b"}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":1}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":"b","ip":1}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":"b","ips":"x"}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":"b","c":[["a","b"]]}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":"b","k":[[1,2,3]]}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":"b","o":["a","b",1]}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":"b","l":{"a":1}}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":"b","l":[]}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":"b","t":"x"}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"a","n":"b","rv":7}]})",
      R"({"v":1,"node":"n","epoch":"e","seq":1,"snap":true,"r":[{"op":"D","u":"u","ns":"a","n":"b"}]})",
  };
  for (const char* text : bad) {
    auto r = DecodeReport(text);
    EXPECT_FALSE(r.ok()) << text;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
    }
  }
  EXPECT_TRUE(
      DecodeReport(
          R"({"v":1,"node":"n","epoch":"e","seq":1,"future":{},"r":[{"op":"U","u":"u","ns":"a","n":"b","zz":1}]})")
          .ok());
}

TEST(ReportTest, TruncatedAtEveryByteIsRejected) {
  std::string wire = EncodeReport(TypicalReport(3));
  for (size_t n = 0; n < wire.size(); ++n) {
    auto r = DecodeReport(std::string_view(wire).substr(0, n));
    ASSERT_FALSE(r.ok()) << "accepted a prefix of " << n << " bytes";
    ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(DecodeReport(wire).ok());
}

TEST(ReportTest, ByteFlipsNeverCrash) {
  std::string wire = EncodeReport(TypicalReport(2));
  // Every position, a few hostile replacements: the result is either a
  // clean error or a valid report, never a crash or an exception.
  const char repl[] = {'"', '{', ']', '\0', '\xff', '9', ','};
  size_t accepted = 0;
  for (size_t i = 0; i < wire.size(); ++i) {
    for (char c : repl) {
      std::string s = wire;
      s[i] = c;
      auto r = DecodeReport(s);
      if (r.ok()) {
        ++accepted;
      } else {
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      }
    }
  }
  EXPECT_LT(accepted, wire.size() * 7);
}

TEST(ReportTest, LimitsEnforced) {
  ReportLimits limits;
  limits.max_records = 2;
  EXPECT_FALSE(DecodeReport(EncodeReport(TypicalReport(3)), limits).ok());
  limits.max_records = 10;
  limits.max_string_bytes = 8;
  EXPECT_FALSE(DecodeReport(EncodeReport(TypicalReport(1)), limits).ok());
}

TEST(ReportTest, GzipRoundTripAndBomb) {
  std::string wire = EncodeReport(TypicalReport(100));
  auto gz = GzipCompress(wire);
  ASSERT_TRUE(gz.ok());
  EXPECT_LT(gz->size(), wire.size() / 4);
  auto body = DecodeReportBody(*gz, "gzip", 1 << 20);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(body->records.size(), 100u);

  // Decompressing beyond the limit is refused, not buffered.
  std::string zeros(10 << 20, '0');
  auto bomb = GzipCompress(zeros, 9);
  ASSERT_TRUE(bomb.ok());
  auto r = DecodeReportBody(*bomb, "gzip", 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);

  // Truncated gzip at every 7th byte.
  for (size_t n = 0; n < gz->size(); n += 7) {
    auto t = DecodeReportBody(std::string_view(*gz).substr(0, n), "gzip", 1 << 20);
    ASSERT_FALSE(t.ok()) << n;
  }
  EXPECT_EQ(DecodeReportBody(wire, "br", 1 << 20).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(DecodeReportBody(wire, "", 1 << 20).ok());
  EXPECT_EQ(DecodeReportBody(wire, "", 10).status().code(), StatusCode::kResourceExhausted);
}

// Prints the figures quoted in docs/protocol.md.
TEST(ReportTest, BytesPerTypicalRecord) {
  const int n = 100;
  std::string wire = EncodeReport(TypicalReport(n));
  Report empty = TypicalReport(0);
  size_t envelope = EncodeReport(empty).size();
  auto gz = GzipCompress(wire);
  ASSERT_TRUE(gz.ok());
  nlohmann::json log = PodRecordToLogJson(TypicalPod());
  double raw = static_cast<double>(wire.size() - envelope) / n;
  double zipped = static_cast<double>(gz->size()) / n;
  std::printf(
      "report: envelope %zu B, per record raw %.0f B, gzip %.0f B (batch of %d); "
      "log-schema JSON %zu B\n",
      envelope, raw, zipped, n, log.dump().size());
  EXPECT_LT(raw, static_cast<double>(log.dump().size()));
  EXPECT_LT(raw, 1024);
}

TEST(ReportTest, AnnotationsOnTheWireAndInTheLogLine) {
  Report in = TypicalReport(2);
  in.records[0].pod.annotations = {{"example.com/owner", "payments"}, {"team", "core"}};
  std::string wire = EncodeReport(in);
  EXPECT_NE(wire.find("\"a\":{\"example.com/owner\":\"payments\""), std::string::npos) << wire;
  auto out = DecodeReport(wire);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->records[0].pod.annotations, in.records[0].pod.annotations);
  EXPECT_TRUE(out->records[1].pod.annotations.empty());
  // The log line written without a DOM equals the DOM's, with and without
  // annotations, and with a cluster field among the extras.
  for (const PodRecord& p : {in.records[0].pod, in.records[1].pod}) {
    std::string line;
    AppendPodLogJson(p, {{"cluster", "prod-eu-1"}, {"event", "SYNC"}}, &line);
    nlohmann::json want = PodRecordToLogJson(p);
    want["cluster"] = "prod-eu-1";
    want["event"] = "SYNC";
    EXPECT_EQ(line, want.dump());
  }
  // Bounded: too many annotation bytes is a clear error.
  ReportLimits tight;
  tight.max_annotation_bytes = 10;
  auto refused = DecodeReport(wire, tight);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("report.r[0].a"), std::string::npos)
      << refused.status().ToString();
  auto wrong = DecodeReport(
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"d","n":"p","a":{"k":1}}]})");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find(".a.k: expected a string"), std::string::npos);
}

TEST(ReportTest, UnknownRecordKeysAreIgnored) {
  // What an older aggregator does with a newer agent's additive keys, and
  // this one with keys it does not know.
  auto r = DecodeReport(
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"d","n":"p","zz":{"x":[1]},"a":{"k":"v"}}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->records[0].pod.annotations.at("k"), "v");
}

// Where the decoder's parser (simdjson) is stricter than the JSON grammar the
// protocol was written against (nlohmann's), the text is still read as that
// grammar reads it.
TEST(ReportTest, ReadsWhatAWholeDocumentReaderReads) {
  auto envelope = [](const std::string& extra) {
    return R"({"v":1,"node":"n","epoch":"e",)" + extra + R"(,"r":[]})";
  };
  // "-0" is a negative integer, and seq must not be negative.
  EXPECT_FALSE(DecodeReport(envelope(R"("seq":-0)")).ok());
  EXPECT_TRUE(DecodeReport(envelope(R"("seq":0)")).ok());
  EXPECT_TRUE(DecodeReport(envelope(R"("seq":18446744073709551615)")).ok());
  // Integers beyond 64 bits are floats: ignored under an unknown key,
  // refused where an integer is expected.
  EXPECT_TRUE(DecodeReport(envelope(R"("seq":1,"zz":18446744073709551616)")).ok());
  EXPECT_TRUE(DecodeReport(envelope(R"("seq":1,"zz":[-9223372036854775809])")).ok());
  auto wide = DecodeReport(envelope(R"("seq":18446744073709551616)"));
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.status().message().find("report.seq"), std::string::npos)
      << wide.status().ToString();
  EXPECT_EQ(DecodeReport(envelope(R"("seq":1,"zz":1e999)")).status().code(),
            StatusCode::kInvalidArgument);
  // A byte order mark, and nesting of any depth under an unknown key.
  EXPECT_TRUE(DecodeReport("\xEF\xBB\xBF" + envelope(R"("seq":1)")).ok());
  EXPECT_TRUE(
      DecodeReport(envelope(R"("seq":1,"zz":)" + std::string(5000, '[') + std::string(5000, ']')))
          .ok());
  EXPECT_FALSE(
      DecodeReport(envelope(R"("seq":1,"zz":)" + std::string(5000, '[') + std::string(4999, ']')))
          .ok());
  // Lone surrogates and invalid UTF-8 are malformed, anywhere.
  EXPECT_FALSE(DecodeReport(envelope(R"("seq":1,"zz":"\udc00")")).ok());
  EXPECT_FALSE(DecodeReport(envelope("\"seq\":1,\"zz\":\"\xC0\xAF\"")).ok());
  // A repeated key keeps its last value: records without "nd" are on the
  // envelope's (last) node.
  auto twice = DecodeReport(
      R"({"v":1,"node":"a","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"d","n":"p"}],"node":"b"})");
  ASSERT_TRUE(twice.ok()) << twice.status().ToString();
  EXPECT_EQ(twice->node, "b");
  EXPECT_EQ(twice->records[0].pod.node_name, "b");
  auto fixed = DecodeReport(
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"d","n":"p","c":5,"c":[["Ready","True","t"]]}]})");
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ(fixed->records[0].pod.conditions.size(), 1u);
  auto broken = DecodeReport(
      R"({"v":1,"node":"n","epoch":"e","seq":1,"r":[{"op":"U","u":"u","ns":"d","n":"p","c":[],"c":5}]})");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().message(), "report.r[0].c: expected an array");
}

TEST(ReportTest, LargeAndSmallReportsInTurn) {
  // Over the size whose parser buffers a thread keeps: they are freed, and
  // the next report decodes as before.
  std::string large = EncodeReport(TypicalReport(1000));
  ASSERT_GT(large.size(), 512u * 1024);
  std::string small = EncodeReport(TypicalReport(2));
  for (int i = 0; i < 3; ++i) {
    auto a = DecodeReport(large);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_EQ(a->records.size(), 1000u);
    auto b = DecodeReport(small);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_TRUE(b->records[1] == TypicalReport(2).records[1]);
  }
}

// A string of random bytes, biased towards what is hard to escape: control
// characters, quotes, backslashes, valid multi-byte UTF-8 and every kind of
// invalid UTF-8 (stray continuation bytes, truncated and overlong
// sequences, surrogates, bytes that never occur).
std::string HostileString(std::mt19937& rng) {
  static const std::vector<std::string> kPieces = {"a",
                                                   "Z",
                                                   "0",
                                                   " ",
                                                   "\"",
                                                   "\\",
                                                   "/",
                                                   "\x7f",
                                                   "\n",
                                                   "\t",
                                                   "\r",
                                                   "\b",
                                                   "\f",
                                                   std::string(1, '\0'),
                                                   "\x01",
                                                   "\x1f",
                                                   "\xc3\xa9",
                                                   "\xe6\x97\xa5",
                                                   "\xf0\x9f\x98\x80",
                                                   "\xef\xbf\xbd",
                                                   "\x80",
                                                   "\xbf",
                                                   "\xc0\xaf",
                                                   "\xc1",
                                                   "\xc2",
                                                   "\xe0\x80\x80",
                                                   "\xe6\x97",
                                                   "\xed\xa0\x80",
                                                   "\xf0\x9f",
                                                   "\xf4\x90\x80\x80",
                                                   "\xf5",
                                                   "\xff",
                                                   "\xfe",
                                                   "\xe6",
                                                   "\xf0\x9f\x98"};
  std::string s;
  int n = static_cast<int>(rng() % 12);
  for (int i = 0; i < n; ++i) {
    if (rng() % 4 == 0) {
      s.push_back(static_cast<char>(rng() % 256));
    } else {
      s += kPieces[rng() % kPieces.size()];
    }
  }
  return s;
}

// One definition of the unified log line: the string builder writes exactly
// what nlohmann writes for PodRecordToLogJson (with invalid UTF-8 replaced,
// as the aggregator dumps it).
TEST(ReportTest, FastLogLineEqualsPodRecordToLogJsonOnRandomRecords) {
  std::mt19937 rng(20261203);
  auto str = [&] { return HostileString(rng); };
  for (int i = 0; i < 3000; ++i) {
    PodRecord p;
    p.uid = str();
    p.namespace_ = str();
    p.name = str();
    p.node_name = str();
    p.pod_ip = str();
    for (unsigned k = rng() % 3; k > 0; --k) p.pod_ips.push_back(str());
    p.host_ip = str();
    p.phase = str();
    for (unsigned k = rng() % 3; k > 0; --k) p.conditions.push_back({str(), str(), str()});
    for (unsigned k = rng() % 3; k > 0; --k) p.containers.push_back({str(), str(), str()});
    if (rng() % 3 != 0) {
      p.owner_kind = str();
      p.owner_name = str();
      p.owner_inferred = rng() % 2 == 0;
    }
    for (unsigned k = rng() % 4; k > 0; --k) p.labels[str()] = str();
    for (unsigned k = rng() % 2; k > 0; --k) p.annotations[str()] = str();
    p.creation_timestamp = str();
    if (rng() % 2 == 0) p.deletion_timestamp = str();
    p.resource_version = str();

    std::string cluster = str(), event = str();
    std::string line;
    AppendPodLogJson(p, {{"cluster", cluster}, {"event", event}, {"replayed", "true", true}},
                     &line);
    nlohmann::json want = PodRecordToLogJson(p);
    want["cluster"] = cluster;
    want["event"] = event;
    want["replayed"] = true;
    ASSERT_EQ(line, want.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) << i;

    std::string quoted;
    AppendJsonString(p.uid, &quoted);
    ASSERT_EQ(quoted,
              nlohmann::json(p.uid).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
        << i;
  }
}

}  // namespace
}  // namespace ashiato
