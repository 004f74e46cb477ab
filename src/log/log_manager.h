// LogManager: the registry of topics and partitions in one data directory,
// and the owner of the background work (interval flushes, retention).
//
// Threading: every method is thread-safe. Topic lookups take a shared lock;
// create/delete/alter take it exclusively.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/thread_pool.h"
#include "base/status.h"
#include "io/env.h"
#include "log/partition.h"
#include "log/topic_config.h"
#include "log/topic_meta.h"

namespace evert::log {

struct LogOptions {
  std::string data_dir = "./evert-data";
  io::Env* env = &io::Env::posix();
  Clock* clock = &Clock::system();
  TopicConfig defaults;
  FlushPolicy flush;
  // Validate every batch of every segment on open, not just after an
  // unclean shutdown's active segments.
  bool verify_all_on_open = false;
  // Run interval flushes and retention checks on a background thread.
  bool background = true;
  int64_t retention_check_interval_ms = 5 * 60 * 1000;
  // Threads that run fdatasync for Partition::sync_async (acks=all).
  int sync_threads = 4;
};

struct OpenReport {
  bool new_directory = false;  // nothing was there to recover
  bool clean_shutdown = false;
  int topics = 0;
  int partitions = 0;
  int segments = 0;
  uint64_t bytes = 0;
  int64_t records = 0;  // sum of (high watermark - log start) over partitions
  std::vector<std::string> problems;  // one line per repair made
  int64_t elapsed_ms = 0;
};

struct TopicInfo {
  std::string name;
  int32_t partitions = 0;
  ConfigOverrides overrides;
  TopicConfig config;
};

class LogManager {
 public:
  static Result<std::unique_ptr<LogManager>> open(const LogOptions& options, OpenReport* report);
  ~LogManager();

  // kAlreadyExists, kInvalidArgument (bad name, partitions, or config).
  Result<TopicInfo> create_topic(const std::string& name, int32_t partitions, const ConfigOverrides& overrides);
  Status delete_topic(const std::string& name);
  // Grows a topic to `total` partitions (never shrinks: kInvalidArgument).
  Status add_partitions(const std::string& name, int32_t total);
  // Replaces (incremental = false) or merges (true) the overrides; an empty
  // value under merge removes that override.
  Status alter_config(const std::string& name, const ConfigOverrides& overrides, bool incremental);

  std::vector<std::string> topic_names() const;
  std::optional<TopicInfo> describe_topic(const std::string& name) const;
  // nullptr when the topic or partition does not exist.
  std::shared_ptr<Partition> partition(const std::string& topic, int32_t index) const;

  // Runs retention on every partition now; returns segments deleted.
  Result<int> enforce_retention();
  // Syncs every partition with unflushed data.
  Status flush_all();
  // Stops background work, syncs everything, marks the shutdown clean.
  Status close();

  const LogOptions& options() const { return options_; }

  // Called after every append to any partition (on the appending thread).
  // Set once, before traffic starts.
  using AppendListener = std::function<void(const std::string& topic, int32_t partition, int64_t high_watermark)>;
  // Two independent listeners: the broker's fetch waiters (slot 0, the
  // default) and the view engine (slot 1). Set before traffic starts.
  void set_append_listener(AppendListener listener) { set_append_listener(0, std::move(listener)); }
  void set_append_listener(int slot, AppendListener listener);

 private:
  struct Topic {
    std::string name;
    TopicMeta meta;
    TopicConfig config;
    std::vector<std::shared_ptr<Partition>> partitions;
  };

  explicit LogManager(const LogOptions& options) : options_(options) {}
  Status load(OpenReport* report, bool clean);
  Result<std::shared_ptr<Topic>> load_topic(const std::string& name, bool clean, OpenReport* report);
  Result<std::shared_ptr<Partition>> open_partition(const std::string& topic, int32_t index,
                                                    const TopicConfig& config, bool clean, OpenReport* report);
  Status write_meta(const std::string& name, const TopicMeta& meta);
  std::vector<std::shared_ptr<Partition>> all_partitions() const;
  void background_loop();

  LogOptions options_;
  io::Env& env() const { return *options_.env; }
  std::unique_ptr<ThreadPool> sync_pool_;
  std::shared_ptr<std::array<AppendListener, 2>> append_listener_;  // shared with partitions' hooks
  std::unique_ptr<io::FileLock> lock_;

  mutable std::shared_mutex topics_mu_;  // guards topics_
  std::map<std::string, std::shared_ptr<Topic>> topics_;
  std::mutex admin_mu_;  // serializes create/delete/alter (file work outside topics_mu_)

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;
  bool closed_ = false;
  std::thread bg_thread_;
};

}  // namespace evert::log
