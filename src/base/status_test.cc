#include "base/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "base/clock.h"

namespace evert {
namespace {

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_TRUE(bool(s));
  EXPECT_EQ(s.code(), ErrorCode::kOk);
  EXPECT_EQ(s.to_string(), "OK");
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  Status s = error(ErrorCode::kCorruption, "bad CRC");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), ErrorCode::kCorruption);
  EXPECT_EQ(s.message(), "bad CRC");
  EXPECT_EQ(s.to_string(), "Corruption: bad CRC");
}

TEST(Status, WithContextPrefixesErrorsOnly) {
  Status s = error(ErrorCode::kNotFound, "no file").with_context("opening topic t");
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.message(), "opening topic t: no file");
  EXPECT_TRUE(Status::ok().with_context("ignored").message().empty());
}

TEST(Status, EveryCodeHasAName) {
  for (int c = int(ErrorCode::kOk); c <= int(ErrorCode::kInternal); ++c)
    EXPECT_STRNE(error_code_name(ErrorCode(c)), "Unknown") << c;
  EXPECT_STREQ(error_code_name(ErrorCode::kNoSpace), "NoSpace");
}

Result<int> parse_positive(int v) {
  if (v <= 0) return error(ErrorCode::kInvalidArgument, "not positive");
  return v;
}

Result<int> doubled(int v) {
  EVERT_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

Status check_positive(int v) {
  EVERT_RETURN_IF_ERROR(parse_positive(v).status());
  return Status::ok();
}

TEST(Result, HoldsValueOrStatus) {
  Result<std::string> ok(std::string("x"));
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(*ok, "x");
  EXPECT_EQ(ok->size(), 1u);
  Result<std::string> bad(error(ErrorCode::kIoError, "disk"));
  EXPECT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kIoError);
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(5));
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
}

TEST(Result, MacrosPropagateErrors) {
  auto good = doubled(4);
  ASSERT_TRUE(good.is_ok());
  EXPECT_EQ(*good, 8);
  auto bad = doubled(-1);
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(check_positive(1).is_ok());
  EXPECT_EQ(check_positive(0).code(), ErrorCode::kInvalidArgument);
}

TEST(ManualClock, MovesOnlyWhenTold) {
  ManualClock clock(1000);
  EXPECT_EQ(clock.now_ms(), 1000);
  EXPECT_EQ(clock.monotonic_ns(), 1000 * 1'000'000ll);
  clock.advance_ms(250);
  EXPECT_EQ(clock.now_ms(), 1250);
  clock.set_ms(5);
  EXPECT_EQ(clock.now_ms(), 5);
}

TEST(SystemClock, IsPlausible) {
  int64_t now = Clock::system().now_ms();
  EXPECT_GT(now, 1'600'000'000'000);  // after 2020
  int64_t a = Clock::system().monotonic_ns();
  int64_t b = Clock::system().monotonic_ns();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace evert
