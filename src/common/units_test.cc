// Tests for size and duration parsing.
#include "common/units.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(UnitsTest, Sizes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64MiB"), 64ull << 20);
  EXPECT_EQ(*ParseSize("64 mib"), 64ull << 20);
  EXPECT_EQ(*ParseSize("1.5GiB"), 3ull << 29);
  EXPECT_EQ(*ParseSize("2G"), 2ull << 30);
  EXPECT_EQ(*ParseSize("1MB"), 1000000u);
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("7B"), 7u);
}

TEST(UnitsTest, BadSizesNameTheInput) {
  for (const char* bad : {"", "MiB", "-1", "12XB", "1.2.3", "99999999999TiB"}) {
    auto r = ParseSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos) << r.status().message();
  }
}

TEST(UnitsTest, Durations) {
  using namespace std::chrono_literals;
  EXPECT_EQ(*ParseDuration("30s"), 30s);
  EXPECT_EQ(*ParseDuration("30"), 30s);
  EXPECT_EQ(*ParseDuration("250ms"), 250ms);
  EXPECT_EQ(*ParseDuration("1.5m"), 90s);
  EXPECT_EQ(*ParseDuration("2h"), 7200s);
  EXPECT_EQ(*ParseDuration("10us"), 10us);
  EXPECT_FALSE(ParseDuration("5 parsecs").ok());
  EXPECT_FALSE(ParseDuration("-3s").ok());
}

TEST(UnitsTest, Formatting) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1536), "1.50 KiB");
  EXPECT_EQ(FormatSize(256ull << 20), "256.0 MiB");
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(1500)), "1.50s");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(90)), "1m30s");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(0)), "0s");
  EXPECT_EQ(FormatTime(1369353600ll * 1000000000), "2013-05-24 00:00:00");
  EXPECT_EQ(FormatTime(0), "-");
}

// Found by fuzz/units_fuzzer: a number of 309+ digits made std::stod throw out of ParseSize
// (and through it out of config parsing), one of 300+ leading zeros likewise (underflow).
TEST(UnitsTest, NumbersBeyondADoubleAreErrorsNotExceptions) {
  const std::string huge(400, '9');
  auto size = ParseSize(huge);
  ASSERT_FALSE(size.ok());
  EXPECT_NE(size.status().message().find("too large"), std::string::npos) << size.status().message();
  auto duration = ParseDuration(huge + "ms");
  ASSERT_FALSE(duration.ok());
  EXPECT_NE(duration.status().message().find("too long"), std::string::npos) << duration.status().message();
  const std::string tiny = "0." + std::string(400, '0') + "1";
  EXPECT_EQ(*ParseSize(tiny + "TiB"), 0u);
  EXPECT_EQ(ParseDuration(tiny + "d")->count(), 0);
}

// Found by fuzz/units_fuzzer: FormatSize printed "71.0 PiB", which ParseSize refused.
TEST(UnitsTest, PetabytesAndFormattedSizesParse) {
  EXPECT_EQ(*ParseSize("1PiB"), 1ull << 50);
  EXPECT_EQ(*ParseSize("2p"), 2ull << 50);
  EXPECT_EQ(*ParseSize("3PB"), 3'000'000'000'000'000ull);
  const uint64_t sizes[] = {1536, 256ull << 20, 1ull << 50, 79922227978000000ull};
  for (uint64_t v : sizes) {
    auto back = ParseSize(FormatSize(v));
    ASSERT_TRUE(back.ok()) << FormatSize(v) << ": " << back.status().message();
    EXPECT_NEAR(static_cast<double>(*back), static_cast<double>(v), static_cast<double>(v) * 0.005) << FormatSize(v);
  }
}

// Found by fuzz/units_fuzzer: "40960d" overflowed an int in FormatDuration (UBSan).
TEST(UnitsTest, FormatsLongDurations) {
  EXPECT_EQ(FormatDuration(std::chrono::hours(24 * 40960)), "983040h00m");
  EXPECT_EQ(FormatDuration(std::chrono::nanoseconds::max()), "2562047h47m");
  EXPECT_EQ(FormatDuration(*ParseDuration("40960d")), "983040h00m");
}

}  // namespace
}  // namespace sluice
