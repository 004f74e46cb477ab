#include "kafka/server/group_coordinator.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "base/logging.h"
#include "kafka/server/errors.h"
#include "kafka/server/group_records.h"
#include "log/record_batch.h"

namespace evert::kafka {

namespace gerr {
inline constexpr int16_t kCoordinatorNotAvailable = 15;
inline constexpr int16_t kOffsetMetadataTooLarge = 12;
inline constexpr int16_t kIllegalGeneration = 22;
inline constexpr int16_t kInconsistentGroupProtocol = 23;
inline constexpr int16_t kInvalidGroupId = 24;
inline constexpr int16_t kUnknownMemberId = 25;
inline constexpr int16_t kInvalidSessionTimeout = 26;
inline constexpr int16_t kRebalanceInProgress = 27;
inline constexpr int16_t kNonEmptyGroup = 68;
inline constexpr int16_t kGroupIdNotFound = 69;
inline constexpr int16_t kMemberIdRequired = 79;
}  // namespace gerr

namespace {
enum class State { kEmpty, kPreparingRebalance, kCompletingRebalance, kStable };

const char* state_name(State s) {
  switch (s) {
    case State::kEmpty: return "Empty";
    case State::kPreparingRebalance: return "PreparingRebalance";
    case State::kCompletingRebalance: return "CompletingRebalance";
    case State::kStable: return "Stable";
  }
  return "Dead";
}

// Internal-topic batches stay well under the default max.message.bytes.
constexpr size_t kPersistBatchBytesMax = 512 * 1024;
}  // namespace

struct GroupCoordinator::Member {
  std::string member_id;
  std::optional<std::string> instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::vector<std::pair<std::string, std::string>> protocols;
  std::string assignment;
  std::function<void(JoinResult)> join_cb;  // a parked JoinGroup
  std::function<void(SyncResult)> sync_cb;  // a parked SyncGroup
  int64_t last_seen_ms = 0;

  const std::string* metadata_for(const std::string& protocol) const {
    for (const auto& [name, meta] : protocols)
      if (name == protocol) return &meta;
    return nullptr;
  }
};

struct GroupCoordinator::Group {
  std::string id;
  State state = State::kEmpty;
  int32_t generation = 0;
  std::string protocol_type;
  std::string protocol;
  std::string leader;
  std::map<std::string, Member> members;
  std::map<std::string, int64_t> pending;  // member ids handed out with MEMBER_ID_REQUIRED -> expiry
  int64_t rebalance_deadline_ms = 0;
  int64_t sync_deadline_ms = 0;
};

Result<std::unique_ptr<GroupCoordinator>> GroupCoordinator::open(log::LogManager* log, const GroupConfig& config,
                                                                 Clock* clock) {
  std::unique_ptr<GroupCoordinator> c(new GroupCoordinator(log, config, clock));
  if (!log->describe_topic(kOffsetsTopic)) {
    log::ConfigOverrides overrides{{"segment.bytes", std::to_string(config.offsets_topic_segment_bytes)},
                                   {"retention.ms", "-1"}};
    auto created = log->create_topic(kOffsetsTopic, 1, overrides);
    if (!created.is_ok() && created.status().code() != ErrorCode::kAlreadyExists) return created.status();
  }
  c->partition_ = log->partition(kOffsetsTopic, 0);
  if (!c->partition_) return error(ErrorCode::kInternal, "internal offsets topic has no partition 0");
  EVERT_RETURN_IF_ERROR(c->replay());
  return c;
}

GroupCoordinator::GroupCoordinator(log::LogManager* log, const GroupConfig& config, Clock* clock)
    : log_(log), config_(config), clock_(clock) {}

GroupCoordinator::~GroupCoordinator() = default;

Status GroupCoordinator::replay() {
  int64_t offset = partition_->log_start_offset();
  int64_t records = 0;
  while (offset < partition_->high_watermark()) {
    EVERT_ASSIGN_OR_RETURN(auto read, partition_->read(offset, 1 << 20));
    if (!read.slice) break;
    std::string bytes(read.slice->size_bytes, '\0');
    EVERT_ASSIGN_OR_RETURN(size_t n, read.slice->file->read_at(
                                         read.slice->position,
                                         MutableByteSpan(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size())));
    bytes.resize(n);
    size_t pos = 0;
    int64_t next = offset;
    while (bytes.size() - pos >= log::batch_layout::kHeaderSize) {
      auto header = log::decode_batch_header(as_bytes(std::string_view(bytes).substr(pos)));
      if (header.total_size() > bytes.size() - pos) break;  // partial trailing batch
      auto batch = as_bytes(std::string_view(bytes).substr(pos, header.total_size()));
      auto decoded = log::decode_records(batch);
      if (!decoded.is_ok()) {
        log_error("{}: skipping batch at offset {}: {}", kOffsetsTopic, header.base_offset,
                  decoded.status().to_string());
      } else {
        for (const auto& r : *decoded) {
          apply_record(r.key, r.value);
          ++records;
        }
      }
      next = header.last_offset() + 1;
      pos += header.total_size();
    }
    if (next == offset) return error(ErrorCode::kCorruption, fmt::format("{}: no progress at {}", kOffsetsTopic, offset));
    offset = next;
  }
  log_info("group coordinator: replayed {} record(s): {} group(s), {} committed offset(s)", records, groups_.size(),
           offsets_.size());
  return Status::ok();
}

void GroupCoordinator::apply_record(const std::optional<std::string_view>& key,
                                    const std::optional<std::string_view>& value) {
  if (!key) return;
  auto k = decode_key(*key);
  if (!k.is_ok()) {
    log_warn("{}: unreadable key: {}", kOffsetsTopic, k.status().message());
    return;
  }
  if (const auto* ok = std::get_if<OffsetKey>(&*k)) {
    auto id = std::make_tuple(ok->group, ok->topic, ok->partition);
    if (!value) {
      offsets_.erase(id);
      return;
    }
    auto v = decode_offset_value(*value);
    if (!v.is_ok()) return;
    offsets_[id] = {v->offset, v->metadata};
    if (!groups_.count(ok->group)) get_or_create_group(ok->group);
    return;
  }
  const std::string& gid = std::get<GroupKey>(*k).group;
  if (!value) {
    groups_.erase(gid);
    return;
  }
  auto v = decode_group_value(*value);
  if (!v.is_ok()) return;
  Group& g = get_or_create_group(gid);
  g.protocol_type = v->protocol_type;
  g.generation = v->generation;
  g.protocol = v->protocol;
  g.leader = v->leader;
  g.members.clear();
  int64_t now = now_ms();
  for (const auto& sm : v->members) {
    Member m;
    m.member_id = sm.member_id;
    m.instance_id = sm.group_instance_id;
    m.client_id = sm.client_id;
    m.client_host = sm.client_host;
    m.session_timeout_ms = sm.session_timeout_ms;
    m.rebalance_timeout_ms = sm.rebalance_timeout_ms;
    m.protocols = {{g.protocol, sm.metadata}};
    m.assignment = sm.assignment;
    m.last_seen_ms = now;  // members get one session to come back after a restart
    g.members.emplace(m.member_id, std::move(m));
  }
  g.state = g.members.empty() ? State::kEmpty : State::kStable;
}

GroupCoordinator::Group* GroupCoordinator::find_group(const std::string& group_id) {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : it->second.get();
}

GroupCoordinator::Group& GroupCoordinator::get_or_create_group(const std::string& group_id) {
  auto& slot = groups_[group_id];
  if (!slot) {
    slot = std::make_unique<Group>();
    slot->id = group_id;
  }
  return *slot;
}

std::string GroupCoordinator::new_member_id(const std::string& client_id) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{}-{:016x}{:04x}", client_id.empty() ? "member" : client_id, rng(), ++member_counter_ & 0xffff);
}

std::string GroupCoordinator::choose_protocol(const Group& g) const {
  // Each member votes for its first protocol that every member supports.
  std::map<std::string, int> votes;
  std::vector<std::string> order;
  for (const auto& [id, m] : g.members) {
    for (const auto& [name, meta] : m.protocols) {
      bool everyone = std::all_of(g.members.begin(), g.members.end(),
                                  [&](const auto& other) { return other.second.metadata_for(name) != nullptr; });
      if (!everyone) continue;
      if (!votes.count(name)) order.push_back(name);
      ++votes[name];
      break;
    }
  }
  std::string best;
  int best_votes = -1;
  for (const auto& name : order) {
    if (votes[name] > best_votes) {
      best = name;
      best_votes = votes[name];
    }
  }
  return best;
}

JoinResult GroupCoordinator::join_result_for(const Group& g, const Member& m) const {
  JoinResult r;
  r.generation_id = g.generation;
  r.protocol_name = g.protocol;
  r.leader = g.leader;
  r.member_id = m.member_id;
  if (m.member_id == g.leader) {
    for (const auto& [id, other] : g.members) {
      const std::string* meta = other.metadata_for(g.protocol);
      r.members.push_back(JoinedMember{id, other.instance_id, meta ? *meta : std::string()});
    }
  }
  return r;
}

void GroupCoordinator::join(JoinRequestArgs args, std::function<void(JoinResult)> done) {
  Callbacks out;
  auto fail = [&](int16_t code) {
    JoinResult r;
    r.error_code = code;
    r.member_id = args.member_id;
    out.push_back([done, r] { done(r); });
  };
  {
    std::lock_guard lock(mu_);
    int64_t now = now_ms();
    if (args.group_id.empty()) {
      fail(gerr::kInvalidGroupId);
    } else if (args.session_timeout_ms < config_.min_session_timeout_ms ||
               args.session_timeout_ms > config_.max_session_timeout_ms) {
      fail(gerr::kInvalidSessionTimeout);
    } else if (args.protocol_type.empty() || args.protocols.empty()) {
      fail(gerr::kInconsistentGroupProtocol);
    } else {
      Group& g = get_or_create_group(args.group_id);
      bool compatible = g.members.empty() || g.protocol_type == args.protocol_type;
      if (compatible && !g.members.empty()) {
        // Some protocol must be supported by every member, the joiner included.
        compatible = std::any_of(args.protocols.begin(), args.protocols.end(), [&](const auto& p) {
          return std::all_of(g.members.begin(), g.members.end(), [&](const auto& m) {
            return m.first == args.member_id || m.second.metadata_for(p.first) != nullptr;
          });
        });
      }
      if (args.rebalance_timeout_ms < 0) args.rebalance_timeout_ms = args.session_timeout_ms;
      if (!compatible) {
        fail(gerr::kInconsistentGroupProtocol);
      } else if (args.member_id.empty()) {
        if (args.group_instance_id) {
          // A static member coming back under a new member id replaces its old self.
          for (auto& [id, m] : g.members) {
            if (m.instance_id == args.group_instance_id) {
              std::string old = id;
              remove_member(g, old, &out);
              break;
            }
          }
        }
        std::string id = new_member_id(args.client_id);
        if (args.member_id_required && !args.group_instance_id) {
          g.pending[id] = now + args.session_timeout_ms;
          JoinResult r;
          r.error_code = gerr::kMemberIdRequired;
          r.member_id = id;
          out.push_back([done, r] { done(r); });
        } else {
          add_member(g, args, id, std::move(done), &out);
        }
      } else if (g.pending.count(args.member_id)) {
        g.pending.erase(args.member_id);
        add_member(g, args, args.member_id, std::move(done), &out);
      } else if (!g.members.count(args.member_id)) {
        fail(gerr::kUnknownMemberId);
      } else {
        Member& m = g.members.at(args.member_id);
        bool changed = m.protocols != args.protocols;
        m.protocols = args.protocols;
        m.session_timeout_ms = args.session_timeout_ms;
        m.rebalance_timeout_ms = args.rebalance_timeout_ms;
        m.last_seen_ms = now;
        bool answer_now = !changed && m.member_id != g.leader &&
                          (g.state == State::kStable || g.state == State::kCompletingRebalance);
        if (answer_now) {
          JoinResult r = join_result_for(g, m);
          out.push_back([done, r] { done(r); });
        } else {
          if (m.join_cb) {
            // A duplicate join replaces the parked one; the old request learns so.
            auto old = std::move(m.join_cb);
            JoinResult r;
            r.error_code = gerr::kRebalanceInProgress;
            r.member_id = m.member_id;
            out.push_back([old, r] { old(r); });
          }
          m.join_cb = std::move(done);
          if (g.state == State::kPreparingRebalance) {
            maybe_complete_join(g, false, &out);
          } else {
            prepare_rebalance(g, &out);
          }
        }
      }
    }
  }
  for (auto& cb : out) cb();
}

void GroupCoordinator::add_member(Group& g, const JoinRequestArgs& args, const std::string& member_id,
                                  std::function<void(JoinResult)> done, Callbacks* out) {
  if (g.members.empty()) g.protocol_type = args.protocol_type;
  Member m;
  m.member_id = member_id;
  m.instance_id = args.group_instance_id;
  m.client_id = args.client_id;
  m.client_host = args.client_host;
  m.session_timeout_ms = args.session_timeout_ms;
  m.rebalance_timeout_ms = args.rebalance_timeout_ms;
  m.protocols = args.protocols;
  m.join_cb = std::move(done);
  m.last_seen_ms = now_ms();
  g.members.emplace(member_id, std::move(m));
  if (g.state == State::kPreparingRebalance) {
    maybe_complete_join(g, false, out);
  } else {
    prepare_rebalance(g, out);
  }
}

void GroupCoordinator::prepare_rebalance(Group& g, Callbacks* out) {
  bool was_empty = g.state == State::kEmpty;
  for (auto& [id, m] : g.members) {
    if (m.sync_cb) {
      auto cb = std::move(m.sync_cb);
      m.sync_cb = nullptr;
      m.last_seen_ms = now_ms();  // it waited on us until now; give it a session to rejoin
      out->push_back([cb] { cb(SyncResult{gerr::kRebalanceInProgress, {}}); });
    }
  }
  g.state = State::kPreparingRebalance;
  int64_t timeout = 0;
  for (const auto& [id, m] : g.members) timeout = std::max<int64_t>(timeout, m.rebalance_timeout_ms);
  if (was_empty && config_.initial_rebalance_delay_ms > 0)
    timeout = std::min<int64_t>(timeout, config_.initial_rebalance_delay_ms);
  g.rebalance_deadline_ms = now_ms() + timeout;
  if (!(was_empty && config_.initial_rebalance_delay_ms > 0)) maybe_complete_join(g, false, out);
}

void GroupCoordinator::maybe_complete_join(Group& g, bool deadline_passed, Callbacks* out) {
  if (g.state != State::kPreparingRebalance) return;
  bool all_joined = std::all_of(g.members.begin(), g.members.end(), [](const auto& m) { return bool(m.second.join_cb); });
  if (!all_joined && !deadline_passed) return;
  for (auto it = g.members.begin(); it != g.members.end();) {
    it = it->second.join_cb ? std::next(it) : g.members.erase(it);  // did not rejoin in time
  }
  ++g.generation;
  if (g.members.empty()) {
    g.state = State::kEmpty;
    g.protocol.clear();
    g.leader.clear();
    persist_group(g);
    return;
  }
  g.protocol = choose_protocol(g);
  if (!g.members.count(g.leader)) g.leader = g.members.begin()->first;
  g.state = State::kCompletingRebalance;
  int64_t timeout = 0;
  for (auto& [id, m] : g.members) {
    timeout = std::max<int64_t>(timeout, m.rebalance_timeout_ms);
    m.assignment.clear();
    m.last_seen_ms = now_ms();
  }
  g.sync_deadline_ms = now_ms() + timeout;
  for (auto& [id, m] : g.members) {
    auto cb = std::move(m.join_cb);
    m.join_cb = nullptr;
    JoinResult r = join_result_for(g, m);
    out->push_back([cb, r] { cb(r); });
  }
}

void GroupCoordinator::remove_member(Group& g, const std::string& member_id, Callbacks* out) {
  auto it = g.members.find(member_id);
  if (it == g.members.end()) return;
  Member& m = it->second;
  if (m.join_cb) {
    auto cb = std::move(m.join_cb);
    JoinResult r;
    r.error_code = gerr::kUnknownMemberId;
    r.member_id = member_id;
    out->push_back([cb, r] { cb(r); });
  }
  if (m.sync_cb) {
    auto cb = std::move(m.sync_cb);
    out->push_back([cb] { cb(SyncResult{gerr::kUnknownMemberId, {}}); });
  }
  g.members.erase(it);
  if (g.leader == member_id) g.leader = g.members.empty() ? "" : g.members.begin()->first;
  switch (g.state) {
    case State::kStable:
    case State::kCompletingRebalance: prepare_rebalance(g, out); break;
    case State::kPreparingRebalance: maybe_complete_join(g, false, out); break;
    case State::kEmpty: break;
  }
}

void GroupCoordinator::sync(const std::string& group_id, int32_t generation_id, const std::string& member_id,
                            const std::optional<std::string>& /*group_instance_id*/,
                            std::map<std::string, std::string> assignments, std::function<void(SyncResult)> done) {
  Callbacks out;
  {
    std::lock_guard lock(mu_);
    Group* g = find_group(group_id);
    auto reply = [&](int16_t code, std::string assignment) {
      out.push_back([done, code, assignment] { done(SyncResult{code, assignment}); });
    };
    if (!g || !g->members.count(member_id)) {
      reply(gerr::kUnknownMemberId, {});
    } else if (generation_id != g->generation) {
      reply(gerr::kIllegalGeneration, {});
    } else if (g->state == State::kPreparingRebalance) {
      reply(gerr::kRebalanceInProgress, {});
    } else if (g->state == State::kEmpty) {
      reply(gerr::kUnknownMemberId, {});
    } else if (g->state == State::kStable) {
      reply(0, g->members.at(member_id).assignment);
    } else {
      Member& m = g->members.at(member_id);
      m.last_seen_ms = now_ms();
      if (m.sync_cb) {
        // A repeated SyncGroup replaces the parked one; the old request learns so
        // (an unanswered request would close the connection).
        auto old = std::move(m.sync_cb);
        out.push_back([old] { old(SyncResult{gerr::kRebalanceInProgress, {}}); });
      }
      m.sync_cb = std::move(done);
      if (member_id == g->leader) {
        for (auto& [id, member] : g->members) {
          auto a = assignments.find(id);
          member.assignment = a == assignments.end() ? std::string() : std::move(a->second);
        }
        complete_sync(*g, &out);
      }
    }
  }
  for (auto& cb : out) cb();
}

void GroupCoordinator::complete_sync(Group& g, Callbacks* out) {
  g.state = State::kStable;
  for (auto& [id, m] : g.members) {
    if (!m.sync_cb) continue;
    auto cb = std::move(m.sync_cb);
    m.sync_cb = nullptr;
    m.last_seen_ms = now_ms();  // it waited on us until now: its session restarts here
    std::string assignment = m.assignment;
    out->push_back([cb, assignment] { cb(SyncResult{0, assignment}); });
  }
  persist_group(g);
}

int16_t GroupCoordinator::heartbeat(const std::string& group_id, int32_t generation_id, const std::string& member_id,
                                    const std::optional<std::string>& /*group_instance_id*/) {
  std::lock_guard lock(mu_);
  Group* g = find_group(group_id);
  if (!g || !g->members.count(member_id)) return gerr::kUnknownMemberId;
  if (generation_id != g->generation) return gerr::kIllegalGeneration;
  g->members.at(member_id).last_seen_ms = now_ms();
  switch (g->state) {
    case State::kEmpty: return gerr::kUnknownMemberId;
    case State::kPreparingRebalance: return gerr::kRebalanceInProgress;
    default: return 0;
  }
}

int16_t GroupCoordinator::leave(const std::string& group_id, const std::string& member_id,
                                const std::optional<std::string>& group_instance_id) {
  Callbacks out;
  int16_t code = 0;
  {
    std::lock_guard lock(mu_);
    Group* g = find_group(group_id);
    std::string id = member_id;
    if (g && id.empty() && group_instance_id) {
      for (const auto& [mid, m] : g->members)
        if (m.instance_id == group_instance_id) id = mid;
    }
    if (!g || !g->members.count(id)) {
      code = gerr::kUnknownMemberId;
    } else {
      remove_member(*g, id, &out);
    }
  }
  for (auto& cb : out) cb();
  return code;
}

void GroupCoordinator::commit_offsets(const std::string& group_id, int32_t generation_id, const std::string& member_id,
                                      const std::optional<std::string>& /*group_instance_id*/,
                                      std::vector<CommitEntry> entries,
                                      std::function<void(std::vector<int16_t>)> done) {
  std::vector<int16_t> codes(entries.size(), 0);
  Records records;
  {
    std::lock_guard lock(mu_);
    int16_t group_error = 0;
    Group* g = find_group(group_id);
    if (group_id.empty()) {
      group_error = gerr::kInvalidGroupId;
    } else if (generation_id < 0 && member_id.empty()) {
      // A commit from outside any generation (assign() users, admin tools):
      // allowed while no member owns the group.
      if (g && !g->members.empty()) group_error = gerr::kUnknownMemberId;
    } else if (!g || !g->members.count(member_id)) {
      group_error = gerr::kUnknownMemberId;
    } else if (generation_id != g->generation) {
      group_error = gerr::kIllegalGeneration;
    } else if (g->state == State::kCompletingRebalance) {
      group_error = gerr::kRebalanceInProgress;
    } else {
      g->members.at(member_id).last_seen_ms = now_ms();
    }
    if (group_error != 0) {
      std::fill(codes.begin(), codes.end(), group_error);
    } else {
      if (!g) get_or_create_group(group_id);
      int64_t now = now_ms();
      for (size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        if (e.metadata && int64_t(e.metadata->size()) > config_.offset_metadata_bytes_max) {
          codes[i] = gerr::kOffsetMetadataTooLarge;
          continue;
        }
        records.emplace_back(encode_key(OffsetKey{group_id, e.topic, e.partition}),
                             encode_offset_value(OffsetValue{e.offset, e.metadata, now}));
        offsets_[std::make_tuple(group_id, e.topic, e.partition)] = {e.offset, e.metadata};
      }
    }
  }
  if (records.empty()) return done(codes);
  persist(std::move(records), [codes, done](Status s) mutable {
    if (!s.is_ok())
      for (auto& c : codes)
        if (c == 0) c = err::kKafkaStorageError;
    done(codes);
  });
}

std::vector<FetchedOffset> GroupCoordinator::fetch_offsets(
    const std::string& group_id, const std::optional<std::vector<std::pair<std::string, int32_t>>>& wanted) {
  std::lock_guard lock(mu_);
  std::vector<FetchedOffset> out;
  if (wanted) {
    for (const auto& [topic, partition] : *wanted) {
      FetchedOffset f{topic, partition, -1, std::string()};
      auto it = offsets_.find(std::make_tuple(group_id, topic, partition));
      if (it != offsets_.end()) {
        f.offset = it->second.first;
        f.metadata = it->second.second;
      }
      out.push_back(std::move(f));
    }
    return out;
  }
  for (auto it = offsets_.lower_bound(std::make_tuple(group_id, std::string(), INT32_MIN));
       it != offsets_.end() && std::get<0>(it->first) == group_id; ++it) {
    out.push_back(FetchedOffset{std::get<1>(it->first), std::get<2>(it->first), it->second.first, it->second.second});
  }
  return out;
}

GroupDescription GroupCoordinator::describe(const std::string& group_id) {
  std::lock_guard lock(mu_);
  GroupDescription d;
  d.group_id = group_id;
  Group* g = find_group(group_id);
  if (!g) {
    d.state = "Dead";
    return d;
  }
  d.state = state_name(g->state);
  d.protocol_type = g->protocol_type;
  d.protocol = g->protocol;
  d.generation_id = g->generation;
  for (const auto& [id, m] : g->members) {
    const std::string* meta = m.metadata_for(g->protocol);
    d.members.push_back(GroupMemberDescription{id, m.instance_id, m.client_id, m.client_host,
                                               meta ? *meta : std::string(), m.assignment});
  }
  return d;
}

std::vector<ListedGroup> GroupCoordinator::list() {
  std::lock_guard lock(mu_);
  std::vector<ListedGroup> out;
  for (const auto& [id, g] : groups_) out.push_back(ListedGroup{id, g->protocol_type, state_name(g->state)});
  return out;
}

int16_t GroupCoordinator::delete_group(const std::string& group_id) {
  Records records;
  {
    std::lock_guard lock(mu_);
    Group* g = find_group(group_id);
    if (!g) return gerr::kGroupIdNotFound;
    if (!g->members.empty()) return gerr::kNonEmptyGroup;
    for (auto it = offsets_.lower_bound(std::make_tuple(group_id, std::string(), INT32_MIN));
         it != offsets_.end() && std::get<0>(it->first) == group_id;) {
      records.emplace_back(encode_key(OffsetKey{group_id, std::get<1>(it->first), std::get<2>(it->first)}),
                           std::nullopt);
      it = offsets_.erase(it);
    }
    records.emplace_back(encode_key(GroupKey{group_id}), std::nullopt);
    groups_.erase(group_id);
  }
  persist(std::move(records), [](Status) {});
  return 0;
}

void GroupCoordinator::forget_topic(const std::string& topic) {
  Records records;
  {
    std::lock_guard lock(mu_);
    for (auto it = offsets_.begin(); it != offsets_.end();) {
      if (std::get<1>(it->first) == topic) {
        records.emplace_back(encode_key(OffsetKey{std::get<0>(it->first), topic, std::get<2>(it->first)}),
                             std::nullopt);
        it = offsets_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (!records.empty()) persist(std::move(records), [](Status) {});
}

void GroupCoordinator::tick() {
  Callbacks out;
  {
    std::lock_guard lock(mu_);
    int64_t now = now_ms();
    for (auto& [gid, gp] : groups_) {
      Group& g = *gp;
      for (auto it = g.pending.begin(); it != g.pending.end();) it = it->second < now ? g.pending.erase(it) : std::next(it);
      std::vector<std::string> expired;
      for (const auto& [id, m] : g.members) {
        // A member parked in JoinGroup or SyncGroup waits on us and cannot
        // heartbeat (Kafka keeps it alive too); the rebalance and sync
        // deadlines cover it.
        if (!m.join_cb && !m.sync_cb && now - m.last_seen_ms > m.session_timeout_ms) expired.push_back(id);
      }
      for (const auto& id : expired) {
        log_info("group {}: member {} timed out", gid, id);
        remove_member(g, id, &out);
      }
      if (g.state == State::kPreparingRebalance && now >= g.rebalance_deadline_ms) maybe_complete_join(g, true, &out);
      if (g.state == State::kCompletingRebalance && now >= g.sync_deadline_ms) {
        // The leader never sent the assignment: start over without the silent members.
        std::vector<std::string> silent;
        for (const auto& [id, m] : g.members)
          if (!m.sync_cb) silent.push_back(id);
        for (const auto& id : silent) remove_member(g, id, &out);
        if (g.state == State::kCompletingRebalance) prepare_rebalance(g, &out);
      }
    }
  }
  for (auto& cb : out) cb();
}

GroupValue GroupCoordinator::group_value(const Group& g) {
  GroupValue v;
  v.protocol_type = g.protocol_type;
  v.generation = g.generation;
  v.protocol = g.protocol;
  v.leader = g.leader;
  if (g.state == State::kStable) {
    for (const auto& [id, m] : g.members) {
      const std::string* meta = m.metadata_for(g.protocol);
      v.members.push_back(StoredMember{id, m.instance_id, m.client_id, m.client_host, m.session_timeout_ms,
                                       m.rebalance_timeout_ms, meta ? *meta : std::string(), m.assignment});
    }
  }
  return v;
}

void GroupCoordinator::persist_group(const Group& g) {
  GroupValue v = group_value(g);
  // Called under mu_: append now (cheap), do not wait for durability.
  Records records;
  records.emplace_back(encode_key(GroupKey{g.id}), encode_group_value(v));
  auto appended = append_records_locked(records);
  if (!appended.is_ok()) log_error("group {}: persisting state: {}", g.id, appended.status().to_string());
  maybe_compact_locked();
}

Result<int64_t> GroupCoordinator::append_records_locked(const Records& records) {
  int64_t end = partition_->high_watermark();
  size_t i = 0;
  while (i < records.size()) {
    log::BatchBuilder builder(now_ms());
    while (i < records.size() && (builder.record_count() == 0 || builder.size_bytes() < kPersistBatchBytesMax)) {
      const auto& [k, v] = records[i++];
      builder.add(k, v ? std::optional<std::string_view>(*v) : std::nullopt, now_ms());
    }
    std::string batch = builder.finish();
    EVERT_ASSIGN_OR_RETURN(auto appended, partition_->append(MutableByteSpan(reinterpret_cast<uint8_t*>(batch.data()),
                                                                             batch.size())));
    end = appended.last_offset + 1;
  }
  return end;
}

void GroupCoordinator::persist(Records records, std::function<void(Status)> done) {
  Result<int64_t> end = int64_t(-1);
  {
    std::lock_guard lock(mu_);
    end = append_records_locked(records);
    if (end.is_ok()) maybe_compact_locked();
  }
  if (!end.is_ok()) return done(end.status());
  partition_->sync_async(*end, std::move(done));
}

void GroupCoordinator::maybe_compact_locked() {
  if (compacting_ || int64_t(partition_->size_bytes()) < config_.offsets_topic_compact_bytes) return;
  compacting_ = true;
  // Everything current, written after a roll, makes every older segment redundant.
  Status s = partition_->roll();
  int64_t snapshot_start = partition_->high_watermark();
  Records records;
  for (const auto& [id, v] : offsets_)
    records.emplace_back(encode_key(OffsetKey{std::get<0>(id), std::get<1>(id), std::get<2>(id)}),
                         encode_offset_value(OffsetValue{v.first, v.second, now_ms()}));
  for (const auto& [gid, g] : groups_) records.emplace_back(encode_key(GroupKey{gid}), encode_group_value(group_value(*g)));
  if (s.is_ok()) s = append_records_locked(records).status();
  if (s.is_ok()) s = partition_->sync_all();
  if (s.is_ok()) {
    auto deleted = partition_->delete_segments_before(snapshot_start);
    if (deleted.is_ok()) {
      log_info("{}: snapshot of {} record(s) at offset {}; {} old segment(s) deleted", kOffsetsTopic, records.size(),
               snapshot_start, *deleted);
    } else {
      s = deleted.status();
    }
  }
  if (!s.is_ok()) log_error("{}: snapshot failed: {}", kOffsetsTopic, s.to_string());
  compacting_ = false;
}

}  // namespace evert::kafka
