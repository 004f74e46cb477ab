// The per-event parsing a view's backfill pays before it touches any group:
// record-batch parsing (log::decode_records) and the JSON event decoder
// (views::EventDecoder), on the same 100-byte events as view_bench.
// BM_DecodeRowSimdjson is the baseline in the same run: the decoder's full
// path (simdjson on-demand), which the scanner must agree with.
//
//   ./build/bench/decode_bench
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "log/record_batch.h"
#include "views/event_decoder.h"

using namespace evert;

namespace {

// Event i: the bytes view_bench and bench/views/pg_baseline.py use.
std::string event(int64_t i) {
  std::string core = fmt::format("{{\"id\":{},\"customer\":\"c{:06d}\",\"product\":{},\"qty\":{},\"ts\":{},\"pad\":\"", i,
                                 (i * 7919) % 100000, i % 1000, i % 10 + 1, 1700000000000 + i);
  return core + std::string(100 - core.size() - 2, 'x') + "\"}";
}

sql::Schema schema() {
  return {{"id", sql::Type::kInt},
          {"customer", sql::Type::kText},
          {"product", sql::Type::kInt},
          {"qty", sql::Type::kInt},
          {"ts", sql::Type::kInt}};
}

constexpr int kEvents = 1000;

// kEvents events, each followed by the decoder's padding.
struct Events {
  std::string bytes;
  std::vector<std::string_view> views;
  Events() {
    std::vector<size_t> starts;
    for (int i = 0; i < kEvents; ++i) {
      starts.push_back(bytes.size());
      bytes += event(i);
    }
    bytes.append(views::EventDecoder::kPadding, ' ');
    for (int i = 0; i < kEvents; ++i) {
      size_t end = i + 1 < kEvents ? starts[size_t(i) + 1] : bytes.size() - views::EventDecoder::kPadding;
      views.emplace_back(bytes.data() + starts[size_t(i)], end - starts[size_t(i)]);
    }
  }
};

template <bool kFull, bool kViewColumns = false>
void decode(benchmark::State& state) {
  Events ev;
  views::EventDecoder dec(schema());
  if (kViewColumns) dec.keep_only({false, true, false, true, false});  // customer, qty: what the view reads
  sql::Row row;
  std::string reason;
  const char* end = ev.bytes.data() + ev.bytes.size();
  for (auto _ : state) {
    for (std::string_view e : ev.views) {
      size_t capacity = size_t(end - e.data());
      bool ok = kFull ? dec.decode_row_full(e, capacity, &row, &reason) : dec.decode_row(e, capacity, &row, &reason);
      if (!ok) state.SkipWithError(reason.c_str());
      benchmark::DoNotOptimize(row.data());
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kEvents);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(ev.bytes.size() - views::EventDecoder::kPadding));
}

void BM_DecodeRow(benchmark::State& state) { decode<false>(state); }
void BM_DecodeRowSimdjson(benchmark::State& state) { decode<true>(state); }
// The backfill's case: only the view's columns are copied or computed.
void BM_DecodeRowViewColumns(benchmark::State& state) { decode<false, true>(state); }

void BM_DecodeRecords(benchmark::State& state) {
  log::BatchBuilder bb(1700000000000);
  for (int i = 0; i < kEvents; ++i) bb.add(std::nullopt, event(i), 1700000000000 + i);
  std::string batch = bb.finish();
  std::string scratch;
  std::vector<log::Record> records;
  for (auto _ : state) {
    Status s = log::decode_records(as_bytes(batch), &scratch, &records);
    if (!s) state.SkipWithError(s.message().c_str());
    benchmark::DoNotOptimize(records.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kEvents);
}

BENCHMARK(BM_DecodeRow);
BENCHMARK(BM_DecodeRowSimdjson);
BENCHMARK(BM_DecodeRowViewColumns);
BENCHMARK(BM_DecodeRecords);

}  // namespace

BENCHMARK_MAIN();
