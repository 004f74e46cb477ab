// Consumer-group apis: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups,
// DeleteGroups. The state lives in GroupCoordinator.
#include "base/logging.h"
#include "kafka/protocol/messages.h"
#include "kafka/server/broker.h"
#include "kafka/server/errors.h"
#include "kafka/server/group_coordinator.h"
#include "kafka/server/handler_util.h"

namespace evert::kafka {
namespace {
constexpr int16_t kCoordinatorNotAvailable = 15;
constexpr int8_t kKeyTypeGroup = 0;

// Kafka reports client hosts as "/address".
std::string client_host(const net::ConnectionInfo& conn) {
  auto colon = conn.peer.rfind(':');
  return "/" + (colon == std::string::npos ? conn.peer : conn.peer.substr(0, colon));
}
}  // namespace

void Broker::handle_find_coordinator(std::shared_ptr<Request> req) {
  FindCoordinatorRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  FindCoordinatorResponse resp;
  if (request.key_type != kKeyTypeGroup) {
    resp.error_code = kCoordinatorNotAvailable;
    resp.error_message = "only group coordinators exist here (no transactions)";
    resp.node_id = -1;
  } else {
    resp.node_id = config_.node_id;
    resp.host = config_.advertised_host;
    resp.port = config_.advertised_port;
  }
  respond(*req, resp);
}

void Broker::handle_join_group(std::shared_ptr<Request> req) {
  JoinGroupRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  JoinRequestArgs args;
  args.group_id = request.group_id;
  args.session_timeout_ms = request.session_timeout_ms;
  args.rebalance_timeout_ms = req->header.api_version == 0 ? -1 : request.rebalance_timeout_ms;
  args.member_id = request.member_id;
  args.group_instance_id = request.group_instance_id;
  args.protocol_type = request.protocol_type;
  for (auto& p : request.protocols) args.protocols.emplace_back(p.name, std::move(p.metadata));
  args.client_id = req->header.client_id.value_or("");
  args.client_host = client_host(req->conn);
  args.member_id_required = req->header.api_version >= 4;
  coordinator_->join(std::move(args), [this, req](JoinResult r) {
    JoinGroupResponse resp;
    resp.error_code = r.error_code;
    resp.generation_id = r.generation_id;
    resp.protocol_name = r.protocol_name;
    resp.leader = r.leader;
    resp.member_id = r.member_id;
    for (auto& m : r.members) {
      auto& out = resp.members.emplace_back();
      out.member_id = m.member_id;
      out.group_instance_id = m.group_instance_id;
      out.metadata = std::move(m.metadata);
    }
    respond(*req, resp);
  });
}

void Broker::handle_sync_group(std::shared_ptr<Request> req) {
  SyncGroupRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  std::map<std::string, std::string> assignments;
  for (auto& a : request.assignments) assignments[a.member_id] = std::move(a.assignment);
  coordinator_->sync(request.group_id, request.generation_id, request.member_id, request.group_instance_id,
                     std::move(assignments), [this, req](SyncResult r) {
                       SyncGroupResponse resp;
                       resp.error_code = r.error_code;
                       resp.assignment = std::move(r.assignment);
                       respond(*req, resp);
                     });
}

void Broker::handle_heartbeat(std::shared_ptr<Request> req) {
  HeartbeatRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  HeartbeatResponse resp;
  resp.error_code =
      coordinator_->heartbeat(request.group_id, request.generation_id, request.member_id, request.group_instance_id);
  respond(*req, resp);
}

void Broker::handle_leave_group(std::shared_ptr<Request> req) {
  LeaveGroupRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  LeaveGroupResponse resp;
  if (req->header.api_version < 3) {
    resp.error_code = coordinator_->leave(request.group_id, request.member_id, std::nullopt);
  } else {
    for (const auto& m : request.members) {
      auto& out = resp.members.emplace_back();
      out.member_id = m.member_id;
      out.group_instance_id = m.group_instance_id;
      out.error_code = coordinator_->leave(request.group_id, m.member_id, m.group_instance_id);
    }
  }
  respond(*req, resp);
}

void Broker::handle_offset_commit(std::shared_ptr<Request> req) {
  OffsetCommitRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  std::vector<CommitEntry> entries;
  for (const auto& t : request.topics)
    for (const auto& p : t.partitions)
      entries.push_back(CommitEntry{t.name, p.partition_index, p.committed_offset, p.committed_metadata});
  auto shape = std::make_shared<OffsetCommitRequest>(std::move(request));
  coordinator_->commit_offsets(shape->group_id, shape->generation_id, shape->member_id, shape->group_instance_id,
                               std::move(entries), [this, req, shape](std::vector<int16_t> codes) {
                                 OffsetCommitResponse resp;
                                 size_t i = 0;
                                 for (const auto& t : shape->topics) {
                                   auto& topic = resp.topics.emplace_back();
                                   topic.name = t.name;
                                   for (const auto& p : t.partitions) {
                                     auto& part = topic.partitions.emplace_back();
                                     part.partition_index = p.partition_index;
                                     part.error_code = i < codes.size() ? codes[i] : err::kUnknownServerError;
                                     ++i;
                                   }
                                 }
                                 respond(*req, resp);
                               });
}

void Broker::handle_offset_fetch(std::shared_ptr<Request> req) {
  OffsetFetchRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  std::optional<std::vector<std::pair<std::string, int32_t>>> wanted;
  if (request.topics) {
    wanted.emplace();
    for (const auto& t : *request.topics)
      for (int32_t p : t.partition_indexes) wanted->emplace_back(t.name, p);
  }
  OffsetFetchResponse resp;
  for (auto& f : coordinator_->fetch_offsets(request.group_id, wanted)) {
    if (resp.topics.empty() || resp.topics.back().name != f.topic) resp.topics.emplace_back().name = f.topic;
    auto& part = resp.topics.back().partitions.emplace_back();
    part.partition_index = f.partition;
    part.committed_offset = f.offset;
    part.metadata = f.metadata.value_or("");
  }
  respond(*req, resp);
}

void Broker::handle_describe_groups(std::shared_ptr<Request> req) {
  DescribeGroupsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  DescribeGroupsResponse resp;
  for (const auto& id : request.groups) {
    GroupDescription d = coordinator_->describe(id);
    auto& g = resp.groups.emplace_back();
    g.error_code = d.error_code;
    g.group_id = d.group_id;
    g.group_state = d.state;
    g.protocol_type = d.protocol_type;
    g.protocol_data = d.protocol;
    for (auto& m : d.members) {
      auto& out = g.members.emplace_back();
      out.member_id = m.member_id;
      out.client_id = m.client_id;
      out.client_host = m.client_host;
      out.member_metadata = std::move(m.metadata);
      out.member_assignment = std::move(m.assignment);
    }
  }
  respond(*req, resp);
}

void Broker::handle_list_groups(std::shared_ptr<Request> req) {
  ListGroupsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  ListGroupsResponse resp;
  for (auto& g : coordinator_->list()) {
    if (!request.states_filter.empty() &&
        std::find(request.states_filter.begin(), request.states_filter.end(), g.state) == request.states_filter.end())
      continue;
    auto& out = resp.groups.emplace_back();
    out.group_id = g.group_id;
    out.protocol_type = g.protocol_type;
    out.group_state = g.state;
  }
  respond(*req, resp);
}

void Broker::handle_delete_groups(std::shared_ptr<Request> req) {
  DeleteGroupsRequest request;
  EVERT_DECODE_OR_CLOSE(req, request);
  DeleteGroupsResponse resp;
  for (const auto& id : request.groups_names) {
    auto& r = resp.results.emplace_back();
    r.group_id = id;
    r.error_code = coordinator_->delete_group(id);
  }
  respond(*req, resp);
}

}  // namespace evert::kafka
