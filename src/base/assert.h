// Assertions that stay on in release builds (STYLE.md habit 6).
//
// EVERT_CHECK guards invariants whose violation means a bug: continuing would
// risk writing wrong bytes to disk or to a client, so the process aborts with
// the location. EVERT_DCHECK is for checks too expensive for release.
#pragma once

namespace evert::detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line, const char* message);
}  // namespace evert::detail

#define EVERT_CHECK(cond)                                                            \
  do {                                                                               \
    if (__builtin_expect(!(cond), 0)) ::evert::detail::check_failed(#cond, __FILE__, __LINE__, ""); \
  } while (0)

#define EVERT_CHECK_MSG(cond, msg)                                                      \
  do {                                                                                  \
    if (__builtin_expect(!(cond), 0)) ::evert::detail::check_failed(#cond, __FILE__, __LINE__, msg); \
  } while (0)

#ifdef NDEBUG
#define EVERT_DCHECK(cond) \
  do {                     \
  } while (0)
#else
#define EVERT_DCHECK(cond) EVERT_CHECK(cond)
#endif
