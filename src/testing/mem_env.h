// MemEnv: an in-memory file system for tests that models durability.
//
// Each file remembers the bytes it had at its last sync_data(); each
// directory remembers its entries as of its last sync_dir(). crash() throws
// away everything not made durable, the way a power cut would (optionally
// keeping a random prefix of each file's unsynced appended tail, as a torn
// write). Faults can be injected: a disk that fills after N more bytes, and
// failing fsyncs. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>

#include "io/env.h"

namespace evert::testing {

class MemEnv final : public io::Env {
 public:
  struct Node;

  MemEnv();
  ~MemEnv() override;

  Result<std::unique_ptr<io::File>> open_file(const std::string& path, io::OpenMode mode) override;
  Status create_dir(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove_file(const std::string& path) override;
  Status remove_dir(const std::string& path) override;
  Status sync_dir(const std::string& path) override;
  bool file_exists(const std::string& path) override;
  bool dir_exists(const std::string& path) override;
  Result<uint64_t> file_size(const std::string& path) override;
  Result<std::unique_ptr<io::FileLock>> lock_file(const std::string& path) override;

  // Simulates a power cut: unsynced data and directory entries vanish. With
  // `seed` != 0, each file keeps a random prefix of its unsynced tail.
  // Files opened before the crash must not be used afterwards.
  void crash(uint64_t seed = 0);
  // Writes fail with kNoSpace once `bytes` more bytes have been written
  // (the failing write stores the part that fits). -1 = unlimited.
  void set_write_budget(int64_t bytes);
  void set_fail_syncs(bool fail);
  // Test helpers acting directly on contents (durable at once).
  Status flip_bit(const std::string& path, uint64_t byte, int bit);
  Status set_contents(const std::string& path, const std::string& data);
  Result<std::string> contents(const std::string& path);
  uint64_t sync_count() const;

 private:
  friend class MemFile;
  Status charge_write(size_t bytes, size_t* allowed);
  bool syncs_fail() const;
  void count_sync();

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Node>> files_;
  std::set<std::string> dirs_;
  std::map<std::string, std::shared_ptr<Node>> durable_files_;
  std::set<std::string> durable_dirs_;
  std::set<std::string> locks_;
  int64_t write_budget_ = -1;
  bool fail_syncs_ = false;
  uint64_t syncs_ = 0;
};

}  // namespace evert::testing
