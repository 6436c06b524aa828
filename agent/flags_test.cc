#include "agent/flags.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/cluster_name.h"

namespace ashiato {
namespace {

std::optional<int> Parse(std::vector<const char*> args, AgentOptions* o) {
  args.insert(args.begin(), "ashiato-agent");
  return ParseAgentFlags(static_cast<int>(args.size()), args.data(), o);
}

TEST(FlagsTest, AllFlags) {
  AgentOptions o;
  auto rc = Parse({"--node",
                   "node-2",
                   "--namespace",
                   "default",
                   "--namespace",
                   "*-system",
                   "--name",
                   "web-",
                   "--label",
                   "app=web",
                   "--interval",
                   "1m",
                   "--quorum-list",
                   "--listen-health",
                   "127.0.0.1:0",
                   "--aggregator",
                   "http://agg:8080",
                   "--allow-insecure-aggregator",
                   "--aggregator-token-file",
                   "/t",
                   "--batch-max",
                   "7",
                   "--batch-delay",
                   "2s",
                   "--buffer-max",
                   "99",
                   "--aggregator-ca-file",
                   "/ca.pem",
                   "--heartbeat",
                   "3s",
                   "--push-backoff-max",
                   "2s",
                   "--replay-window",
                   "30m",
                   "--replay-max",
                   "123",
                   "--shutdown-grace",
                   "3s"},
                  &o);
  EXPECT_FALSE(rc.has_value());
  EXPECT_EQ(o.node, "node-2");
  EXPECT_EQ(o.namespaces, (std::vector<std::string>{"default", "*-system"}));
  EXPECT_EQ(o.name_prefix, "web-");
  EXPECT_EQ(o.label_selector, "app=web");
  EXPECT_EQ(o.interval, std::chrono::minutes(1));
  EXPECT_TRUE(o.quorum_list);
  EXPECT_EQ(o.listen_health, "127.0.0.1:0");
  EXPECT_EQ(o.aggregator, "http://agg:8080");
  EXPECT_TRUE(o.allow_insecure_aggregator);
  EXPECT_EQ(o.aggregator_token_file, "/t");
  EXPECT_EQ(o.batch_max, 7);
  EXPECT_EQ(o.batch_delay, std::chrono::seconds(2));
  EXPECT_EQ(o.buffer_max, 99);
  EXPECT_EQ(o.aggregator_ca_file, "/ca.pem");
  EXPECT_EQ(o.heartbeat, std::chrono::seconds(3));
  EXPECT_EQ(o.push_backoff_max, std::chrono::seconds(2));
  EXPECT_EQ(o.replay_window, std::chrono::minutes(30));
  EXPECT_EQ(o.replay_max, 123);
  EXPECT_EQ(o.shutdown_grace, std::chrono::seconds(3));
}

TEST(FlagsTest, NodeFromEnv) {
  setenv("NODE_NAME", "node-7", 1);
  AgentOptions o;
  EXPECT_FALSE(Parse({}, &o).has_value());
  EXPECT_EQ(o.node, "node-7");
  unsetenv("NODE_NAME");
}

TEST(FlagsTest, DeliveryDefaultsAndEnv) {
  AgentOptions d;
  ASSERT_FALSE(Parse({"--node", "n"}, &d).has_value());
  EXPECT_EQ(d.aggregator_ca_file, "");
  EXPECT_EQ(d.heartbeat, std::chrono::seconds(10));
  EXPECT_EQ(d.push_backoff_max, std::chrono::seconds(5));
  EXPECT_EQ(d.replay_window, std::chrono::hours(1));
  EXPECT_EQ(d.replay_max, 20000);

  setenv("ASHIATO_AGGREGATOR_CA_FILE", "/var/run/ashiato/ca.crt", 1);
  AgentOptions o;
  ASSERT_FALSE(Parse({"--node", "n", "--heartbeat", "0", "--replay-window", "0"}, &o).has_value());
  unsetenv("ASHIATO_AGGREGATOR_CA_FILE");
  EXPECT_EQ(o.aggregator_ca_file, "/var/run/ashiato/ca.crt");
  EXPECT_EQ(o.heartbeat.count(), 0);  // Off.
  EXPECT_EQ(o.replay_window.count(), 0);

  AgentOptions bad1;
  EXPECT_EQ(Parse({"--node", "n", "--push-backoff-max", "0"}, &bad1), 2);
  AgentOptions bad2;
  EXPECT_EQ(Parse({"--node", "n", "--replay-max", "-1"}, &bad2), 2);
  AgentOptions bad3;
  EXPECT_EQ(Parse({"--node", "n", "--heartbeat", "often"}, &bad3), 2);
}

TEST(FlagsTest, PlainHttpAggregatorNeedsExplicitConsent) {
  // The push token would travel in clear text.
  AgentOptions o;
  EXPECT_EQ(Parse({"--node", "n", "--aggregator", "http://agg:8080"}, &o), 2);
  AgentOptions ftp;
  EXPECT_EQ(Parse({"--node", "n", "--aggregator", "ftp://agg"}, &ftp), 2);
  AgentOptions tls;
  EXPECT_FALSE(Parse({"--node", "n", "--aggregator", "https://agg:8080"}, &tls).has_value());
  EXPECT_FALSE(tls.allow_insecure_aggregator);
  setenv("ASHIATO_ALLOW_INSECURE_AGGREGATOR", "true", 1);
  AgentOptions env;
  EXPECT_FALSE(Parse({"--node", "n", "--aggregator", "http://agg:8080"}, &env).has_value());
  unsetenv("ASHIATO_ALLOW_INSECURE_AGGREGATOR");
  EXPECT_TRUE(env.allow_insecure_aggregator);
}

TEST(FlagsTest, Validation) {
  unsetenv("NODE_NAME");
  AgentOptions o1;
  EXPECT_EQ(Parse({}, &o1), 2);  // No node.
  AgentOptions o2;
  EXPECT_EQ(Parse({"--all-nodes"}, &o2), 2);  // Cluster-wide watch refused.
  AgentOptions o3;
  EXPECT_FALSE(Parse({"--oneshot", "--all-nodes"}, &o3).has_value());
  AgentOptions o4;
  EXPECT_EQ(Parse({"--node", "n", "--interval", "soon"}, &o4), 2);
  AgentOptions o5;
  EXPECT_NE(Parse({"--node", "n", "--bogus"}, &o5), std::nullopt);
}

// pod-ashiato's command line: `--store-in-cm` alone is standalone mode,
// with pod-ashiato's defaults.
TEST(FlagsTest, StoreInCmIsStandaloneWithPodAshiatoDefaults) {
  unsetenv("NODE_NAME");
  AgentOptions o;
  ASSERT_FALSE(Parse({"--store-in-cm"}, &o).has_value());
  EXPECT_TRUE(o.standalone);
  EXPECT_TRUE(o.all_nodes);
  EXPECT_TRUE(o.cm.enabled);
  EXPECT_EQ(o.cm.namespace_, "default");
  EXPECT_EQ(o.interval, std::chrono::seconds(30));
  EXPECT_EQ(o.cm.debounce, std::chrono::seconds(30));  // Written once per --interval.
  EXPECT_EQ(o.kubeconfig, "");  // $KUBECONFIG, in-cluster, then ~/.kube/config.
  EXPECT_FALSE(o.oneshot);
  EXPECT_EQ(o.log_all_every.count(), 0);  // Off.

  AgentOptions all;
  ASSERT_FALSE(
      Parse({"--store-in-cm", "--oneshot", "--interval", "1m", "--namespace", "team-*", "--name",
             "web-", "--label", "app=web", "--cm-namespace", "ashiato", "--kubeconfig", "/k"},
            &all)
          .has_value());
  EXPECT_TRUE(all.oneshot);
  EXPECT_EQ(all.interval, std::chrono::minutes(1));
  EXPECT_EQ(all.cm.debounce, std::chrono::minutes(1));
  EXPECT_EQ(all.namespaces, (std::vector<std::string>{"team-*"}));
  EXPECT_EQ(all.name_prefix, "web-");
  EXPECT_EQ(all.label_selector, "app=web");
  EXPECT_EQ(all.cm.namespace_, "ashiato");
  EXPECT_EQ(all.kubeconfig, "/k");

  // An explicit --cm-debounce wins over --interval.
  AgentOptions debounce;
  ASSERT_FALSE(Parse({"--store-in-cm", "--cm-debounce", "2s"}, &debounce).has_value());
  EXPECT_EQ(debounce.cm.debounce, std::chrono::seconds(2));
  EXPECT_EQ(debounce.interval, std::chrono::seconds(30));

  // --standalone without --store-in-cm: the cluster-wide log only.
  AgentOptions log_only;
  ASSERT_FALSE(Parse({"--standalone"}, &log_only).has_value());
  EXPECT_TRUE(log_only.all_nodes);
  EXPECT_FALSE(log_only.cm.enabled);
  EXPECT_EQ(log_only.interval, std::chrono::seconds(30));
}

TEST(FlagsTest, StandaloneRefusesANodeAndAnAggregator) {
  unsetenv("NODE_NAME");
  AgentOptions node;
  EXPECT_EQ(Parse({"--store-in-cm", "--node", "n"}, &node), 2);
  setenv("NODE_NAME", "node-7", 1);
  AgentOptions env;
  EXPECT_EQ(Parse({"--standalone"}, &env), 2);
  unsetenv("NODE_NAME");
  AgentOptions agg;
  EXPECT_EQ(Parse({"--store-in-cm", "--aggregator", "https://agg:8443"}, &agg), 2);
  // Redundant but consistent.
  AgentOptions all_nodes;
  EXPECT_FALSE(Parse({"--standalone", "--all-nodes"}, &all_nodes).has_value());
}

TEST(FlagsTest, PerNodeModeKeepsItsDefaults) {
  AgentOptions o;
  ASSERT_FALSE(Parse({"--node", "n"}, &o).has_value());
  EXPECT_FALSE(o.standalone);
  EXPECT_FALSE(o.all_nodes);
  EXPECT_FALSE(o.cm.enabled);
  EXPECT_EQ(o.interval, std::chrono::minutes(5));
  // The existing debugging mode: no ConfigMaps, not standalone.
  AgentOptions debug;
  ASSERT_FALSE(Parse({"--oneshot", "--all-nodes"}, &debug).has_value());
  EXPECT_FALSE(debug.standalone);
  EXPECT_FALSE(debug.cm.enabled);
}

TEST(FlagsTest, LogAllEvery) {
  AgentOptions o;
  ASSERT_FALSE(Parse({"--node", "n", "--log-all-every", "90s"}, &o).has_value());
  EXPECT_EQ(o.log_all_every, std::chrono::seconds(90));
  AgentOptions standalone;
  ASSERT_FALSE(Parse({"--standalone", "--log-all-every", "30s"}, &standalone).has_value());
  EXPECT_EQ(standalone.log_all_every, std::chrono::seconds(30));
  setenv("ASHIATO_LOG_ALL_EVERY", "1m", 1);
  AgentOptions env;
  ASSERT_FALSE(Parse({"--node", "n"}, &env).has_value());
  unsetenv("ASHIATO_LOG_ALL_EVERY");
  EXPECT_EQ(env.log_all_every, std::chrono::minutes(1));

  AgentOptions bad;
  EXPECT_EQ(Parse({"--node", "n", "--log-all-every", "often"}, &bad), 2);
  AgentOptions oneshot;  // --oneshot prints every pod once already.
  EXPECT_EQ(Parse({"--node", "n", "--oneshot", "--log-all-every", "1s"}, &oneshot), 2);
}

TEST(FlagsTest, AnnotationCaptureAndClusterName) {
  unsetenv("CLUSTER");
  AgentOptions none;
  ASSERT_FALSE(Parse({"--node", "n"}, &none).has_value());
  EXPECT_TRUE(none.annotations.empty()) << "nothing is captured unless configured";
  EXPECT_EQ(none.cluster_name, "");
  AgentOptions o;
  ASSERT_FALSE(Parse({"--node", "n", "--capture-annotations", "example.com/*,team",
                      "--cluster-name", "prod-eu-1"},
                     &o)
                   .has_value());
  EXPECT_TRUE(o.annotations.Matches("example.com/owner"));
  EXPECT_TRUE(o.annotations.Matches("team"));
  EXPECT_FALSE(o.annotations.Matches("teams"));
  EXPECT_EQ(o.cluster_name, "prod-eu-1");
  setenv("CLUSTER", "from-env", 1);
  AgentOptions env;
  ASSERT_FALSE(Parse({"--node", "n"}, &env).has_value());
  EXPECT_EQ(env.cluster_name, "from-env");
  unsetenv("CLUSTER");
  AgentOptions bad;
  EXPECT_EQ(Parse({"--node", "n", "--capture-annotations", "a*b"}, &bad), 2);
  AgentOptions gaps;  // Empty entries (a trailing comma, an empty variable) are no entries.
  ASSERT_FALSE(Parse({"--node", "n", "--capture-annotations", "a,,b,"}, &gaps).has_value());
  EXPECT_TRUE(gaps.annotations.Matches("a") && gaps.annotations.Matches("b"));
  EXPECT_FALSE(gaps.annotations.Matches(""));
  EXPECT_EQ(Parse({"--node", "n", "--cluster-name", "tab\there"}, &bad), 2);
  EXPECT_EQ(Parse({"--node", "n", "--cluster-name", std::string(254, 'c').c_str()}, &bad), 2);
  AgentOptions spaced;  // deployment-tracker's CLUSTER may be any text.
  ASSERT_FALSE(Parse({"--node", "n", "--cluster-name", "prod cluster/eu"}, &spaced).has_value());
  EXPECT_FALSE(IsLabelValue(spaced.cluster_name));
  EXPECT_TRUE(IsLabelValue("prod-eu-1"));
}

}  // namespace
}  // namespace ashiato
