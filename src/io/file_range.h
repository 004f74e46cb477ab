// A byte range of an open file that can be sent as is (sendfile(2)).
// Holding it keeps the file open, even if the file is deleted meanwhile.
#pragma once

#include <cstdint>
#include <memory>

#include "io/env.h"

namespace evert::io {

struct FileRange {
  std::shared_ptr<File> file;
  uint64_t position = 0;
  uint64_t size_bytes = 0;
};

}  // namespace evert::io
