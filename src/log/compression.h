// Decompression of record-batch payloads (the bytes after the 61-byte
// header when the codec bits are set), as Kafka clients write them:
//   gzip    a gzip stream (RFC 1952)
//   snappy  xerial framing ("\x82SNAPPY\0", version, compat, then blocks of
//           i32 length + raw snappy), or one raw snappy block
//   lz4     an LZ4 frame (magic 0x184D2204)
//   zstd    a zstd frame (content size may be absent)
// The log stores and serves batches compressed; it decompresses only to
// look inside (timestamp lookups, dumps, derived views).
#pragma once

#include <cstddef>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "log/record_batch.h"

namespace evert::log {

// Upper bound on one decompressed payload, checked while inflating so a
// small "zip bomb" cannot exhaust memory.
inline constexpr size_t kDecompressedBytesMax = 256u << 20;

Result<std::string> decompress(Compression codec, ByteSpan payload);

}  // namespace evert::log
