#include "log/compression.h"

#include <gtest/gtest.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

namespace evert::log {
namespace {

std::string sample() {
  std::string s;
  for (int i = 0; i < 5000; ++i) s += "record " + std::to_string(i) + ";";
  return s;
}

std::string gzip(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, uLong(in.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = uInt(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string snappy_raw(const std::string& in) {
  size_t n = snappy_max_compressed_length(in.size());
  std::string out(n, '\0');
  EXPECT_EQ(snappy_compress(in.data(), in.size(), out.data(), &n), SNAPPY_OK);
  out.resize(n);
  return out;
}

std::string snappy_xerial(const std::string& in) {
  std::string out("\x82SNAPPY\0", 8);
  out += std::string("\0\0\0\1\0\0\0\1", 8);
  for (size_t pos = 0; pos < in.size(); pos += 1000) {
    std::string block = snappy_raw(in.substr(pos, 1000));
    uint32_t len = uint32_t(block.size());
    out.push_back(char(len >> 24));
    out.push_back(char(len >> 16));
    out.push_back(char(len >> 8));
    out.push_back(char(len));
    out += block;
  }
  return out;
}

std::string lz4_frame(const std::string& in) {
  std::string out(LZ4F_compressFrameBound(in.size(), nullptr), '\0');
  size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), nullptr);
  EXPECT_FALSE(LZ4F_isError(n));
  out.resize(n);
  return out;
}

std::string zstd_frame(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

TEST(CompressionTest, EveryCodecRoundTrips) {
  std::string in = sample();
  EXPECT_EQ(*decompress(Compression::kGzip, as_bytes(gzip(in))), in);
  EXPECT_EQ(*decompress(Compression::kSnappy, as_bytes(snappy_raw(in))), in);
  EXPECT_EQ(*decompress(Compression::kSnappy, as_bytes(snappy_xerial(in))), in);
  EXPECT_EQ(*decompress(Compression::kLz4, as_bytes(lz4_frame(in))), in);
  EXPECT_EQ(*decompress(Compression::kZstd, as_bytes(zstd_frame(in))), in);
  EXPECT_EQ(*decompress(Compression::kNone, as_bytes(in)), in);
}

TEST(CompressionTest, TruncatedPayloadsFailCleanly) {
  std::string in = sample();
  for (auto [codec, bytes] : {std::pair{Compression::kGzip, gzip(in)}, std::pair{Compression::kLz4, lz4_frame(in)},
                              std::pair{Compression::kZstd, zstd_frame(in)},
                              std::pair{Compression::kSnappy, snappy_xerial(in)}}) {
    std::string cut = bytes.substr(0, bytes.size() / 2);
    auto r = decompress(codec, as_bytes(cut));
    ASSERT_FALSE(r.is_ok()) << compression_name(codec);
    EXPECT_EQ(r.status().code(), ErrorCode::kCorruption) << compression_name(codec);
  }
}

TEST(CompressionTest, GarbageIsCorruption) {
  std::string junk(300, '\x5a');
  for (auto codec : {Compression::kGzip, Compression::kSnappy, Compression::kLz4, Compression::kZstd}) {
    auto r = decompress(codec, as_bytes(junk));
    ASSERT_FALSE(r.is_ok()) << compression_name(codec);
  }
}

TEST(CompressionTest, DecompressionBombIsRefused) {
  std::string zeros(kDecompressedBytesMax + (1 << 20), '\0');
  auto r = decompress(Compression::kZstd, as_bytes(zstd_frame(zeros)));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kTooLarge);
}

}  // namespace
}  // namespace evert::log
