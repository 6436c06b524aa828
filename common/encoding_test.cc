#include <gtest/gtest.h>

#include "common/base64.h"
#include "common/duration.h"

namespace ashiato {
namespace {

TEST(Base64Test, RoundTripsBothAlphabets) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\xfe\x00 binary"}) {
    EXPECT_EQ(Base64Decode(Base64Encode(s)).value(), s);
    EXPECT_EQ(Base64Decode(Base64Encode(s, true)).value(), s);
  }
  EXPECT_EQ(Base64Encode("ab"), "YWI=");
  EXPECT_EQ(Base64Encode("ab", true), "YWI");
}

TEST(Base64Test, SkipsWhitespaceRejectsGarbage) {
  EXPECT_EQ(Base64Decode("YW\nI=").value(), "ab");
  EXPECT_FALSE(Base64Decode("YW*I").has_value());
}

TEST(DurationTest, GoStyle) {
  EXPECT_EQ(ParseDuration("5m"), std::chrono::minutes(5));
  EXPECT_EQ(ParseDuration("30"), std::chrono::seconds(30));
  EXPECT_EQ(ParseDuration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(ParseDuration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(ParseDuration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_EQ(ParseDuration("0"), std::chrono::milliseconds(0));
}

TEST(DurationTest, RejectsNonsense) {
  EXPECT_FALSE(ParseDuration(""));
  EXPECT_FALSE(ParseDuration("5 minutes"));
  EXPECT_FALSE(ParseDuration("-5s"));
  EXPECT_FALSE(ParseDuration("1.2.3s"));
  EXPECT_EQ(ParseDuration("7d"), std::chrono::hours(7 * 24));
  EXPECT_FALSE(ParseDuration("10w"));
  EXPECT_FALSE(ParseDuration("m"));
  EXPECT_FALSE(ParseDuration("99999999999999999999"));
}

}  // namespace
}  // namespace ashiato
