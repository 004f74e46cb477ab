#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace evert::detail {

void check_failed(const char* expr, const char* file, int line, const char* message) {
  std::fprintf(stderr, "evert: check failed: %s at %s:%d %s\n", expr, file, line, message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace evert::detail
