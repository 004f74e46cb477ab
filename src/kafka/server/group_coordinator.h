// The group coordinator for Kafka's classic consumer-group protocol, and the
// store of committed offsets.
//
// Group membership runs the state machine Empty -> PreparingRebalance ->
// CompletingRebalance -> Stable (Dead once deleted). JoinGroup and SyncGroup
// answers are parked until the rebalance step they wait for completes;
// every answer is delivered through a callback, exactly once.
//
// Committed offsets and each group's last completed generation are facts
// appended to the internal topic __consumer_offsets (group_records.h) and
// replayed at start-up. The topic stays bounded without key compaction: once
// it grows past a threshold the coordinator rolls it, appends a snapshot of
// its whole state and deletes the segments before the snapshot.
//
// Threading: every public method is thread-safe (one mutex); callbacks run
// without the mutex held, on the calling thread or the tick thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "kafka/server/group_records.h"
#include "log/log_manager.h"

namespace evert::kafka {

inline constexpr const char* kOffsetsTopic = "__consumer_offsets";

struct GroupConfig {
  int32_t min_session_timeout_ms = 6000;
  int32_t max_session_timeout_ms = 1800000;
  int64_t offset_metadata_bytes_max = 4096;
  // The internal topic is snapshotted and trimmed when it exceeds this.
  int64_t offsets_topic_compact_bytes = 64ll << 20;
  int64_t offsets_topic_segment_bytes = 16ll << 20;
  // A first join to an empty group waits this long for more members.
  int32_t initial_rebalance_delay_ms = 0;
};

struct JoinRequestArgs {
  std::string group_id;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = -1;  // -1: v0, use the session timeout
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string protocol_type;
  std::vector<std::pair<std::string, std::string>> protocols;  // name, metadata
  std::string client_id;
  std::string client_host;
  bool member_id_required = false;  // JoinGroup v4+
};

struct JoinedMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string metadata;
};

struct JoinResult {
  int16_t error_code = 0;
  int32_t generation_id = -1;
  std::string protocol_name;
  std::string leader;
  std::string member_id;
  std::vector<JoinedMember> members;  // only for the leader
};

struct SyncResult {
  int16_t error_code = 0;
  std::string assignment;
};

struct CommitEntry {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> metadata;
};

struct FetchedOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
  std::optional<std::string> metadata;
};

struct GroupMemberDescription {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  std::string metadata;    // for the chosen protocol
  std::string assignment;
};

struct GroupDescription {
  int16_t error_code = 0;
  std::string group_id;
  std::string state;  // Empty, PreparingRebalance, CompletingRebalance, Stable, Dead
  std::string protocol_type;
  std::string protocol;
  int32_t generation_id = 0;
  std::vector<GroupMemberDescription> members;
};

struct ListedGroup {
  std::string group_id;
  std::string protocol_type;
  std::string state;
};

class GroupCoordinator {
 public:
  // Opens (creating if needed) the internal topic and replays it.
  static Result<std::unique_ptr<GroupCoordinator>> open(log::LogManager* log, const GroupConfig& config,
                                                        Clock* clock);
  ~GroupCoordinator();

  void join(JoinRequestArgs args, std::function<void(JoinResult)> done);
  void sync(const std::string& group_id, int32_t generation_id, const std::string& member_id,
            const std::optional<std::string>& group_instance_id,
            std::map<std::string, std::string> assignments, std::function<void(SyncResult)> done);
  int16_t heartbeat(const std::string& group_id, int32_t generation_id, const std::string& member_id,
                    const std::optional<std::string>& group_instance_id);
  // Removes one member (by member id, or by instance id when member_id is empty).
  int16_t leave(const std::string& group_id, const std::string& member_id,
                const std::optional<std::string>& group_instance_id);

  // Validates and stores offsets; `done` gets one error code per entry once
  // they are durable.
  void commit_offsets(const std::string& group_id, int32_t generation_id, const std::string& member_id,
                      const std::optional<std::string>& group_instance_id, std::vector<CommitEntry> entries,
                      std::function<void(std::vector<int16_t>)> done);
  // Committed offsets; `wanted` nullopt = every partition with a commit.
  std::vector<FetchedOffset> fetch_offsets(const std::string& group_id,
                                           const std::optional<std::vector<std::pair<std::string, int32_t>>>& wanted);
  GroupDescription describe(const std::string& group_id);
  std::vector<ListedGroup> list();
  // GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP or 0.
  int16_t delete_group(const std::string& group_id);
  // Drops every committed offset of a deleted topic.
  void forget_topic(const std::string& topic);

  // Expires sessions and finishes rebalances whose time is up. Called
  // periodically (every ~100 ms) by the broker.
  void tick();

  int64_t now_ms() const { return clock_->now_ms(); }

 private:
  struct Group;
  struct Member;
  using Callbacks = std::vector<std::function<void()>>;

  GroupCoordinator(log::LogManager* log, const GroupConfig& config, Clock* clock);
  Status replay();
  void apply_record(const std::optional<std::string_view>& key, const std::optional<std::string_view>& value);

  Group* find_group(const std::string& group_id);
  Group& get_or_create_group(const std::string& group_id);
  std::string new_member_id(const std::string& client_id);
  void add_member(Group& g, const JoinRequestArgs& args, const std::string& member_id,
                  std::function<void(JoinResult)> done, Callbacks* out);
  void prepare_rebalance(Group& g, Callbacks* out);
  void maybe_complete_join(Group& g, bool deadline_passed, Callbacks* out);
  void remove_member(Group& g, const std::string& member_id, Callbacks* out);
  void complete_sync(Group& g, Callbacks* out);
  std::string choose_protocol(const Group& g) const;
  JoinResult join_result_for(const Group& g, const Member& m) const;

  // Key and value (null = tombstone) of internal-topic records.
  using Records = std::vector<std::pair<std::string, std::optional<std::string>>>;
  // Appends records to the internal topic; `done` runs once durable.
  void persist(Records records, std::function<void(Status)> done);
  // Appends in batches of at most kPersistBatchBytesMax; returns the end offset.
  Result<int64_t> append_records_locked(const Records& records);
  void persist_group(const Group& g);
  static GroupValue group_value(const Group& g);
  void maybe_compact_locked();

  log::LogManager* log_;
  GroupConfig config_;
  Clock* clock_;
  std::shared_ptr<log::Partition> partition_;

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Group>> groups_;
  // (group, topic, partition) -> committed offset and metadata.
  std::map<std::tuple<std::string, std::string, int32_t>, std::pair<int64_t, std::optional<std::string>>> offsets_;
  uint64_t member_counter_ = 0;
  bool compacting_ = false;
};

}  // namespace evert::kafka
