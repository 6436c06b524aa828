#include "aggregator/cm_writer_flags.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace ashiato {
namespace {

TEST(ConfigMapFlagsTest, WiresOptions) {
  CLI::App app;
  ConfigMapWriterOptions options;
  AddConfigMapFlags(app, options);
  const char* argv[] = {
      "agg", "--store-in-cm",  "--cm-namespace", "ashiato", "--cm-debounce", "2s", "--cm-retention",
      "36h", "--cm-max-bytes", "200Mi"};
  ASSERT_NO_THROW(app.parse(10, const_cast<char**>(argv)));
  EXPECT_TRUE(options.enabled);
  EXPECT_EQ(options.namespace_, "ashiato");
  EXPECT_EQ(options.debounce, std::chrono::milliseconds(2000));
  EXPECT_EQ(options.retention, std::chrono::hours(36));
  EXPECT_EQ(options.max_total_bytes, 200u * 1024 * 1024);
}

TEST(ConfigMapFlagsTest, DefaultsAndBadValues) {
  CLI::App app;
  ConfigMapWriterOptions options;
  AddConfigMapFlags(app, options);
  const char* argv[] = {"agg", "--cm-retention", "0"};
  ASSERT_NO_THROW(app.parse(3, const_cast<char**>(argv)));
  EXPECT_FALSE(options.enabled);
  EXPECT_EQ(options.retention, std::chrono::hours(0));
  EXPECT_EQ(options.debounce, std::chrono::milliseconds(10000));
  EXPECT_EQ(options.max_total_bytes, 128u * 1024 * 1024);

  CLI::App bad;
  ConfigMapWriterOptions o2;
  AddConfigMapFlags(bad, o2);
  const char* argv2[] = {"agg", "--cm-debounce", "soon"};
  EXPECT_THROW(bad.parse(3, const_cast<char**>(argv2)), CLI::ParseError);

  CLI::App bad_size;
  ConfigMapWriterOptions o3;
  AddConfigMapFlags(bad_size, o3);
  const char* argv3[] = {"agg", "--cm-max-bytes", "huge"};
  EXPECT_THROW(bad_size.parse(3, const_cast<char**>(argv3)), CLI::ParseError);
}

TEST(ConfigMapFlagsTest, NamespaceFromServiceAccountFile) {
  std::string path = testing::TempDir() + "/cm_ns_file";
  {
    std::ofstream out(path);
    out << "ashiato\n";
  }
  EXPECT_EQ(DefaultConfigMapNamespace(path), "ashiato");
  std::remove(path.c_str());
  EXPECT_EQ(DefaultConfigMapNamespace(path), "default");
}

}  // namespace
}  // namespace ashiato
