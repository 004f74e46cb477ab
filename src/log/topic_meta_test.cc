#include "log/topic_meta.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "log/topic_config.h"

namespace evert::log {
namespace {

TEST(TopicMeta, RoundTrips) {
  TopicMeta meta;
  meta.partitions = 12;
  meta.overrides = {{"retention.ms", "1000"}, {"cleanup.policy", "delete"}};
  std::string text = encode_topic_meta(meta);
  EXPECT_EQ(text, "evert-topic-meta 1\npartitions=12\nconfig.cleanup.policy=delete\nconfig.retention.ms=1000\n");
  auto decoded = decode_topic_meta(text);
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->partitions, 12);
  EXPECT_EQ(decoded->overrides, meta.overrides);
}

TEST(TopicMeta, RejectsWhatItDoesNotUnderstand) {
  for (const char* bad : {"", "evert-topic-meta 2\npartitions=1\n", "something else\npartitions=1\n",
                          "evert-topic-meta 1\n", "evert-topic-meta 1\npartitions=0\n",
                          "evert-topic-meta 1\npartitions=10001\n", "evert-topic-meta 1\npartitions=1x\n",
                          "evert-topic-meta 1\npartitions=1\nnonsense\n", "evert-topic-meta 1\npartitions=1\nfoo=bar\n"}) {
    EXPECT_EQ(decode_topic_meta(bad).status().code(), ErrorCode::kCorruption) << bad;
  }
}

TEST(TopicConfig, OverridesApplyToTheBase) {
  TopicConfig base;
  auto c = apply_config_overrides(base, {{"segment.bytes", "2048"},
                                         {"segment.ms", "60000"},
                                         {"retention.ms", "-1"},
                                         {"retention.bytes", "1000000"},
                                         {"index.interval.bytes", "128"},
                                         {"max.message.bytes", "5000"},
                                         {"message.timestamp.type", "LogAppendTime"},
                                         {"cleanup.policy", "delete"}});
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->segment_bytes, 2048);
  EXPECT_EQ(c->segment_ms, 60000);
  EXPECT_EQ(c->retention_ms, -1);
  EXPECT_EQ(c->retention_bytes, 1000000);
  EXPECT_EQ(c->index_interval_bytes, 128);
  EXPECT_EQ(c->max_message_bytes, 5000);
  EXPECT_EQ(c->timestamp_type, TimestampType::kLogAppendTime);
  auto described = describe_config(*c);
  EXPECT_EQ(described["segment.bytes"], "2048");
  EXPECT_EQ(described["message.timestamp.type"], "LogAppendTime");
  EXPECT_EQ(described["cleanup.policy"], "delete");
  // The described values feed back in unchanged.
  auto again = apply_config_overrides(TopicConfig(), ConfigOverrides(described.begin(), described.end()));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(describe_config(*again), described);
}

TEST(TopicConfig, InvalidOverridesAreRejected) {
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{{"segment.bytes", "13"},
                                                                            {"segment.bytes", "2147483648"},
                                                                            {"segment.ms", "0"},
                                                                            {"retention.ms", "-2"},
                                                                            {"retention.bytes", "1e6"},
                                                                            {"retention.bytes", ""},
                                                                            {"index.interval.bytes", "-1"},
                                                                            {"max.message.bytes", "999999999"},
                                                                            {"message.timestamp.type", "Now"},
                                                                            {"cleanup.policy", "compact"},
                                                                            {"unknown.key", "1"}}) {
    auto c = apply_config_overrides(TopicConfig(), {{key, value}});
    EXPECT_EQ(c.status().code(), ErrorCode::kInvalidArgument) << key << "=" << value;
  }
}

TEST(FlushPolicy, ParsesAndNames) {
  auto always = parse_flush_policy("always");
  ASSERT_TRUE(always.is_ok());
  EXPECT_EQ(always->kind, FlushPolicy::Kind::kEveryAppend);
  auto none = parse_flush_policy("none");
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(none->kind, FlushPolicy::Kind::kNone);
  auto interval = parse_flush_policy("interval:250");
  ASSERT_TRUE(interval.is_ok());
  EXPECT_EQ(interval->kind, FlushPolicy::Kind::kInterval);
  EXPECT_EQ(interval->interval_ms, 250);
  auto ms = parse_flush_policy("75ms");
  ASSERT_TRUE(ms.is_ok());
  EXPECT_EQ(ms->interval_ms, 75);
  for (const auto& p : {*always, *none, *interval}) {
    auto back = parse_flush_policy(flush_policy_name(p));
    ASSERT_TRUE(back.is_ok()) << flush_policy_name(p);
    EXPECT_EQ(back->kind, p.kind);
  }
  EXPECT_FALSE(parse_flush_policy("sometimes").is_ok());
  EXPECT_FALSE(parse_flush_policy("interval:").is_ok());
}

}  // namespace
}  // namespace evert::log
