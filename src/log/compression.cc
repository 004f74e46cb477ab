#include "log/compression.h"

#include <fmt/format.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <memory>

namespace evert::log {
namespace {

Status too_large() {
  return error(ErrorCode::kTooLarge, fmt::format("decompressed batch exceeds {} bytes", kDecompressedBytesMax));
}

Result<std::string> gunzip(ByteSpan in) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return error(ErrorCode::kInternal, "inflateInit2 failed");
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&zs, &inflateEnd);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = uInt(in.size());
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    int rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > kDecompressedBytesMax) return too_large();
    if (rc == Z_STREAM_END) return out;
    if (rc != Z_OK) return error(ErrorCode::kCorruption, fmt::format("gzip payload: zlib error {}", rc));
    if (zs.avail_in == 0 && zs.avail_out != 0) return error(ErrorCode::kCorruption, "gzip payload truncated");
  }
}

Result<std::string> snappy_block(ByteSpan in) {
  size_t n = 0;
  if (snappy_uncompressed_length(reinterpret_cast<const char*>(in.data()), in.size(), &n) != SNAPPY_OK)
    return error(ErrorCode::kCorruption, "snappy block: bad length");
  if (n > kDecompressedBytesMax) return too_large();
  std::string out(n, '\0');
  if (snappy_uncompress(reinterpret_cast<const char*>(in.data()), in.size(), out.data(), &n) != SNAPPY_OK)
    return error(ErrorCode::kCorruption, "snappy block: corrupt");
  out.resize(n);
  return out;
}

Result<std::string> unsnappy(ByteSpan in) {
  static const uint8_t kXerial[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
  if (in.size() < 16 || !std::equal(kXerial, kXerial + 8, in.data())) return snappy_block(in);
  std::string out;
  size_t pos = 16;  // magic, i32 version, i32 compatible version
  while (pos < in.size()) {
    if (in.size() - pos < 4) return error(ErrorCode::kCorruption, "snappy xerial: truncated block length");
    uint32_t len = load_be32(in.data() + pos);
    pos += 4;
    if (len > in.size() - pos) return error(ErrorCode::kCorruption, "snappy xerial: block past the end");
    EVERT_ASSIGN_OR_RETURN(std::string block, snappy_block(in.subspan(pos, len)));
    out += block;
    if (out.size() > kDecompressedBytesMax) return too_large();
    pos += len;
  }
  return out;
}

Result<std::string> unlz4(ByteSpan in) {
  LZ4F_dctx* ctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
    return error(ErrorCode::kInternal, "LZ4F context");
  std::unique_ptr<LZ4F_dctx, decltype(&LZ4F_freeDecompressionContext)> guard(ctx, &LZ4F_freeDecompressionContext);
  std::string out;
  char buf[64 * 1024];
  size_t pos = 0;
  for (;;) {
    size_t dst = sizeof(buf);
    size_t src = in.size() - pos;
    size_t hint = LZ4F_decompress(ctx, buf, &dst, in.data() + pos, &src, nullptr);
    if (LZ4F_isError(hint))
      return error(ErrorCode::kCorruption, fmt::format("lz4 payload: {}", LZ4F_getErrorName(hint)));
    pos += src;
    out.append(buf, dst);
    if (out.size() > kDecompressedBytesMax) return too_large();
    if (hint == 0) return out;  // frame complete
    if (src == 0 && dst == 0) return error(ErrorCode::kCorruption, "lz4 payload truncated");
  }
}

Result<std::string> unzstd(ByteSpan in) {
  ZSTD_DStream* ds = ZSTD_createDStream();
  if (ds == nullptr) return error(ErrorCode::kInternal, "ZSTD_createDStream");
  std::unique_ptr<ZSTD_DStream, decltype(&ZSTD_freeDStream)> guard(ds, &ZSTD_freeDStream);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    ZSTD_outBuffer output{buf, sizeof(buf), 0};
    size_t rc = ZSTD_decompressStream(ds, &output, &input);
    if (ZSTD_isError(rc)) return error(ErrorCode::kCorruption, fmt::format("zstd payload: {}", ZSTD_getErrorName(rc)));
    out.append(buf, output.pos);
    if (out.size() > kDecompressedBytesMax) return too_large();
    if (rc == 0 && input.pos == input.size) return out;
    if (input.pos == input.size && output.pos < output.size)
      return rc == 0 ? Result<std::string>(out) : error(ErrorCode::kCorruption, "zstd payload truncated");
  }
}

}  // namespace

Result<std::string> decompress(Compression codec, ByteSpan payload) {
  switch (codec) {
    case Compression::kNone: return std::string(as_string_view(payload));
    case Compression::kGzip: return gunzip(payload);
    case Compression::kSnappy: return unsnappy(payload);
    case Compression::kLz4: return unlz4(payload);
    case Compression::kZstd: return unzstd(payload);
  }
  return error(ErrorCode::kUnsupported, fmt::format("compression codec {}", int(codec)));
}

}  // namespace evert::log
