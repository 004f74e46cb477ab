// A fresh directory under $TMPDIR (or /tmp), removed with its contents on
// destruction unless EVERT_KEEP_TEMP is set.
#pragma once

#include <string>

namespace evert::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace evert::testing
