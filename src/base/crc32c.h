// CRC32C (Castagnoli), the checksum of Kafka RecordBatch v2.
//
// Uses carry-less multiplies on 512-bit registers (AVX-512 VPCLMULQDQ) for
// long inputs when the CPU has them, else the SSE4.2 crc32 instruction, else
// a table-driven software path (chosen once at start-up); all give identical
// results, which crc32c_test.cc checks against published vectors.
#pragma once

#include <cstddef>
#include <cstdint>

namespace evert {

// Extends `crc` (0 to start) over `size` bytes at `data`.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }

// Exposed for tests and benchmarks: the implementations. Call the hardware
// ones only when their *_available() says so.
uint32_t crc32c_extend_software(uint32_t crc, const void* data, size_t size);
uint32_t crc32c_extend_hardware(uint32_t crc, const void* data, size_t size);
uint32_t crc32c_extend_vpclmul(uint32_t crc, const void* data, size_t size);
bool crc32c_hardware_available();
bool crc32c_vpclmul_available();

}  // namespace evert
