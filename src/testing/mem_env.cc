#include "testing/mem_env.h"

#include <algorithm>

namespace evert::testing {

struct MemEnv::Node {
  std::mutex mu;
  std::string data;
  std::string synced;
};

namespace {

std::string parent_of(const std::string& path) { return io::parent_dir(path); }

}  // namespace

class MemFile final : public io::File {
 public:
  MemFile(MemEnv* env, std::string path, std::shared_ptr<MemEnv::Node> node, bool writable)
      : env_(env), path_(std::move(path)), node_(std::move(node)), writable_(writable) {}

  Result<size_t> read_at(uint64_t position, MutableByteSpan out) const override {
    std::lock_guard lock(node_->mu);
    if (position >= node_->data.size()) return size_t(0);
    size_t n = std::min<size_t>(out.size(), node_->data.size() - position);
    std::copy_n(node_->data.data() + position, n, out.data());
    return n;
  }

  Status write_at(uint64_t position, ByteSpan data) override {
    if (!writable_) return error(ErrorCode::kIoError, path_ + ": opened read-only");
    size_t allowed = data.size();
    Status budget = env_->charge_write(data.size(), &allowed);
    std::lock_guard lock(node_->mu);
    if (node_->data.size() < position + allowed) node_->data.resize(position + allowed, '\0');
    std::copy_n(data.data(), allowed, node_->data.data() + position);
    return budget;
  }

  Status sync_data() override {
    if (env_->syncs_fail()) return error(ErrorCode::kIoError, path_ + ": injected fsync failure");
    env_->count_sync();
    std::lock_guard lock(node_->mu);
    node_->synced = node_->data;
    return Status::ok();
  }

  Status truncate(uint64_t size_bytes) override {
    if (!writable_) return error(ErrorCode::kIoError, path_ + ": opened read-only");
    std::lock_guard lock(node_->mu);
    node_->data.resize(size_bytes, '\0');
    return Status::ok();
  }

  Result<uint64_t> size_bytes() const override {
    std::lock_guard lock(node_->mu);
    return uint64_t(node_->data.size());
  }

  const std::string& path() const override { return path_; }

 private:
  MemEnv* env_;
  std::string path_;
  std::shared_ptr<MemEnv::Node> node_;
  bool writable_;
};

class MemLock final : public io::FileLock {
 public:
  MemLock(std::mutex* mu, std::set<std::string>* locks, std::string path)
      : mu_(mu), locks_(locks), path_(std::move(path)) {}
  ~MemLock() override {
    std::lock_guard lock(*mu_);
    locks_->erase(path_);
  }

 private:
  std::mutex* mu_;
  std::set<std::string>* locks_;
  std::string path_;
};

MemEnv::MemEnv() {
  dirs_.insert("/");
  durable_dirs_.insert("/");
}
MemEnv::~MemEnv() = default;

Result<std::unique_ptr<io::File>> MemEnv::open_file(const std::string& path, io::OpenMode mode) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  bool exists = it != files_.end();
  if ((mode == io::OpenMode::kReadOnly || mode == io::OpenMode::kReadWrite) && !exists)
    return error(ErrorCode::kNotFound, "open " + path + ": no such file");
  if (mode == io::OpenMode::kCreateNew && exists) return error(ErrorCode::kAlreadyExists, "open " + path + ": exists");
  if (!exists) {
    if (!dirs_.count(parent_of(path))) return error(ErrorCode::kNotFound, "open " + path + ": no such directory");
    it = files_.emplace(path, std::make_shared<Node>()).first;
  }
  return std::unique_ptr<io::File>(new MemFile(this, path, it->second, mode != io::OpenMode::kReadOnly));
}

Status MemEnv::create_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!dirs_.count(parent_of(path))) return error(ErrorCode::kNotFound, "mkdir " + path + ": no parent");
  dirs_.insert(path);
  return Status::ok();
}

Result<std::vector<std::string>> MemEnv::list_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!dirs_.count(path)) return error(ErrorCode::kNotFound, "opendir " + path + ": no such directory");
  std::vector<std::string> names;
  for (const auto& [p, node] : files_)
    if (parent_of(p) == path) names.push_back(p.substr(p.find_last_of('/') + 1));
  for (const auto& d : dirs_)
    if (d != path && parent_of(d) == path) names.push_back(d.substr(d.find_last_of('/') + 1));
  return names;
}

Status MemEnv::rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  auto it = files_.find(from);
  if (it == files_.end()) return error(ErrorCode::kNotFound, "rename " + from + ": no such file");
  files_[to] = it->second;
  files_.erase(from);
  return Status::ok();
}

Status MemEnv::remove_file(const std::string& path) {
  std::lock_guard lock(mu_);
  if (files_.erase(path) == 0) return error(ErrorCode::kNotFound, "unlink " + path + ": no such file");
  return Status::ok();
}

Status MemEnv::remove_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  for (const auto& [p, node] : files_)
    if (parent_of(p) == path) return error(ErrorCode::kIoError, "rmdir " + path + ": not empty");
  for (const auto& d : dirs_)
    if (d != path && parent_of(d) == path) return error(ErrorCode::kIoError, "rmdir " + path + ": not empty");
  if (dirs_.erase(path) == 0) return error(ErrorCode::kNotFound, "rmdir " + path + ": no such directory");
  return Status::ok();
}

Status MemEnv::sync_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (fail_syncs_) return error(ErrorCode::kIoError, path + ": injected fsync failure");
  if (!dirs_.count(path)) return error(ErrorCode::kNotFound, "sync dir " + path + ": no such directory");
  ++syncs_;
  for (auto it = durable_files_.begin(); it != durable_files_.end();) {
    it = parent_of(it->first) == path ? durable_files_.erase(it) : std::next(it);
  }
  for (const auto& [p, node] : files_)
    if (parent_of(p) == path) durable_files_[p] = node;
  for (auto it = durable_dirs_.begin(); it != durable_dirs_.end();) {
    it = (*it != path && parent_of(*it) == path) ? durable_dirs_.erase(it) : std::next(it);
  }
  for (const auto& d : dirs_)
    if (d != path && parent_of(d) == path) durable_dirs_.insert(d);
  return Status::ok();
}

bool MemEnv::file_exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return files_.count(path) > 0;
}

bool MemEnv::dir_exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return dirs_.count(path) > 0;
}

Result<uint64_t> MemEnv::file_size(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return error(ErrorCode::kNotFound, "stat " + path);
  std::lock_guard nlock(it->second->mu);
  return uint64_t(it->second->data.size());
}

Result<std::unique_ptr<io::FileLock>> MemEnv::lock_file(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!locks_.insert(path).second) return error(ErrorCode::kBusy, path + " is locked");
  return std::unique_ptr<io::FileLock>(new MemLock(&mu_, &locks_, path));
}

void MemEnv::crash(uint64_t seed) {
  std::lock_guard lock(mu_);
  std::mt19937_64 rng(seed);
  files_ = durable_files_;
  dirs_ = durable_dirs_;
  for (auto& [path, node] : files_) {
    std::lock_guard nlock(node->mu);
    std::string kept = node->synced;
    bool appended = node->data.size() > kept.size() && node->data.compare(0, kept.size(), kept) == 0;
    if (seed != 0 && appended) {
      size_t extra = size_t(rng() % (node->data.size() - kept.size() + 1));
      kept = node->data.substr(0, kept.size() + extra);
    }
    node->data = kept;
    node->synced = kept;
  }
  locks_.clear();
}

void MemEnv::set_write_budget(int64_t bytes) {
  std::lock_guard lock(mu_);
  write_budget_ = bytes;
}

void MemEnv::set_fail_syncs(bool fail) {
  std::lock_guard lock(mu_);
  fail_syncs_ = fail;
}

Status MemEnv::charge_write(size_t bytes, size_t* allowed) {
  std::lock_guard lock(mu_);
  *allowed = bytes;
  if (write_budget_ < 0) return Status::ok();
  if (int64_t(bytes) <= write_budget_) {
    write_budget_ -= int64_t(bytes);
    return Status::ok();
  }
  *allowed = size_t(write_budget_);
  write_budget_ = 0;
  return error(ErrorCode::kNoSpace, "injected: no space left on device");
}

bool MemEnv::syncs_fail() const {
  std::lock_guard lock(mu_);
  return fail_syncs_;
}

void MemEnv::count_sync() {
  std::lock_guard lock(mu_);
  ++syncs_;
}

uint64_t MemEnv::sync_count() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

Status MemEnv::flip_bit(const std::string& path, uint64_t byte, int bit) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return error(ErrorCode::kNotFound, path);
  std::lock_guard nlock(it->second->mu);
  if (byte >= it->second->data.size()) return error(ErrorCode::kOutOfRange, "flip past the end of " + path);
  it->second->data[byte] = char(it->second->data[byte] ^ (1 << bit));
  it->second->synced = it->second->data;
  return Status::ok();
}

Status MemEnv::set_contents(const std::string& path, const std::string& data) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return error(ErrorCode::kNotFound, path);
  std::lock_guard nlock(it->second->mu);
  it->second->data = data;
  it->second->synced = data;
  return Status::ok();
}

Result<std::string> MemEnv::contents(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return error(ErrorCode::kNotFound, path);
  std::lock_guard nlock(it->second->mu);
  return it->second->data;
}

}  // namespace evert::testing
