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
  // Found by tests/fuzz/time_fuzz.cc: signs, spaces, short fields.
  EXPECT_FALSE(ParseRfc3339("+026-11-24T 3:-4:05Z").has_value());
  EXPECT_FALSE(ParseRfc3339("2026-11-24T03:04:05.Z").has_value());
  EXPECT_FALSE(ParseRfc3339("2026-11-24T03:04:05+2:00").has_value());
}

// Found by tests/fuzz/time_fuzz.cc: instants a nanosecond time_point cannot
// hold used to overflow (undefined behaviour).
TEST(TimeUtilTest, RejectsYearsOutsideTheClock) {
  EXPECT_FALSE(ParseRfc3339("9999-12-31T23:59:59-23:59").has_value());
  EXPECT_FALSE(ParseRfc3339("3000-01-01T00:00:00Z").has_value());
  EXPECT_FALSE(ParseRfc3339("1013-11-24T00:00:01Z").has_value());
  EXPECT_TRUE(ParseRfc3339("2261-12-31T23:59:59Z").has_value());
  EXPECT_TRUE(ParseRfc3339("1970-01-01T00:00:00.5z").has_value());
}

}  // namespace
}  // namespace ashiato
