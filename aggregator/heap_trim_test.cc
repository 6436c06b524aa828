#include "aggregator/heap_trim.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace ashiato {
namespace {

using std::chrono::seconds;
using Time = std::chrono::steady_clock::time_point;

TEST(HeapTrimmerTest, DueWithEnoughFreeBytesAtMostOncePerInterval) {
  HeapTrimOptions o;
  o.min_free_bytes = 1000;
  o.min_interval = seconds(30);
  HeapTrimmer t(o);
  Time t0{seconds(100)};
  EXPECT_FALSE(t.Due(999, t0));
  EXPECT_TRUE(t.Due(1000, t0));
}

TEST(HeapTrimmerTest, TickTrimsThenWaitsForTheInterval) {
  HeapTrimOptions o;
  o.min_free_bytes = 1;  // Any free byte: a test process always has some.
  o.min_interval = seconds(30);
  HeapTrimmer t(o);
  // Free bytes for malloc to hold.
  {
    std::vector<std::unique_ptr<char[]>> blocks(1000);
    for (auto& b : blocks) b.reset(new char[1000]);
  }
  Time t0{seconds(100)};
  EXPECT_TRUE(t.Tick(t0));
  EXPECT_EQ(t.trims(), 1u);
  EXPECT_FALSE(t.Tick(t0 + seconds(29)));
  EXPECT_FALSE(t.Due(1u << 30, t0 + seconds(29)));
  EXPECT_TRUE(t.Due(1u << 30, t0 + seconds(30)));
  EXPECT_EQ(t.trims(), 1u);
}

TEST(HeapTrimmerTest, NothingToTrimBelowTheThreshold) {
  HeapTrimOptions o;
  o.min_free_bytes = size_t{1} << 50;
  HeapTrimmer t(o);
  EXPECT_FALSE(t.Tick(Time{seconds(100)}));
  EXPECT_EQ(t.trims(), 0u);
}

}  // namespace
}  // namespace ashiato
