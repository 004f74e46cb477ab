// The only door to the file system (STYLE.md habit 12).
//
// Everything in evert that touches files goes through Env and File, so tests
// can substitute testing::MemEnv: an in-memory file system that remembers
// what was synced, drops the rest on a simulated crash, and injects errors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace evert::io {

// A random-access file. Concurrent read_at calls are safe with each other and
// with one writer; writes must be serialized by the caller.
class File {
 public:
  virtual ~File() = default;

  // Reads up to out.size() bytes at `position`; fewer only at end of file.
  virtual Result<size_t> read_at(uint64_t position, MutableByteSpan out) const = 0;
  // Writes all of `data` at `position` or fails.
  virtual Status write_at(uint64_t position, ByteSpan data) = 0;
  // Makes written data durable (fdatasync).
  virtual Status sync_data() = 0;
  virtual Status truncate(uint64_t size_bytes) = 0;
  virtual Result<uint64_t> size_bytes() const = 0;
  // The OS file descriptor, for sendfile(2); -1 when there is none (MemEnv).
  virtual int native_handle() const { return -1; }
  virtual const std::string& path() const = 0;
};

enum class OpenMode {
  kReadOnly,        // must exist
  kReadWrite,       // must exist
  kCreateReadWrite, // created if missing, kept if present
  kCreateNew,       // must not exist
};

// Held while a data directory is in use; released on destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;

  virtual Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) = 0;
  // Creates one directory; succeeds if it already exists.
  virtual Status create_dir(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, unsorted.
  virtual Result<std::vector<std::string>> list_dir(const std::string& path) = 0;
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  virtual Status remove_file(const std::string& path) = 0;
  // Removes an empty directory.
  virtual Status remove_dir(const std::string& path) = 0;
  // Makes the directory's entries (creations, renames, removals) durable.
  virtual Status sync_dir(const std::string& path) = 0;
  virtual bool file_exists(const std::string& path) = 0;
  virtual bool dir_exists(const std::string& path) = 0;
  virtual Result<uint64_t> file_size(const std::string& path) = 0;
  // An exclusive advisory lock; fails with kBusy if another process holds it.
  virtual Result<std::unique_ptr<FileLock>> lock_file(const std::string& path) = 0;

  // The real file system.
  static Env& posix();
};

// Helpers built on the interface.
std::string join_path(const std::string& dir, const std::string& name);
std::string parent_dir(const std::string& path);
Status create_dirs(Env& env, const std::string& path);  // like mkdir -p
Result<std::string> read_whole_file(Env& env, const std::string& path);
// Crash-safe replace: write `path.tmp`, fsync it, rename over `path`, fsync
// the directory. After a crash the file holds either the old or new bytes.
Status write_file_atomically(Env& env, const std::string& path, ByteSpan data);
// Removes a directory and everything below it.
Status remove_tree(Env& env, const std::string& path);

}  // namespace evert::io
