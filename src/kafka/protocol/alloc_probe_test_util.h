// An allocation probe for the codec tests: the test binary replaces the
// global operator new (in wire_test.cc) to remember the largest single
// allocation, so a test can show that a lying length or count read off the
// wire never makes the decoder allocate what it claims.
//
// Threading: the probe is process-wide; tests using it run single-threaded
// (gtest's default), and everything allocated between reset and read counts.
#pragma once

#include <cstddef>

namespace evert::kafka::test {

// Forgets the largest allocation seen so far.
void reset_largest_allocation();
// The largest operator new request, in bytes, since the last reset.
size_t largest_allocation_bytes();

}  // namespace evert::kafka::test
