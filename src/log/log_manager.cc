#include "log/log_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "base/logging.h"
#include "log/file_names.h"

namespace evert::log {

Result<std::unique_ptr<LogManager>> LogManager::open(const LogOptions& options, OpenReport* report) {
  int64_t start_ns = options.clock->monotonic_ns();
  std::unique_ptr<LogManager> m(new LogManager(options));
  // Until open succeeds, destroying `m` must not close() it: that would write
  // the clean-shutdown marker into a directory we failed to open, possibly
  // one another process holds locked, and its next recovery would be skipped.
  m->closed_ = true;
  m->sync_pool_ = std::make_unique<ThreadPool>(options.sync_threads);
  m->append_listener_ = std::make_shared<std::array<AppendListener, 2>>();
  EVERT_RETURN_IF_ERROR(io::create_dirs(m->env(), options.data_dir));
  EVERT_ASSIGN_OR_RETURN(m->lock_, m->env().lock_file(lock_file_path(options.data_dir)));
  report->new_directory = !m->env().dir_exists(topics_dir(options.data_dir));
  EVERT_RETURN_IF_ERROR(io::create_dirs(m->env(), topics_dir(options.data_dir)));
  std::string marker = clean_shutdown_path(options.data_dir);
  bool clean = m->env().file_exists(marker);
  report->clean_shutdown = clean;
  EVERT_RETURN_IF_ERROR(m->load(report, clean));
  // From here on a crash is an unclean shutdown.
  if (clean) {
    EVERT_RETURN_IF_ERROR(m->env().remove_file(marker));
    EVERT_RETURN_IF_ERROR(m->env().sync_dir(options.data_dir));
  }
  report->elapsed_ms = (options.clock->monotonic_ns() - start_ns) / 1'000'000;
  m->closed_ = false;
  if (options.background) m->bg_thread_ = std::thread([raw = m.get()] { raw->background_loop(); });
  return m;
}

LogManager::~LogManager() {
  Status s = close();
  if (!s.is_ok()) log_error("closing the log: {}", s.to_string());
}

Status LogManager::load(OpenReport* report, bool clean) {
  EVERT_ASSIGN_OR_RETURN(auto names, env().list_dir(topics_dir(options_.data_dir)));
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (!is_valid_topic_name(name) || !env().dir_exists(topic_dir(options_.data_dir, name))) continue;
    if (!env().file_exists(topic_meta_path(options_.data_dir, name))) {
      // Creation or deletion was cut short: the topic never existed, or is gone.
      report->problems.push_back(fmt::format("removed incomplete topic directory {}", name));
      EVERT_RETURN_IF_ERROR(io::remove_tree(env(), topic_dir(options_.data_dir, name)));
      continue;
    }
    EVERT_ASSIGN_OR_RETURN(auto topic, load_topic(name, clean, report));
    topics_[name] = std::move(topic);
    ++report->topics;
  }
  return Status::ok();
}

Result<std::shared_ptr<LogManager::Topic>> LogManager::load_topic(const std::string& name, bool clean,
                                                                  OpenReport* report) {
  EVERT_ASSIGN_OR_RETURN(std::string text, io::read_whole_file(env(), topic_meta_path(options_.data_dir, name)));
  auto meta = decode_topic_meta(text);
  if (!meta.is_ok()) return meta.status().with_context("topic " + name);
  auto config = apply_config_overrides(options_.defaults, meta->overrides);
  if (!config.is_ok()) return config.status().with_context("topic " + name);
  auto topic = std::make_shared<Topic>();
  topic->name = name;
  topic->meta = *meta;
  topic->config = *config;
  // Partition directories past the count are from an add_partitions that did not finish.
  EVERT_ASSIGN_OR_RETURN(auto entries, env().list_dir(topic_dir(options_.data_dir, name)));
  for (const auto& e : entries) {
    auto p = parse_partition_dir_name(e);
    if (p && *p >= meta->partitions) {
      report->problems.push_back(fmt::format("removed partition {} of {} left by an unfinished change", *p, name));
      EVERT_RETURN_IF_ERROR(io::remove_tree(env(), partition_dir(options_.data_dir, name, *p)));
    }
  }
  for (int32_t i = 0; i < meta->partitions; ++i) {
    EVERT_ASSIGN_OR_RETURN(auto partition, open_partition(name, i, topic->config, clean, report));
    topic->partitions.push_back(std::move(partition));
  }
  return topic;
}

Result<std::shared_ptr<Partition>> LogManager::open_partition(const std::string& topic, int32_t index,
                                                              const TopicConfig& config, bool clean,
                                                              OpenReport* report) {
  PartitionOptions po;
  po.config = config;
  po.flush = options_.flush;
  po.clock = options_.clock;
  po.recover_active_segment = !clean;
  po.verify_all_segments = options_.verify_all_on_open;
  po.sync_executor = [pool = sync_pool_.get()](std::function<void()> task) { pool->submit(std::move(task)); };
  po.on_append = [listener = append_listener_, topic, index](int64_t hw) {
    for (const auto& l : *listener) {
      if (l) l(topic, index, hw);
    }
  };
  PartitionRecovery recovery;
  auto p = Partition::open(env(), partition_dir(options_.data_dir, topic, index), po, &recovery);
  if (!p.is_ok()) return p.status().with_context(fmt::format("partition {}-{}", topic, index));
  for (const auto& r : recovery.segments) {
    if (r.damage) {
      std::string what = fmt::format("{}: {} at byte {}; {} bytes cut", r.file, r.damage->reason, r.damage->position,
                                     r.truncated_bytes);
      if (r.split_base_offset) what += fmt::format(", valid data after it kept from offset {}", *r.split_base_offset);
      report->problems.push_back(what);
    } else if (r.index_rebuilt) {
      report->problems.push_back(fmt::format("{}: index rebuilt", r.file));
    }
  }
  ++report->partitions;
  report->segments += int(p.value()->segment_count());
  report->bytes += p.value()->size_bytes();
  report->records += p.value()->high_watermark() - p.value()->log_start_offset();
  return std::shared_ptr<Partition>(std::move(p).value());
}

Status LogManager::write_meta(const std::string& name, const TopicMeta& meta) {
  std::string text = encode_topic_meta(meta);
  return io::write_file_atomically(env(), topic_meta_path(options_.data_dir, name), as_bytes(text));
}

Result<TopicInfo> LogManager::create_topic(const std::string& name, int32_t partitions,
                                           const ConfigOverrides& overrides) {
  if (!is_valid_topic_name(name))
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("invalid topic name '{}': use 1-249 of [a-zA-Z0-9._-], not '.' or '..'", name));
  if (partitions < 1 || partitions > kPartitionsMax)
    return error(ErrorCode::kInvalidArgument, fmt::format("partition count {} outside [1, {}]", partitions, kPartitionsMax));
  EVERT_ASSIGN_OR_RETURN(TopicConfig config, apply_config_overrides(options_.defaults, overrides));
  std::lock_guard admin(admin_mu_);
  if (describe_topic(name)) return error(ErrorCode::kAlreadyExists, fmt::format("topic '{}' already exists", name));
  std::string dir = topic_dir(options_.data_dir, name);
  EVERT_RETURN_IF_ERROR(io::remove_tree(env(), dir));  // leftovers of an interrupted attempt
  EVERT_RETURN_IF_ERROR(io::create_dirs(env(), dir));
  EVERT_RETURN_IF_ERROR(env().sync_dir(topics_dir(options_.data_dir)));
  auto topic = std::make_shared<Topic>();
  topic->name = name;
  topic->meta.partitions = partitions;
  topic->meta.overrides = overrides;
  topic->config = config;
  OpenReport ignored;
  for (int32_t i = 0; i < partitions; ++i) {
    EVERT_ASSIGN_OR_RETURN(auto p, open_partition(name, i, config, true, &ignored));
    topic->partitions.push_back(std::move(p));
  }
  EVERT_RETURN_IF_ERROR(env().sync_dir(dir));
  // The meta file is written last: its presence is what makes the topic exist.
  EVERT_RETURN_IF_ERROR(write_meta(name, topic->meta));
  {
    std::unique_lock lock(topics_mu_);
    topics_[name] = topic;
  }
  log_info("created topic {} with {} partition(s)", name, partitions);
  return TopicInfo{name, partitions, overrides, config};
}

Status LogManager::delete_topic(const std::string& name) {
  std::lock_guard admin(admin_mu_);
  std::shared_ptr<Topic> topic;
  {
    std::unique_lock lock(topics_mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return error(ErrorCode::kNotFound, fmt::format("topic '{}' does not exist", name));
    topic = it->second;
    topics_.erase(it);
  }
  // Without its meta file the topic is gone, even if a crash interrupts the rest.
  EVERT_RETURN_IF_ERROR(env().remove_file(topic_meta_path(options_.data_dir, name)));
  EVERT_RETURN_IF_ERROR(env().sync_dir(topic_dir(options_.data_dir, name)));
  for (auto& p : topic->partitions) EVERT_RETURN_IF_ERROR(p->remove_all());
  EVERT_RETURN_IF_ERROR(io::remove_tree(env(), topic_dir(options_.data_dir, name)));
  EVERT_RETURN_IF_ERROR(env().sync_dir(topics_dir(options_.data_dir)));
  log_info("deleted topic {}", name);
  return Status::ok();
}

Status LogManager::add_partitions(const std::string& name, int32_t total) {
  std::lock_guard admin(admin_mu_);
  std::shared_ptr<Topic> topic;
  {
    std::shared_lock lock(topics_mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return error(ErrorCode::kNotFound, fmt::format("topic '{}' does not exist", name));
    topic = it->second;
  }
  int32_t current = topic->meta.partitions;
  if (total <= current)
    return error(ErrorCode::kInvalidArgument,
                 fmt::format("topic '{}' has {} partitions; the new count must be larger, not {}", name, current, total));
  if (total > kPartitionsMax)
    return error(ErrorCode::kInvalidArgument, fmt::format("partition count {} above {}", total, kPartitionsMax));
  std::vector<std::shared_ptr<Partition>> added;
  OpenReport ignored;
  for (int32_t i = current; i < total; ++i) {
    EVERT_RETURN_IF_ERROR(io::remove_tree(env(), partition_dir(options_.data_dir, name, i)));
    EVERT_ASSIGN_OR_RETURN(auto p, open_partition(name, i, topic->config, true, &ignored));
    added.push_back(std::move(p));
  }
  EVERT_RETURN_IF_ERROR(env().sync_dir(topic_dir(options_.data_dir, name)));
  TopicMeta meta = topic->meta;
  meta.partitions = total;
  EVERT_RETURN_IF_ERROR(write_meta(name, meta));
  auto updated = std::make_shared<Topic>(*topic);
  updated->meta = meta;
  for (auto& p : added) updated->partitions.push_back(std::move(p));
  std::unique_lock lock(topics_mu_);
  topics_[name] = updated;
  return Status::ok();
}

Status LogManager::alter_config(const std::string& name, const ConfigOverrides& overrides, bool incremental) {
  std::lock_guard admin(admin_mu_);
  std::shared_ptr<Topic> topic;
  {
    std::shared_lock lock(topics_mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return error(ErrorCode::kNotFound, fmt::format("topic '{}' does not exist", name));
    topic = it->second;
  }
  ConfigOverrides merged = incremental ? topic->meta.overrides : ConfigOverrides{};
  for (const auto& [k, v] : overrides) {
    if (incremental && v.empty()) {
      merged.erase(k);
    } else {
      merged[k] = v;
    }
  }
  EVERT_ASSIGN_OR_RETURN(TopicConfig config, apply_config_overrides(options_.defaults, merged));
  TopicMeta meta = topic->meta;
  meta.overrides = merged;
  EVERT_RETURN_IF_ERROR(write_meta(name, meta));
  auto updated = std::make_shared<Topic>(*topic);
  updated->meta = meta;
  updated->config = config;
  for (auto& p : updated->partitions) p->set_config(config);
  std::unique_lock lock(topics_mu_);
  topics_[name] = updated;
  return Status::ok();
}

std::vector<std::string> LogManager::topic_names() const {
  std::shared_lock lock(topics_mu_);
  std::vector<std::string> names;
  for (const auto& [name, t] : topics_) names.push_back(name);
  return names;
}

std::optional<TopicInfo> LogManager::describe_topic(const std::string& name) const {
  std::shared_lock lock(topics_mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) return std::nullopt;
  const Topic& t = *it->second;
  return TopicInfo{t.name, t.meta.partitions, t.meta.overrides, t.config};
}

std::shared_ptr<Partition> LogManager::partition(const std::string& topic, int32_t index) const {
  std::shared_lock lock(topics_mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end() || index < 0 || size_t(index) >= it->second->partitions.size()) return nullptr;
  return it->second->partitions[size_t(index)];
}

std::vector<std::shared_ptr<Partition>> LogManager::all_partitions() const {
  std::shared_lock lock(topics_mu_);
  std::vector<std::shared_ptr<Partition>> all;
  for (const auto& [name, t] : topics_) all.insert(all.end(), t->partitions.begin(), t->partitions.end());
  return all;
}

void LogManager::set_append_listener(int slot, AppendListener listener) {
  (*append_listener_)[size_t(slot)] = std::move(listener);
}

Result<int> LogManager::enforce_retention() {
  int deleted = 0;
  for (const auto& p : all_partitions()) {
    EVERT_ASSIGN_OR_RETURN(int n, p->enforce_retention());
    deleted += n;
  }
  return deleted;
}

Status LogManager::flush_all() {
  Status first;
  for (const auto& p : all_partitions()) {
    if (p->durable_offset() >= p->high_watermark()) continue;
    Status s = p->sync_all();
    if (!s.is_ok() && first.is_ok()) first = s;
  }
  return first;
}

void LogManager::background_loop() {
  using namespace std::chrono;
  int64_t flush_every_ms = options_.flush.kind == FlushPolicy::Kind::kInterval ? options_.flush.interval_ms : 1000;
  int64_t last_retention_ns = options_.clock->monotonic_ns();
  std::unique_lock lock(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(lock, milliseconds(flush_every_ms));
    if (stopping_) break;
    lock.unlock();
    if (options_.flush.kind == FlushPolicy::Kind::kInterval) {
      Status s = flush_all();
      if (!s.is_ok()) log_error("interval flush: {}", s.to_string());
    }
    int64_t now_ns = options_.clock->monotonic_ns();
    if ((now_ns - last_retention_ns) / 1'000'000 >= options_.retention_check_interval_ms) {
      last_retention_ns = now_ns;
      auto r = enforce_retention();
      if (!r.is_ok()) log_error("retention: {}", r.status().to_string());
    }
    lock.lock();
  }
}

Status LogManager::close() {
  {
    std::lock_guard lock(bg_mu_);
    if (closed_) return Status::ok();
    closed_ = true;
    stopping_ = true;
  }
  bg_cv_.notify_all();
  if (bg_thread_.joinable()) bg_thread_.join();
  if (sync_pool_) sync_pool_->shutdown();  // pending sync_async waiters complete first
  Status s = flush_all();
  for (const auto& p : all_partitions()) {
    Status ps = p->write_producer_snapshot();
    if (!ps.is_ok() && s.is_ok()) s = ps;
  }
  if (!s.is_ok()) return s;  // not clean: the next open validates
  std::string marker = clean_shutdown_path(options_.data_dir);
  {
    EVERT_ASSIGN_OR_RETURN(auto f, env().open_file(marker, io::OpenMode::kCreateReadWrite));
    EVERT_RETURN_IF_ERROR(f->sync_data());
  }
  EVERT_RETURN_IF_ERROR(env().sync_dir(options_.data_dir));
  {
    std::unique_lock lock(topics_mu_);
    topics_.clear();
  }
  lock_.reset();
  return Status::ok();
}

}  // namespace evert::log
