// NodeDirectory: node addresses and topology from Node objects, kept for
// deleted nodes and across restarts, on log lines and in answers.
#include "aggregator/node_directory.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "aggregator/query.h"
#include "aggregator/state.h"
#include "aggregator/test_util.h"

namespace ashiato {
namespace {

using nlohmann::json;
using testutil::FakeClock;
using testutil::MakeReport;
using testutil::Pod;
using testutil::StoreLog;
using testutil::TempStore;
using testutil::Up;

json NodeJson(const std::string& name, const std::string& ip, const std::string& zone) {
  json labels = {{"kubernetes.io/hostname", name}, {"topology.kubernetes.io/region", "eu-1"}};
  if (!zone.empty()) labels["topology.kubernetes.io/zone"] = zone;
  return {{"metadata", {{"name", name}, {"uid", "uid-" + name}, {"labels", labels}}},
          {"status",
           {{"addresses",
             {{{"type", "InternalIP"}, {"address", ip}},
              {{"type", "ExternalIP"}, {"address", "203.0.113.9"}},
              {{"type", "Hostname"}, {"address", name}}}}}}};
}

TEST(NodeDirectoryTest, FromNodeJsonKeepsEveryAddressTypeInOrder) {
  NodeInfo n = NodeInfoFromNodeJson(NodeJson("n1", "10.0.0.1", "eu-1a"));
  EXPECT_EQ(n.name, "n1");
  ASSERT_EQ(n.addresses.size(), 3u);
  EXPECT_EQ(n.addresses[0], (NodeAddress{"InternalIP", "10.0.0.1"}));
  EXPECT_EQ(n.addresses[1], (NodeAddress{"ExternalIP", "203.0.113.9"}));
  EXPECT_EQ(n.addresses[2], (NodeAddress{"Hostname", "n1"}));
  EXPECT_EQ(n.zone, "eu-1a");
  EXPECT_EQ(n.region, "eu-1");
  // Garbage in, empty fields out, never a throw.
  NodeInfo bad = NodeInfoFromNodeJson(json{{"metadata", 3}, {"status", {{"addresses", "x"}}}});
  EXPECT_EQ(bad.name, "");
  EXPECT_TRUE(bad.addresses.empty());
}

TEST(NodeDirectoryTest, DeletedNodesKeepTheirAddressesAcrossRestarts) {
  TempStore store;
  {
    NodeDirectory d(store.get());
    ASSERT_TRUE(d.Load().ok());
    d.Replace({NodeInfoFromNodeJson(NodeJson("n1", "10.0.0.1", "a")),
               NodeInfoFromNodeJson(NodeJson("n2", "10.0.0.2", "b"))});
    d.MarkDeleted("n2");
    auto n2 = d.Get("n2");
    ASSERT_TRUE(n2.has_value());
    EXPECT_TRUE(n2->deleted);
    EXPECT_EQ(n2->addresses[0].address, "10.0.0.2");
  }
  store.Reopen();
  NodeDirectory d(store.get());
  ASSERT_TRUE(d.Load().ok());
  EXPECT_EQ(d.size(), 2u);
  EXPECT_TRUE(d.Get("n2")->deleted);
  EXPECT_EQ(d.Get("n2")->addresses[0].address, "10.0.0.2");
  // A relist without n1: n1 is gone too, its addresses kept.
  d.Replace({NodeInfoFromNodeJson(NodeJson("n3", "10.0.0.3", ""))});
  EXPECT_TRUE(d.Get("n1")->deleted);
  EXPECT_EQ(d.Get("n1")->zone, "a");
  json j = json::object();
  d.AddTo("n3", &j);
  EXPECT_EQ(j["node_addresses"][0], json({{"address", "10.0.0.3"}, {"type", "InternalIP"}}));
  EXPECT_FALSE(j.contains("node_zone")) << "no zone label, no field";
  EXPECT_EQ(j["node_region"], "eu-1");
  json unknown = json::object();
  d.AddTo("never-seen", &unknown);
  EXPECT_TRUE(unknown.empty());
  // A node that comes back is no longer deleted.
  d.Upsert(NodeInfoFromNodeJson(NodeJson("n1", "10.0.0.11", "a")));
  EXPECT_FALSE(d.Get("n1")->deleted);
  EXPECT_EQ(d.Get("n1")->addresses[0].address, "10.0.0.11");
}

TEST(NodeDirectoryTest, AVersion2StoreIsMigrated) {
  TempStore store;
  // What a version 2 aggregator wrote: no node_info table.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(store->path().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE node_info; ALTER TABLE events DROP COLUMN out_of_scope; "
                         "PRAGMA user_version=2",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  store.Reopen();
  ASSERT_TRUE(store->healthy());
  NodeDirectory d(store.get());
  ASSERT_TRUE(d.Load().ok());
  d.Upsert(NodeInfoFromNodeJson(NodeJson("n1", "10.0.0.1", "a")));
  NodeDirectory again(store.get());
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.Get("n1")->addresses[0].address, "10.0.0.1");
}

TEST(NodeDirectoryTest, LogLinesAndAnswersCarryTheNode) {
  FakeClock clock;
  TempStore store;
  NodeDirectory nodes(store.get());
  nodes.Replace({NodeInfoFromNodeJson(NodeJson("n1", "10.0.0.1", "eu-1a"))});
  StoreLog log(store.get());
  ClusterState state(StateOptions{}, store.get(), nullptr, &clock);
  state.SetNodeDirectory(&nodes);
  ASSERT_TRUE(state.Open().ok());
  state.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10", "10.1.0.7"))}));
  auto lines = log.Lines();
  ASSERT_EQ(lines.size(), 1u);
  json want = json::array({{{"address", "10.0.0.1"}, {"type", "InternalIP"}},
                           {{"address", "203.0.113.9"}, {"type", "ExternalIP"}},
                           {{"address", "n1"}, {"type", "Hostname"}}});
  EXPECT_EQ(lines[0]["node_addresses"], want);
  EXPECT_EQ(lines[0]["node_zone"], "eu-1a");
  EXPECT_EQ(lines[0]["node_region"], "eu-1");
  json pods = state.Pods(PodQuery{});
  EXPECT_EQ(pods["pods"][0]["node_addresses"], want);
  EXPECT_EQ(pods["pods"][0]["node_zone"], "eu-1a");
  // The node leaves: the IP's history still names its addresses.
  nodes.MarkDeleted("n1");
  QueryApi api(QueryOptions{}, &state, store.get());
  HttpRequest req;
  req.method = "GET";
  HttpResponse r = api.Ip(req, "10.1.0.7");
  json holders = json::parse(r.body)["holders"];
  ASSERT_EQ(holders.size(), 1u);
  EXPECT_EQ(holders[0]["node_addresses"], want);
  // A pod on a node nobody has seen: no node fields, the rest unchanged.
  state.Apply(MakeReport("n9", "e9", 1, {Up(Pod("b", "n9", "11"))}));
  lines = log.Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_FALSE(lines[1].contains("node_addresses"));
  EXPECT_FALSE(lines[1].contains("node_zone"));
}

}  // namespace
}  // namespace ashiato
