// `evert group list|describe|reset-offsets`: consumer groups of a running
// server, through librdkafka's admin API (ListConsumerGroups,
// DescribeConsumerGroups, ListConsumerGroupOffsets,
// AlterConsumerGroupOffsets) plus watermark queries for the lag.
//
// reset-offsets follows Kafka's kafka-consumer-groups tool: a dry run unless
// --execute is given, and refused while the group has members (their
// commits would overwrite the reset; the server refuses such a commit too).
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/kafka_client.h"

namespace evert::cli {
namespace {

using PartitionListPtr = RdPtr<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>;
using ListOffsetsPtr = RdPtr<rd_kafka_ListConsumerGroupOffsets_t, rd_kafka_ListConsumerGroupOffsets_destroy>;
using AlterOffsetsPtr = RdPtr<rd_kafka_AlterConsumerGroupOffsets_t, rd_kafka_AlterConsumerGroupOffsets_destroy>;

// A partition of a topic, ordered by topic then partition.
using TopicPartition = std::pair<std::string, int32_t>;

struct GroupOptions {
  ClientOptions client;
  std::string group;
  std::string topic;
  bool to_earliest = false;
  bool to_latest = false;
  bool has_to_offset = false;
  int64_t to_offset = 0;
  bool execute = false;
};

struct MemberInfo {
  std::string member_id;
  std::string client_id;
  std::string host;
  std::vector<TopicPartition> partitions;
};

struct GroupInfo {
  std::string state;  // Stable, Empty, PreparingRebalance, CompletingRebalance, Dead, Unknown
  std::string assignor;
  std::vector<MemberInfo> members;
};

// Prints "evert group VERB: message" and returns the exit code for it.
int fail(const char* verb, const Status& s) {
  fmt::print(stderr, "evert group {}: {}\n", verb, s.message());
  return s.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

Result<std::unique_ptr<KafkaClient>> admin_client(const ClientOptions& opts) {
  EVERT_ASSIGN_OR_RETURN(auto client, KafkaClient::create(ClientKind::kProducer, opts, {}));
  EVERT_RETURN_IF_ERROR(client->connect());
  return client;
}

Status error_status(const rd_kafka_error_t* err, const std::string& what) {
  Status s = kafka_status(rd_kafka_error_code(err), what);
  return error(s.code(), fmt::format("{}: {}", what, rd_kafka_error_string(err)));
}

std::string partition_name(const TopicPartition& tp) { return fmt::format("{}-{}", tp.first, tp.second); }

// Left-aligned columns, two spaces apart; the first row is the header.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    fmt::print("{}\n", line);
  }
}

Result<std::vector<std::pair<std::string, std::string>>> list_groups(KafkaClient& client) {
  EVERT_ASSIGN_OR_RETURN(
      EventPtr ev, client.admin([&](const rd_kafka_AdminOptions_t* o,
                                    rd_kafka_queue_t* q) { rd_kafka_ListConsumerGroups(client.get(), o, q); },
                                RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT));
  const rd_kafka_ListConsumerGroups_result_t* result = rd_kafka_event_ListConsumerGroups_result(ev.get());
  size_t error_count = 0;
  const rd_kafka_error_t** errors = rd_kafka_ListConsumerGroups_result_errors(result, &error_count);
  if (error_count > 0) return error_status(errors[0], "listing groups");
  size_t n = 0;
  const rd_kafka_ConsumerGroupListing_t** groups = rd_kafka_ListConsumerGroups_result_valid(result, &n);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < n; ++i) {
    out.emplace_back(rd_kafka_ConsumerGroupListing_group_id(groups[i]),
                     rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(groups[i])));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<GroupInfo> describe_group(KafkaClient& client, const std::string& group) {
  const char* groups[] = {group.c_str()};
  EVERT_ASSIGN_OR_RETURN(
      EventPtr ev,
      client.admin([&](const rd_kafka_AdminOptions_t* o,
                       rd_kafka_queue_t* q) { rd_kafka_DescribeConsumerGroups(client.get(), groups, 1, o, q); },
                   RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT));
  size_t n = 0;
  const rd_kafka_ConsumerGroupDescription_t** descs =
      rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev.get()), &n);
  if (n != 1) return error(ErrorCode::kInternal, fmt::format("asked about 1 group, got {} answers", n));
  const rd_kafka_ConsumerGroupDescription_t* desc = descs[0];
  if (const rd_kafka_error_t* err = rd_kafka_ConsumerGroupDescription_error(desc); err != nullptr)
    return error_status(err, fmt::format("describing group '{}'", group));
  GroupInfo info;
  info.state = rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(desc));
  const char* assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(desc);
  info.assignor = assignor != nullptr ? assignor : "";
  size_t members = rd_kafka_ConsumerGroupDescription_member_count(desc);
  for (size_t i = 0; i < members; ++i) {
    const rd_kafka_MemberDescription_t* m = rd_kafka_ConsumerGroupDescription_member(desc, i);
    MemberInfo mi;
    mi.member_id = rd_kafka_MemberDescription_consumer_id(m);
    mi.client_id = rd_kafka_MemberDescription_client_id(m);
    mi.host = rd_kafka_MemberDescription_host(m);
    const rd_kafka_MemberAssignment_t* a = rd_kafka_MemberDescription_assignment(m);
    const rd_kafka_topic_partition_list_t* parts = a != nullptr ? rd_kafka_MemberAssignment_partitions(a) : nullptr;
    for (int k = 0; parts != nullptr && k < parts->cnt; ++k)
      mi.partitions.emplace_back(parts->elems[k].topic, parts->elems[k].partition);
    std::sort(mi.partitions.begin(), mi.partitions.end());
    info.members.push_back(std::move(mi));
  }
  std::sort(info.members.begin(), info.members.end(),
            [](const MemberInfo& a, const MemberInfo& b) { return a.member_id < b.member_id; });
  return info;
}

// Every committed offset of the group (partitions without a commit are absent).
Result<std::map<TopicPartition, int64_t>> committed_offsets(KafkaClient& client, const std::string& group) {
  ListOffsetsPtr request(rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), nullptr));
  rd_kafka_ListConsumerGroupOffsets_t* requests[] = {request.get()};
  EVERT_ASSIGN_OR_RETURN(
      EventPtr ev,
      client.admin([&](const rd_kafka_AdminOptions_t* o,
                       rd_kafka_queue_t* q) { rd_kafka_ListConsumerGroupOffsets(client.get(), requests, 1, o, q); },
                   RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT));
  size_t n = 0;
  const rd_kafka_group_result_t** results =
      rd_kafka_ListConsumerGroupOffsets_result_groups(rd_kafka_event_ListConsumerGroupOffsets_result(ev.get()), &n);
  std::map<TopicPartition, int64_t> out;
  for (size_t i = 0; i < n; ++i) {
    if (const rd_kafka_error_t* err = rd_kafka_group_result_error(results[i]); err != nullptr)
      return error_status(err, fmt::format("committed offsets of group '{}'", group));
    const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(results[i]);
    for (int k = 0; parts != nullptr && k < parts->cnt; ++k) {
      const rd_kafka_topic_partition_t& p = parts->elems[k];
      if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return kafka_status(p.err, fmt::format("committed offset of {}-{}", p.topic, p.partition));
      if (p.offset >= 0) out[{p.topic, p.partition}] = p.offset;
    }
  }
  return out;
}

struct Watermarks {
  int64_t low = 0;
  int64_t high = 0;  // the log end offset consumers read up to
};

Result<Watermarks> watermarks(KafkaClient& client, const TopicPartition& tp) {
  Watermarks w;
  rd_kafka_resp_err_t err =
      rd_kafka_query_watermark_offsets(client.get(), tp.first.c_str(), tp.second, &w.low, &w.high, kRequestTimeoutMs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_status(err, fmt::format("watermarks of {}", partition_name(tp)));
  return w;
}

Status alter_offsets(KafkaClient& client, const std::string& group, const std::map<TopicPartition, int64_t>& offsets) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(int(offsets.size())));
  for (const auto& [tp, offset] : offsets)
    rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = offset;
  AlterOffsetsPtr request(rd_kafka_AlterConsumerGroupOffsets_new(group.c_str(), list.get()));
  rd_kafka_AlterConsumerGroupOffsets_t* requests[] = {request.get()};
  EVERT_ASSIGN_OR_RETURN(
      EventPtr ev,
      client.admin([&](const rd_kafka_AdminOptions_t* o,
                       rd_kafka_queue_t* q) { rd_kafka_AlterConsumerGroupOffsets(client.get(), requests, 1, o, q); },
                   RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT));
  size_t n = 0;
  const rd_kafka_group_result_t** results =
      rd_kafka_AlterConsumerGroupOffsets_result_groups(rd_kafka_event_AlterConsumerGroupOffsets_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    if (const rd_kafka_error_t* err = rd_kafka_group_result_error(results[i]); err != nullptr)
      return error_status(err, fmt::format("committing offsets for group '{}'", group));
    const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(results[i]);
    for (int k = 0; parts != nullptr && k < parts->cnt; ++k) {
      const rd_kafka_topic_partition_t& p = parts->elems[k];
      if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return kafka_status(p.err, fmt::format("committing {}-{}", p.topic, p.partition));
    }
  }
  return Status::ok();
}

int run_list(const GroupOptions& opts) {
  auto client = admin_client(opts.client);
  if (!client.is_ok()) return fail("list", client.status());
  auto groups = list_groups(**client);
  if (!groups.is_ok()) return fail("list", groups.status());
  std::vector<std::vector<std::string>> rows = {{"GROUP", "STATE"}};
  for (const auto& [id, state] : *groups) rows.push_back({id, state});
  print_table(rows);
  return 0;
}

int run_describe(const GroupOptions& opts) {
  auto client = admin_client(opts.client);
  if (!client.is_ok()) return fail("describe", client.status());
  KafkaClient& c = **client;
  auto info = describe_group(c, opts.group);
  if (!info.is_ok()) return fail("describe", info.status());
  auto committed = committed_offsets(c, opts.group);
  if (!committed.is_ok()) return fail("describe", committed.status());
  if (info->state == "Dead" && info->members.empty() && committed->empty())
    return fail("describe", error(ErrorCode::kNotFound, fmt::format("group '{}' does not exist", opts.group)));

  // Every partition that is assigned or has a commit, with its owner.
  std::map<TopicPartition, std::string> owner;
  for (const auto& [tp, offset] : *committed) owner[tp] = "-";
  for (const auto& m : info->members)
    for (const auto& tp : m.partitions) owner[tp] = m.member_id;

  fmt::print("group {} state {} assignor {} members {}\n", opts.group, info->state,
             info->assignor.empty() ? "-" : info->assignor, info->members.size());
  if (!info->members.empty()) {
    std::vector<std::vector<std::string>> rows = {{"MEMBER", "CLIENT-ID", "HOST", "PARTITIONS"}};
    for (const auto& m : info->members) {
      std::vector<std::string> names;
      for (const auto& tp : m.partitions) names.push_back(partition_name(tp));
      rows.push_back({m.member_id, m.client_id, m.host, names.empty() ? "-" : fmt::format("{}", fmt::join(names, ","))});
    }
    fmt::print("\n");
    print_table(rows);
  }
  std::vector<std::vector<std::string>> rows = {{"TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER"}};
  int64_t total_lag = 0;
  for (const auto& [tp, member] : owner) {
    auto w = watermarks(c, tp);
    if (!w.is_ok()) return fail("describe", w.status());
    auto it = committed->find(tp);
    std::string offset = "-";
    std::string lag = "-";  // nothing committed: no position to measure from
    if (it != committed->end()) {
      int64_t l = std::max<int64_t>(0, w->high - it->second);
      total_lag += l;
      offset = std::to_string(it->second);
      lag = std::to_string(l);
    }
    rows.push_back({tp.first, std::to_string(tp.second), offset, std::to_string(w->high), lag, member});
  }
  fmt::print("\n");
  print_table(rows);
  fmt::print("\ntotal lag {}\n", total_lag);
  return 0;
}

int run_reset(const GroupOptions& opts) {
  int targets = int(opts.to_earliest) + int(opts.to_latest) + int(opts.has_to_offset);
  if (targets != 1)
    return fail("reset-offsets",
                error(ErrorCode::kInvalidArgument, "give exactly one of --to-earliest, --to-latest, --to-offset N"));
  auto client = admin_client(opts.client);
  if (!client.is_ok()) return fail("reset-offsets", client.status());
  KafkaClient& c = **client;
  auto info = describe_group(c, opts.group);
  if (!info.is_ok()) return fail("reset-offsets", info.status());
  if (!info->members.empty() || (info->state != "Empty" && info->state != "Dead"))
    return fail("reset-offsets",
                error(ErrorCode::kBusy,
                      fmt::format("group '{}' is active (state {}, {} member(s)); stop its consumers first",
                                  opts.group, info->state, info->members.size())));
  auto partitions = c.partition_count(opts.topic);
  if (!partitions.is_ok()) return fail("reset-offsets", partitions.status());
  auto committed = committed_offsets(c, opts.group);
  if (!committed.is_ok()) return fail("reset-offsets", committed.status());

  std::map<TopicPartition, int64_t> wanted;
  std::vector<std::vector<std::string>> rows = {{"TOPIC", "PARTITION", "CURRENT", "NEW"}};
  for (int32_t p = 0; p < *partitions; ++p) {
    TopicPartition tp{opts.topic, p};
    auto w = watermarks(c, tp);
    if (!w.is_ok()) return fail("reset-offsets", w.status());
    // Like Kafka's tool, an offset outside the log is moved to its nearer end.
    int64_t target = opts.to_earliest ? w->low : opts.to_latest ? w->high : std::clamp(opts.to_offset, w->low, w->high);
    wanted[tp] = target;
    auto it = committed->find(tp);
    rows.push_back({opts.topic, std::to_string(p), it == committed->end() ? "-" : std::to_string(it->second),
                    std::to_string(target)});
  }
  print_table(rows);
  if (!opts.execute) {
    fmt::print("\ndry run: nothing changed (add --execute to apply)\n");
    return 0;
  }
  if (Status s = alter_offsets(c, opts.group, wanted); !s.is_ok()) return fail("reset-offsets", s);
  fmt::print("\nreset {} partition(s) of {} for group {}\n", wanted.size(), opts.topic, opts.group);
  return 0;
}

// Each verb owns its options: CLI11 applies EVERT_* variables to the options
// of every subcommand, so shared storage would let them override a flag.
std::shared_ptr<GroupOptions> add_verb(CLI::App* group, const char* verb, const char* help,
                                       int (*run)(const GroupOptions&), bool takes_group, CLI::App** cmd_out) {
  auto opts = std::make_shared<GroupOptions>();
  CLI::App* cmd = group->add_subcommand(verb, help);
  if (takes_group) cmd->add_option("GROUP", opts->group, "Consumer group id")->required();
  add_client_options(cmd, opts->client);
  cmd->callback([opts, run] { std::exit(run(*opts)); });
  *cmd_out = cmd;
  return opts;
}

}  // namespace

void add_group_commands(CLI::App& app) {
  CLI::App* group = app.add_subcommand("group", "List and describe consumer groups, and reset their offsets");
  group->require_subcommand(1);
  CLI::App* cmd = nullptr;
  add_verb(group, "list", "Print every consumer group with its state", run_list, false, &cmd);
  add_verb(group, "describe",
           "Print a group's state, members and assignments, and per partition the committed offset, "
           "log end offset and lag",
           run_describe, true, &cmd);

  auto reset = add_verb(group, "reset-offsets",
                        "Move a group's committed offsets on one topic (dry run unless --execute; the group must "
                        "have no active members)",
                        run_reset, true, &cmd);
  cmd->add_option("--topic", reset->topic, "The topic whose offsets move")->required();
  cmd->add_flag("--to-earliest", reset->to_earliest, "To each partition's log start offset");
  cmd->add_flag("--to-latest", reset->to_latest, "To each partition's log end offset");
  CLI::Option* to_offset = cmd->add_option("--to-offset", reset->to_offset,
                                           "To this offset (clamped to each partition's log start and end)");
  cmd->add_flag("--execute", reset->execute, "Apply the change (without it: print the plan only)");
  cmd->callback([reset, to_offset] {
    reset->has_to_offset = to_offset->count() > 0;
    std::exit(run_reset(*reset));
  });
}

}  // namespace evert::cli
