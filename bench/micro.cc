// micro.cc — Google Benchmark entry points; each one times a C fixture
// from micro_fixtures.c. Figures are reported, never asserted.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "micro_fixtures.h"

static void BM_Crc32c(benchmark::State &state)
{
	std::vector<unsigned char> buf(static_cast<size_t>(state.range(0)), 0xA5);
	for (auto _ : state)
		benchmark::DoNotOptimize(mf_crc32c(buf.data(), buf.size()));
	state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Crc32c)->Arg(1024)->Arg(64 * 1024);

static void BM_Crc32cPortable(benchmark::State &state)
{
	std::vector<unsigned char> buf(static_cast<size_t>(state.range(0)), 0xA5);
	for (auto _ : state)
		benchmark::DoNotOptimize(mf_crc32c_portable(buf.data(), buf.size()));
	state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Crc32cPortable)->Arg(1024)->Arg(64 * 1024);

// Validation of a 64 KiB batch of 1 KiB (or 100 B) records: CRC + record walk.
static void BM_BatchValidate(benchmark::State &state)
{
	mf_batch *b = mf_batch_new(64 * 1024, static_cast<size_t>(state.range(0)));
	for (auto _ : state)
		if (mf_batch_validate(b) != 0)
			state.SkipWithError("batch did not validate");
	state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(mf_batch_size(b)));
	mf_batch_free(b);
}
BENCHMARK(BM_BatchValidate)->Arg(1024)->Arg(100);

// 64 KiB batches of 1 KiB records through the storage engine (io_uring
// writes, offsets assigned, indexes kept) versus plain write(2) of the same
// bytes into the same directory: the ratio is the engine's overhead.
static constexpr int kBatchesPerIteration = 16;

static void BM_LogAppend(benchmark::State &state)
{
	char *dir = mf_tmpdir();
	mf_batch *b = mf_batch_new(64 * 1024, 1024);
	mf_log *log = mf_log_open(dir);
	int64_t bytes = 0;
	if (log == nullptr)
		state.SkipWithError("mf_log_open failed");
	for (auto _ : state) {
		int64_t n = mf_log_append(log, b, kBatchesPerIteration);
		if (n < 0) {
			state.SkipWithError("append failed");
			break;
		}
		bytes += n;
	}
	state.SetBytesProcessed(bytes);
	mf_log_close(log);
	mf_batch_free(b);
	mf_rmdir(dir);
}
BENCHMARK(BM_LogAppend)->UseRealTime();

static void BM_RawWrite(benchmark::State &state)
{
	char *dir = mf_tmpdir();
	mf_batch *b = mf_batch_new(64 * 1024, 1024);
	mf_raw *raw = mf_raw_open(dir);
	int64_t bytes = 0;
	if (raw == nullptr)
		state.SkipWithError("mf_raw_open failed");
	for (auto _ : state) {
		int64_t n = mf_raw_append(raw, b, kBatchesPerIteration);
		if (n < 0) {
			state.SkipWithError("write failed");
			break;
		}
		bytes += n;
	}
	state.SetBytesProcessed(bytes);
	mf_raw_close(raw);
	mf_batch_free(b);
	mf_rmdir(dir);
}
BENCHMARK(BM_RawWrite)->UseRealTime();

// Offset -> file position lookups (segment search + sparse index + header
// scan) in a log of 4096 batches; time per lookup.
static void BM_IndexLookup(benchmark::State &state)
{
	char *dir = mf_tmpdir();
	mf_index *ix = mf_index_new(dir, 4096);
	if (ix == nullptr)
		state.SkipWithError("mf_index_new failed");
	for (auto _ : state)
		benchmark::DoNotOptimize(mf_index_lookup(ix, 1));
	mf_index_free(ix);
	mf_rmdir(dir);
}
BENCHMARK(BM_IndexLookup);

BENCHMARK_MAIN();
