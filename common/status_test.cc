#include "common/status.h"

#include <gtest/gtest.h>

namespace ashiato {
namespace {

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = Unavailable("connection refused");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.ToString(), "Unavailable: connection refused");
}

TEST(ResultTest, ValueOrStatus) {
  Result<int> v = 42;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 42);
  Result<int> e = Expired("too old");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kExpired);
  Result<int> bad = Status::Ok();  // Misuse is an error, never a fake value.
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace ashiato
