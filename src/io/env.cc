#include "io/env.h"

namespace evert::io {

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status create_dirs(Env& env, const std::string& path) {
  if (path.empty() || env.dir_exists(path)) return Status::ok();
  std::string parent = parent_dir(path);
  if (parent != path && parent != "." && parent != "/") EVERT_RETURN_IF_ERROR(create_dirs(env, parent));
  EVERT_RETURN_IF_ERROR(env.create_dir(path));
  // The new entry in the parent must survive a crash too.
  return env.sync_dir(parent);
}

Result<std::string> read_whole_file(Env& env, const std::string& path) {
  EVERT_ASSIGN_OR_RETURN(auto file, env.open_file(path, OpenMode::kReadOnly));
  EVERT_ASSIGN_OR_RETURN(uint64_t size, file->size_bytes());
  std::string data(size, '\0');
  EVERT_ASSIGN_OR_RETURN(size_t n, file->read_at(0, MutableByteSpan(reinterpret_cast<uint8_t*>(data.data()), size)));
  data.resize(n);
  return data;
}

Status write_file_atomically(Env& env, const std::string& path, ByteSpan data) {
  std::string tmp = path + ".tmp";
  {
    EVERT_ASSIGN_OR_RETURN(auto file, env.open_file(tmp, OpenMode::kCreateReadWrite));
    EVERT_RETURN_IF_ERROR(file->truncate(0));
    EVERT_RETURN_IF_ERROR(file->write_at(0, data));
    EVERT_RETURN_IF_ERROR(file->sync_data());
  }
  EVERT_RETURN_IF_ERROR(env.rename(tmp, path));
  return env.sync_dir(parent_dir(path));
}

Status remove_tree(Env& env, const std::string& path) {
  if (!env.dir_exists(path)) {
    if (env.file_exists(path)) return env.remove_file(path);
    return Status::ok();
  }
  EVERT_ASSIGN_OR_RETURN(auto names, env.list_dir(path));
  for (const auto& name : names) EVERT_RETURN_IF_ERROR(remove_tree(env, join_path(path, name)));
  return env.remove_dir(path);
}

}  // namespace evert::io
