// AimdLimit: in-flight bound, growth on success, halving on push-back (once per cooldown) and
// on latency far above the fastest seen.
#include "worker/aimd_limit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sluice::worker {
namespace {

using namespace std::chrono_literals;

TEST(AimdLimitTest, NeverMoreInFlightThanTheLimit) {
  AimdLimit limit({8, 1, 8, 1s});
  std::atomic<int> now{0}, most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        limit.Acquire();
        int n = ++now;
        int seen = most.load();
        while (n > seen && !most.compare_exchange_weak(seen, n)) {
        }
        std::this_thread::yield();
        --now;
        limit.Release(false, 0ns);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 8);
  EXPECT_EQ(limit.in_flight(), 0);
}

TEST(AimdLimitTest, HalvesOnPushBackOncePerCooldownAndGrowsBack) {
  AimdLimit limit({64, 2, 64, 1h});
  for (int i = 0; i < 10; ++i) {  // one storm: many requests report it, one decrease
    limit.Acquire();
    limit.Release(true, 0ns);
  }
  EXPECT_EQ(limit.limit(), 32);
  AimdLimit quick({8, 2, 16, 0ns});
  for (int i = 0; i < 10; ++i) {
    quick.Acquire();
    quick.Release(true, 0ns);
  }
  EXPECT_EQ(quick.limit(), 2);  // never below the minimum
  for (int i = 0; i < 100; ++i) {
    quick.Acquire();
    quick.Release(false, 0ns);
  }
  EXPECT_GE(quick.limit(), 10);  // about one more per window of successes
  EXPECT_LE(quick.limit(), 16);
}

TEST(AimdLimitTest, BacksOffWhenLatencyGrowsFarAboveTheFastest) {
  AimdLimit limit({32, 2, 32, 0ns});
  limit.Acquire();
  limit.Release(false, 20ms);
  EXPECT_EQ(limit.limit(), 32);
  limit.Acquire();
  limit.Release(false, 45ms);  // slower, but not queueing
  EXPECT_EQ(limit.limit(), 32);
  limit.Acquire();
  limit.Release(false, 200ms);  // ten times the fastest: the store is queueing
  EXPECT_EQ(limit.limit(), 16);
}

}  // namespace
}  // namespace sluice::worker
