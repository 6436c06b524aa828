#include "common/live_config.h"

#include <gtest/gtest.h>

#include "common/live_config_watch.h"

namespace ashiato {
namespace {

using Data = std::map<std::string, std::string>;

TEST(LiveConfigTest, AbsentKeysKeepTheBase) {
  LiveConfig base;
  base.capture_entries = {"example.com/team"};
  base.capture = *AnnotationCapture::Parse(base.capture_entries);
  base.log_format = LogFormat::kText;
  auto c = ParseLiveConfig({}, base);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->scope.everything());
  EXPECT_EQ(c->capture_entries, base.capture_entries);
  EXPECT_TRUE(c->capture.Matches("example.com/team"));
  EXPECT_EQ(c->log_format, LogFormat::kText);
}

TEST(LiveConfigTest, ParsesEveryKey) {
  auto c = ParseLiveConfig({{"namespaces", "team-*, *-system\nprod"},
                            {"excludeNamespaces", "kube-public"},
                            {"labelSelector", "tier in (web,db)\n"},
                            {"captureAnnotations", "example.com/*, owner"},
                            {"logFormat", "text\n"}},
                           LiveConfig());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->scope.include(), (std::vector<std::string>{"*-system", "prod", "team-*"}));
  EXPECT_EQ(c->scope.exclude(), (std::vector<std::string>{"kube-public"}));
  EXPECT_EQ(c->scope.label_selector(), "tier in (web,db)");
  EXPECT_EQ(c->capture_entries, (std::vector<std::string>{"example.com/*", "owner"}));
  EXPECT_TRUE(c->capture.Matches("example.com/x"));
  EXPECT_EQ(c->log_format, LogFormat::kText);
}

TEST(LiveConfigTest, RefusesWhatItCannotApplyNamingTheKey) {
  const Data bad[] = {
      {{"namespace", "team-a"}},         // A typo of "namespaces".
      {{"namespaces", "Team A"}},        // Not a namespace name.
      {{"excludeNamespaces", "a/b"}},    //
      {{"labelSelector", "tier in ("}},  //
      {{"captureAnnotations", "a*b"}},   // "*" only at the end.
      {{"logFormat", "yaml"}},           //
  };
  const char* keys[] = {"namespace",     "namespaces",         "excludeNamespaces",
                        "labelSelector", "captureAnnotations", "logFormat"};
  for (size_t i = 0; i < std::size(bad); ++i) {
    auto c = ParseLiveConfig(bad[i], LiveConfig());
    ASSERT_FALSE(c.ok()) << keys[i];
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(keys[i]), std::string::npos) << c.status().message();
  }
}

TEST(LiveConfigTest, ScopeSelectsByNamespaceGlobsAndLabels) {
  auto s = PodScope::Make({"*-system", "team-*"}, {"team-secret"}, "tier!=batch");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->Contains("kube-system", {}));
  EXPECT_TRUE(s->Contains("team-a", {{"tier", "web"}}));
  EXPECT_FALSE(s->Contains("team-a", {{"tier", "batch"}}));
  EXPECT_FALSE(s->Contains("team-secret", {}));  // Excludes win.
  EXPECT_FALSE(s->Contains("default", {}));
  EXPECT_TRUE(PodScope().Contains("anything", {{"a", "b"}}));
}

TEST(LiveConfigTest, CanonicalFormRoundTripsAndIdentifiesScopes) {
  EXPECT_EQ(PodScope().Canonical(), "");
  auto a = PodScope::Make({"team-*", "a"}, {}, "x=y");
  auto b = PodScope::Make({"a", "team-*", "a"}, {}, "x=y");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->Canonical(), b->Canonical());
  auto back = PodScope::FromCanonical(a->Canonical());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->Canonical(), a->Canonical());
  EXPECT_TRUE(back->Contains("team-b", {{"x", "y"}}));
  EXPECT_FALSE(PodScope::FromCanonical("{nope").ok());
}

TEST(LiveConfigTest, ChangesNameEachKeyOnce) {
  LiveConfig a;
  auto b = ParseLiveConfig({{"namespaces", "*-system"}, {"logFormat", "text"}}, a);
  ASSERT_TRUE(b.ok());
  auto changes = LiveConfigChanges(a, *b);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0], "namespaces: \"\" -> \"*-system\"");
  EXPECT_EQ(changes[1], "logFormat: \"json\" -> \"text\"");
  EXPECT_TRUE(LiveConfigChanges(*b, *b).empty());
}

TEST(LiveConfigTest, ConfigMapReference) {
  auto r = ParseConfigMapRef("ashiato/ashiato-config");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, "ashiato");
  EXPECT_EQ(r->second, "ashiato-config");
  for (const char* bad : {"", "name", "/name", "ns/", "a/b/c"}) {
    EXPECT_FALSE(ParseConfigMapRef(bad).ok()) << bad;
  }
}

// The watch's bookkeeping, without an API server (the e2e test has one).
class NoApi : public WatchApi {
 public:
  Result<nlohmann::json> Get(const std::string&) override { return Unavailable("none"); }
  Status Watch(const std::string&, const std::function<bool(const nlohmann::json&)>&,
               std::chrono::milliseconds) override {
    return Unavailable("none");
  }
  void Cancel() override {}
};

TEST(LiveConfigWatchTest, AppliesValidChangesOnceAndKeepsTheLastGoodOne) {
  NoApi api;
  std::vector<std::string> applied;
  int refused = 0, valid = 0;
  LiveConfigWatch::Callbacks cb;
  cb.applied = [&](const LiveConfig& c) {
    applied.push_back(c.scope.Canonical() + "|" + (c.log_format == LogFormat::kText ? "t" : "j"));
  };
  cb.refused = [&](const Status&) { ++refused; };
  cb.valid = [&] { ++valid; };
  LiveConfigWatch w("ashiato", "ashiato-config", LiveConfig(), &api, cb);

  w.Offer(std::nullopt);  // Absent at first: the flags' values, applied once.
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0], "|j");
  w.Offer(std::nullopt);  // A relist: nothing new.
  EXPECT_EQ(applied.size(), 1u);

  w.Offer(Data{{"namespaces", "*-system"}});
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_TRUE(w.current().scope.Contains("kube-system", {}));
  EXPECT_FALSE(w.current().scope.Contains("team-a", {}));

  w.Offer(Data{{"namespaces", "*-system"}, {"labelSelector", "a in ("}});
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(applied.size(), 2u);  // Refused: the last good one stays.
  EXPECT_TRUE(w.current().scope.Contains("kube-system", {}));
  w.Offer(Data{{"namespaces", "*-system"}, {"labelSelector", "a in ("}});
  EXPECT_EQ(refused, 1);  // The same bad content again (a relist): counted once.

  // Back to the good content: valid again, nothing to apply.
  int valid_before = valid;
  w.Offer(Data{{"namespaces", "*-system"}});
  EXPECT_EQ(valid, valid_before + 1);
  EXPECT_EQ(applied.size(), 2u);

  w.Offer(Data{{"namespaces", "*-system"}, {"logFormat", "text"}});
  ASSERT_EQ(applied.size(), 3u);
  EXPECT_EQ(applied[2].back(), 't');

  w.Offer(std::nullopt);  // Deleted: the flags' values are back.
  ASSERT_EQ(applied.size(), 4u);
  EXPECT_EQ(applied[3], "|j");
}

}  // namespace
}  // namespace ashiato
