// Topic administration: CreateTopics, DeleteTopics, CreatePartitions,
// DescribeConfigs, AlterConfigs, IncrementalAlterConfigs.
#include <fmt/format.h>

#include "base/logging.h"
#include "kafka/protocol/messages.h"
#include "kafka/server/broker.h"
#include "kafka/server/errors.h"
#include "kafka/server/group_coordinator.h"
#include "kafka/server/handler_util.h"
#include "log/file_names.h"

namespace evert::kafka {
namespace {

constexpr int8_t kResourceTopic = 2;
constexpr int8_t kResourceBroker = 4;
// DescribeConfigs config_source values.
constexpr int8_t kSourceDynamicTopic = 1;
constexpr int8_t kSourceDefault = 5;

int16_t config_error_code(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kNotFound: return err::kUnknownTopicOrPartition;
    case ErrorCode::kInvalidArgument: return err::kInvalidConfig;
    default: return kafka_error_for(s);
  }
}

}  // namespace

void Broker::handle_create_topics(std::shared_ptr<Request> req) {
  CreateTopicsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  CreateTopicsResponse resp;
  for (const auto& t : request.topics) {
    auto& result = resp.topics.emplace_back();
    result.name = t.name;
    auto fail = [&](int16_t code, std::string message) {
      result.error_code = code;
      result.error_message = std::move(message);
    };
    if (!log::is_valid_topic_name(t.name)) {
      fail(err::kInvalidTopic, fmt::format("'{}' is not a valid topic name", t.name));
      continue;
    }
    if (log_->describe_topic(t.name)) {
      fail(err::kTopicAlreadyExists, fmt::format("topic '{}' already exists", t.name));
      continue;
    }
    int32_t partitions = t.num_partitions;
    if (!t.assignments.empty()) {
      if (partitions != -1 || t.replication_factor != -1) {
        fail(err::kInvalidRequest, "give either assignments or partitions and replication factor");
        continue;
      }
      bool ok = true;
      for (size_t i = 0; i < t.assignments.size(); ++i) {
        const auto& a = t.assignments[i];
        if (a.partition_index != int32_t(i) || a.broker_ids != std::vector<int32_t>{config_.node_id}) ok = false;
      }
      if (!ok) {
        fail(err::kInvalidReplicaAssignment, "assignments must name partitions 0..N-1, each on broker 0 only");
        continue;
      }
      partitions = int32_t(t.assignments.size());
    }
    if (partitions == -1) partitions = config_.default_partitions;
    if (partitions < 1 || partitions > log::kPartitionsMax) {
      fail(err::kInvalidPartitions, fmt::format("partition count {} is outside [1, {}]", partitions,
                                                log::kPartitionsMax));
      continue;
    }
    if (t.replication_factor != -1 && t.replication_factor != 1 && t.assignments.empty()) {
      fail(err::kInvalidReplicationFactor,
           fmt::format("replication factor {} is larger than the 1 available broker", t.replication_factor));
      continue;
    }
    log::ConfigOverrides overrides;
    for (const auto& c : t.configs)
      if (c.value) overrides[c.name] = *c.value;
    auto checked = log::apply_config_overrides(log_->options().defaults, overrides);
    if (!checked.is_ok()) {
      fail(err::kInvalidConfig, checked.status().message());
      continue;
    }
    if (request.validate_only) continue;
    auto created = log_->create_topic(t.name, partitions, overrides);
    if (!created.is_ok()) {
      int16_t code = created.status().code() == ErrorCode::kAlreadyExists ? err::kTopicAlreadyExists
                                                                            : config_error_code(created.status());
      fail(code, created.status().message());
    }
  }
  respond(*req, resp);
}

void Broker::handle_delete_topics(std::shared_ptr<Request> req) {
  DeleteTopicsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  DeleteTopicsResponse resp;
  for (const auto& name : request.topic_names) {
    auto& result = resp.responses.emplace_back();
    result.name = name;
    if (name == kOffsetsTopic) {
      result.error_code = err::kInvalidRequest;  // evert's own state
      continue;
    }
    Status s = log_->delete_topic(name);
    if (s.is_ok() && coordinator_) coordinator_->forget_topic(name);
    if (!s.is_ok()) result.error_code = s.code() == ErrorCode::kNotFound ? err::kUnknownTopicOrPartition
                                                                          : kafka_error_for(s);
  }
  respond(*req, resp);
}

void Broker::handle_create_partitions(std::shared_ptr<Request> req) {
  CreatePartitionsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  CreatePartitionsResponse resp;
  for (const auto& t : request.topics) {
    auto& result = resp.results.emplace_back();
    result.name = t.name;
    auto info = log_->describe_topic(t.name);
    if (!info) {
      result.error_code = err::kUnknownTopicOrPartition;
      result.error_message = fmt::format("topic '{}' does not exist", t.name);
      continue;
    }
    if (t.count <= info->partitions || t.count > log::kPartitionsMax) {
      result.error_code = err::kInvalidPartitions;
      result.error_message = fmt::format("topic '{}' has {} partitions; {} is not a larger count within [1, {}]",
                                         t.name, info->partitions, t.count, log::kPartitionsMax);
      continue;
    }
    if (request.validate_only) continue;
    Status s = log_->add_partitions(t.name, t.count);
    if (!s.is_ok()) {
      result.error_code = s.code() == ErrorCode::kInvalidArgument ? err::kInvalidPartitions : kafka_error_for(s);
      result.error_message = s.message();
    }
  }
  respond(*req, resp);
}

void Broker::handle_describe_configs(std::shared_ptr<Request> req) {
  DescribeConfigsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  int16_t v = req->header.api_version;
  DescribeConfigsResponse resp;
  for (const auto& r : request.resources) {
    auto& result = resp.results.emplace_back();
    result.resource_type = r.resource_type;
    result.resource_name = r.resource_name;
    auto wanted = [&](const std::string& name) {
      if (!r.configuration_keys) return true;
      for (const auto& k : *r.configuration_keys)
        if (k == name) return true;
      return false;
    };
    if (r.resource_type == kResourceBroker) {
      if (r.resource_name != std::to_string(config_.node_id)) {
        result.error_code = err::kInvalidRequest;
        result.error_message = fmt::format("no broker '{}' (this is broker {})", r.resource_name, config_.node_id);
      }
      continue;  // no broker configs are exposed yet
    }
    if (r.resource_type != kResourceTopic) {
      result.error_code = err::kInvalidRequest;
      result.error_message = fmt::format("resource type {} is not supported", r.resource_type);
      continue;
    }
    auto info = log_->describe_topic(r.resource_name);
    if (!info) {
      result.error_code = err::kUnknownTopicOrPartition;
      result.error_message = fmt::format("topic '{}' does not exist", r.resource_name);
      continue;
    }
    for (const auto& [name, value] : log::describe_config(info->config)) {
      if (!wanted(name)) continue;
      auto& c = result.configs.emplace_back();
      bool overridden = info->overrides.count(name) > 0;
      c.name = name;
      c.value = value;
      c.read_only = false;
      c.is_default = !overridden;
      c.config_source = overridden ? kSourceDynamicTopic : kSourceDefault;
      c.is_sensitive = false;
      if (v >= 1 && request.include_synonyms) {
        auto& syn = c.synonyms.emplace_back();
        syn.name = name;
        syn.value = value;
        syn.source = c.config_source;
      }
    }
  }
  respond(*req, resp);
}

void Broker::handle_alter_configs(std::shared_ptr<Request> req) {
  AlterConfigsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  AlterConfigsResponse resp;
  for (const auto& r : request.resources) {
    auto& result = resp.responses.emplace_back();
    result.resource_type = r.resource_type;
    result.resource_name = r.resource_name;
    if (r.resource_type != kResourceTopic) {
      result.error_code = err::kInvalidRequest;
      result.error_message = "only topic configs can be altered";
      continue;
    }
    log::ConfigOverrides overrides;
    for (const auto& c : r.configs)
      if (c.value) overrides[c.name] = *c.value;
    Status s;
    if (!log_->describe_topic(r.resource_name)) {
      s = error(ErrorCode::kNotFound, fmt::format("topic '{}' does not exist", r.resource_name));
    } else if (request.validate_only) {
      s = log::apply_config_overrides(log_->options().defaults, overrides).status();
    } else {
      s = log_->alter_config(r.resource_name, overrides, false);
    }
    if (!s.is_ok()) {
      result.error_code = config_error_code(s);
      result.error_message = s.message();
    }
  }
  respond(*req, resp);
}

void Broker::handle_incremental_alter_configs(std::shared_ptr<Request> req) {
  IncrementalAlterConfigsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  IncrementalAlterConfigsResponse resp;
  constexpr int8_t kSet = 0;
  constexpr int8_t kDelete = 1;
  for (const auto& r : request.resources) {
    auto& result = resp.responses.emplace_back();
    result.resource_type = r.resource_type;
    result.resource_name = r.resource_name;
    if (r.resource_type != kResourceTopic) {
      result.error_code = err::kInvalidRequest;
      result.error_message = "only topic configs can be altered";
      continue;
    }
    auto info = log_->describe_topic(r.resource_name);
    if (!info) {
      result.error_code = err::kUnknownTopicOrPartition;
      result.error_message = fmt::format("topic '{}' does not exist", r.resource_name);
      continue;
    }
    log::ConfigOverrides changes;
    Status s;
    for (const auto& c : r.configs) {
      if (c.config_operation == kSet) {
        changes[c.name] = c.value.value_or("");
        if (!c.value) s = error(ErrorCode::kInvalidArgument, fmt::format("{}: SET needs a value", c.name));
      } else if (c.config_operation == kDelete) {
        changes[c.name] = "";  // an empty value removes the override
      } else {
        s = error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: operation {} is not supported (no list-valued configs)", c.name, c.config_operation));
      }
    }
    if (s.is_ok()) {
      if (request.validate_only) {
        log::ConfigOverrides merged = info->overrides;
        for (const auto& [k, val] : changes) {
          if (val.empty()) {
            merged.erase(k);
          } else {
            merged[k] = val;
          }
        }
        s = log::apply_config_overrides(log_->options().defaults, merged).status();
      } else {
        s = log_->alter_config(r.resource_name, changes, true);
      }
    }
    if (!s.is_ok()) {
      result.error_code = config_error_code(s);
      result.error_message = s.message();
    }
  }
  respond(*req, resp);
}

}  // namespace evert::kafka
