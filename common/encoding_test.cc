#include <gtest/gtest.h>

#include "common/base64.h"
#include "common/byte_size.h"
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

namespace ashiato {
namespace {

TEST(ByteSizeTest, ParsesQuantitiesAndRejectsTheRest) {
  EXPECT_EQ(ParseByteSize("0"), 0u);
  EXPECT_EQ(ParseByteSize("1048576"), 1048576u);
  EXPECT_EQ(ParseByteSize("512Ki"), 512u * 1024);
  EXPECT_EQ(ParseByteSize("200Mi"), 200u * 1024 * 1024);
  EXPECT_EQ(ParseByteSize("5Gi"), 5ull << 30);
  EXPECT_EQ(ParseByteSize("500MB"), 500000000u);
  EXPECT_EQ(ParseByteSize("2G"), 2000000000u);
  for (const char* bad : {"", "-1", "1.5Gi", "Gi", "5 Gi", "5gi", "5Xi", "99999999999999999999"}) {
    EXPECT_FALSE(ParseByteSize(bad).has_value()) << bad;
  }
  EXPECT_FALSE(ParseByteSize("18446744073709551615Ki").has_value());  // Overflow.
}

}  // namespace
}  // namespace ashiato
