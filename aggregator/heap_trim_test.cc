#include "aggregator/heap_trim.h"

#include <gtest/gtest.h>

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
  // No threshold: how many bytes malloc reports free depends on the libc,
  // the allocator and the sanitizer (ASan's mallinfo2 reports none), so a
  // threshold of "any free byte" fails where glibc keeps none free.
  o.min_free_bytes = 0;
  o.min_interval = seconds(30);
  HeapTrimmer t(o);
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
