#include "common/time_util.h"

#include <gtest/gtest.h>

namespace ashiato {
namespace {

TEST(TimeUtilTest, RoundTrip) {
  auto t = ParseRfc3339("2026-11-24T03:04:05Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(FormatRfc3339(*t), "2026-11-24T03:04:05Z");
  auto frac = ParseRfc3339("2026-11-24T03:04:05.250000Z");
  ASSERT_TRUE(frac.has_value());
  EXPECT_EQ(FormatRfc3339Micros(*frac), "2026-11-24T03:04:05.250000Z");
}

TEST(TimeUtilTest, Offsets) {
  auto t = ParseRfc3339("2026-11-24T05:04:05+02:00");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(FormatRfc3339(*t), "2026-11-24T03:04:05Z");
}

TEST(TimeUtilTest, RejectsGarbage) {
  EXPECT_FALSE(ParseRfc3339("yesterday").has_value());
  EXPECT_FALSE(ParseRfc3339("2026-13-24T03:04:05Z").has_value());
  EXPECT_FALSE(ParseRfc3339("2026-11-24T03:04:05").has_value());
  EXPECT_FALSE(ParseRfc3339("2026-11-24T03:04:05Zjunk").has_value());
}

}  // namespace
}  // namespace ashiato
