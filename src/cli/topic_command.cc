// `evert topic create|list|describe|alter|delete`: topic administration
// against a running server, through librdkafka's admin API.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "cli/commands.h"
#include "cli/kafka_client.h"

namespace evert::cli {
namespace {

struct TopicOptions {
  ClientOptions client;
  std::string name;
  int32_t partitions = 1;
  std::vector<std::string> configs;         // key=value
  std::vector<std::string> delete_configs;  // keys
};

using ConfigMap = std::map<std::string, std::string>;

// Prints "evert topic VERB: message" and returns the exit code for it.
int fail(const char* verb, const Status& s) {
  fmt::print(stderr, "evert topic {}: {}\n", verb, s.message());
  return s.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

Result<ConfigMap> parse_configs(const std::vector<std::string>& kvs) {
  ConfigMap out;
  for (const auto& kv : kvs) {
    EVERT_ASSIGN_OR_RETURN(auto parsed, parse_key_value(kv));
    out[parsed.first] = parsed.second;
  }
  return out;
}

// The admin client every topic verb uses, connected.
Result<std::unique_ptr<KafkaClient>> admin_client(const ClientOptions& opts) {
  EVERT_ASSIGN_OR_RETURN(auto client, KafkaClient::create(ClientKind::kProducer, opts, {}));
  EVERT_RETURN_IF_ERROR(client->connect());
  return client;
}

int run_create(const TopicOptions& opts) {
  auto configs = parse_configs(opts.configs);
  if (!configs.is_ok()) return fail("create", configs.status());
  auto client = admin_client(opts.client);
  if (!client.is_ok()) return fail("create", client.status());
  Status s = (*client)->create_topic(opts.name, opts.partitions, *configs);
  if (!s.is_ok()) return fail("create", s);
  fmt::print("created topic {} with {} partition(s)\n", opts.name, opts.partitions);
  return 0;
}

int run_list(const TopicOptions& opts) {
  auto client = admin_client(opts.client);
  if (!client.is_ok()) return fail("list", client.status());
  auto md = (*client)->metadata();
  if (!md.is_ok()) return fail("list", md.status());
  std::vector<std::string> names;
  for (int i = 0; i < (*md)->topic_cnt; ++i) names.emplace_back((*md)->topics[i].topic);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) fmt::print("{}\n", n);
  return 0;
}

struct ConfigEntry {
  std::string value;
  bool is_default = true;
};

// The topic's configs as DescribeConfigs reports them.
Result<std::map<std::string, ConfigEntry>> describe_configs(KafkaClient& client, const std::string& topic) {
  ConfigResourcePtr resource(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  rd_kafka_ConfigResource_t* resources[] = {resource.get()};
  EVERT_ASSIGN_OR_RETURN(
      EventPtr ev, client.admin([&](const rd_kafka_AdminOptions_t* o,
                                    rd_kafka_queue_t* q) { rd_kafka_DescribeConfigs(client.get(), resources, 1, o, q); },
                                RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT));
  size_t n = 0;
  const rd_kafka_ConfigResource_t** results =
      rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev.get()), &n);
  std::map<std::string, ConfigEntry> out;
  for (size_t i = 0; i < n; ++i) {
    if (rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(results[i]); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_ConfigResource_error_string(results[i]);
      return error(kafka_status(err, "").code(), msg != nullptr && *msg != '\0' ? msg : rd_kafka_err2str(err));
    }
    size_t count = 0;
    const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(results[i], &count);
    for (size_t j = 0; j < count; ++j) {
      const char* value = rd_kafka_ConfigEntry_value(entries[j]);
      out[rd_kafka_ConfigEntry_name(entries[j])] =
          ConfigEntry{value != nullptr ? value : "", rd_kafka_ConfigEntry_is_default(entries[j]) != 0};
    }
  }
  return out;
}

int run_describe(const TopicOptions& opts) {
  auto client = admin_client(opts.client);
  if (!client.is_ok()) return fail("describe", client.status());
  KafkaClient& c = **client;
  auto partitions = c.partition_count(opts.name);
  if (!partitions.is_ok()) return fail("describe", partitions.status());
  auto configs = describe_configs(c, opts.name);
  if (!configs.is_ok()) return fail("describe", configs.status());
  fmt::print("topic {} partitions {}\n", opts.name, *partitions);
  for (int32_t p = 0; p < *partitions; ++p) {
    int64_t low = -1;
    int64_t high = -1;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(c.get(), opts.name.c_str(), p, &low, &high, kRequestTimeoutMs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return fail("describe", kafka_status(err, fmt::format("watermarks of partition {}", p)));
    fmt::print("partition {} low {} high {}\n", p, low, high);
  }
  for (const auto& [name, entry] : *configs)
    fmt::print("config {}={} {}\n", name, entry.value, entry.is_default ? "default" : "override");
  return 0;
}

// AlterConfigs replaces a topic's whole set of overrides, so the new set is
// the current overrides with the requested changes applied.
int run_alter(const TopicOptions& opts) {
  auto changes = parse_configs(opts.configs);
  if (!changes.is_ok()) return fail("alter", changes.status());
  if (changes->empty() && opts.delete_configs.empty())
    return fail("alter", error(ErrorCode::kInvalidArgument, "nothing to change: give --config k=v or --delete-config k"));
  auto client = admin_client(opts.client);
  if (!client.is_ok()) return fail("alter", client.status());
  KafkaClient& c = **client;
  auto current = describe_configs(c, opts.name);
  if (!current.is_ok()) return fail("alter", current.status());
  ConfigMap wanted;
  for (const auto& [name, entry] : *current)
    if (!entry.is_default) wanted[name] = entry.value;
  for (const auto& [k, v] : *changes) wanted[k] = v;
  for (const auto& k : opts.delete_configs) wanted.erase(k);

  ConfigResourcePtr resource(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, opts.name.c_str()));
  for (const auto& [k, v] : wanted) {
    if (rd_kafka_ConfigResource_set_config(resource.get(), k.c_str(), v.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR)
      return fail("alter", error(ErrorCode::kInvalidArgument, fmt::format("config {}={} is not accepted", k, v)));
  }
  rd_kafka_ConfigResource_t* resources[] = {resource.get()};
  auto ev = c.admin([&](const rd_kafka_AdminOptions_t* o,
                        rd_kafka_queue_t* q) { rd_kafka_AlterConfigs(c.get(), resources, 1, o, q); },
                    RD_KAFKA_ADMIN_OP_ALTERCONFIGS, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT);
  if (!ev.is_ok()) return fail("alter", ev.status());
  size_t n = 0;
  const rd_kafka_ConfigResource_t** results =
      rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev->get()), &n);
  for (size_t i = 0; i < n; ++i) {
    if (rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(results[i]); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_ConfigResource_error_string(results[i]);
      return fail("alter", error(kafka_status(err, "").code(),
                                 msg != nullptr && *msg != '\0' ? msg : rd_kafka_err2str(err)));
    }
  }
  fmt::print("altered topic {}\n", opts.name);
  return 0;
}

int run_delete(const TopicOptions& opts) {
  auto client = admin_client(opts.client);
  if (!client.is_ok()) return fail("delete", client.status());
  KafkaClient& c = **client;
  DeleteTopicPtr topic(rd_kafka_DeleteTopic_new(opts.name.c_str()));
  rd_kafka_DeleteTopic_t* topics[] = {topic.get()};
  auto ev = c.admin([&](const rd_kafka_AdminOptions_t* o,
                        rd_kafka_queue_t* q) { rd_kafka_DeleteTopics(c.get(), topics, 1, o, q); },
                    RD_KAFKA_ADMIN_OP_DELETETOPICS, RD_KAFKA_EVENT_DELETETOPICS_RESULT);
  if (!ev.is_ok()) return fail("delete", ev.status());
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev->get()), &n);
  for (size_t i = 0; i < n; ++i) {
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
      return fail("delete", error(ErrorCode::kNotFound, fmt::format("topic '{}' does not exist", opts.name)));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return fail("delete", kafka_status(err, opts.name));
  }
  fmt::print("deleted topic {}\n", opts.name);
  return 0;
}

// Each verb owns its options: CLI11 applies EVERT_* variables to the options
// of every subcommand, so shared storage would let them override a flag.
std::shared_ptr<TopicOptions> add_verb(CLI::App* topic, const char* verb, const char* help,
                                       int (*run)(const TopicOptions&), bool takes_name, CLI::App** cmd_out = nullptr) {
  auto opts = std::make_shared<TopicOptions>();
  CLI::App* cmd = topic->add_subcommand(verb, help);
  if (takes_name) cmd->add_option("NAME", opts->name, "Topic name")->required();
  add_client_options(cmd, opts->client);
  cmd->callback([opts, run] { std::exit(run(*opts)); });
  if (cmd_out != nullptr) *cmd_out = cmd;
  return opts;
}

}  // namespace

void add_topic_commands(CLI::App& app) {
  CLI::App* topic = app.add_subcommand("topic", "Create, list, describe, alter and delete topics on a running server");
  topic->require_subcommand(1);

  CLI::App* create = nullptr;
  auto create_opts = add_verb(topic, "create", "Create a topic", run_create, true, &create);
  create->add_option("--partitions", create_opts->partitions, "Partition count")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  create->add_option("--config", create_opts->configs, "A topic config key=value (repeatable)")
      ->allow_extra_args(false);

  add_verb(topic, "list", "Print every topic name, one per line", run_list, false);
  add_verb(topic, "describe", "Print a topic's partitions with their watermarks, and its configs", run_describe, true);

  CLI::App* alter = nullptr;
  auto alter_opts = add_verb(topic, "alter", "Set or remove topic config overrides", run_alter, true, &alter);
  alter->add_option("--config", alter_opts->configs, "Set key=value (repeatable)")->allow_extra_args(false);
  alter->add_option("--delete-config", alter_opts->delete_configs, "Remove the override of a key (repeatable)")
      ->allow_extra_args(false);

  add_verb(topic, "delete", "Delete a topic and its data", run_delete, true);
}

}  // namespace evert::cli
