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

// The Kafka codec on realistic messages. Produce v9: one topic, N
// partitions x one batch of 1 KiB records (records are borrowed by decode,
// copied by encode); Fetch v11 request; Fetch v11 response with the
// records deferred as holes (the broker's zero-copy encode). items/s =
// messages/s; wire_bytes = the message's size on the wire, holes included.
static void BM_CodecDecode(benchmark::State &state, mf_codec_kind kind)
{
	mf_codec *c = mf_codec_new(kind, int(state.range(0)), size_t(state.range(1)));
	if (c == nullptr) {
		state.SkipWithError("mf_codec_new failed");
		return;
	}
	for (auto _ : state)
		if (mf_codec_decode(c) != 0) {
			state.SkipWithError("decode failed");
			break;
		}
	state.SetItemsProcessed(int64_t(state.iterations()));
	state.counters["wire_bytes"] = double(mf_codec_wire_bytes(c));
	mf_codec_free(c);
}

static void BM_CodecEncode(benchmark::State &state, mf_codec_kind kind)
{
	mf_codec *c = mf_codec_new(kind, int(state.range(0)), size_t(state.range(1)));
	if (c == nullptr) {
		state.SkipWithError("mf_codec_new failed");
		return;
	}
	for (auto _ : state)
		if (mf_codec_encode(c) < 0) {
			state.SkipWithError("encode failed");
			break;
		}
	state.SetItemsProcessed(int64_t(state.iterations()));
	state.counters["wire_bytes"] = double(mf_codec_wire_bytes(c));
	mf_codec_free(c);
}

// Args: {partitions, batch bytes per partition (at most; 1200 = one 1 KiB record)}.
BENCHMARK_CAPTURE(BM_CodecDecode, ProduceRequest, MF_PRODUCE_REQUEST)
	->ArgNames({"parts", "batch"})->Args({1, 1200})->Args({2, 64 * 1024})->Args({16, 64 * 1024});
BENCHMARK_CAPTURE(BM_CodecEncode, ProduceRequest, MF_PRODUCE_REQUEST)
	->ArgNames({"parts", "batch"})->Args({1, 1200})->Args({2, 64 * 1024})->Args({16, 64 * 1024});
BENCHMARK_CAPTURE(BM_CodecDecode, FetchRequest, MF_FETCH_REQUEST)
	->ArgNames({"parts", "batch"})->Args({2, 0})->Args({64, 0});
BENCHMARK_CAPTURE(BM_CodecEncode, FetchRequest, MF_FETCH_REQUEST)
	->ArgNames({"parts", "batch"})->Args({2, 0})->Args({64, 0});
BENCHMARK_CAPTURE(BM_CodecEncode, FetchResponseZeroCopy, MF_FETCH_RESPONSE)
	->ArgNames({"parts", "batch"})->Args({2, 1024 * 1024})->Args({64, 1024 * 1024});

// The fetch path: one transfer of N bytes from a page-cached segment file
// to a loopback TCP socket (a thread drains the far end), by read+write,
// sendfile and splice through a pipe (what the broker does).
static void BM_FetchPath(benchmark::State &state, mf_fetch_method method)
{
	char *dir = mf_tmpdir();
	mf_fetchpath *fp = dir != nullptr ? mf_fetchpath_new(dir, method) : nullptr;
	if (fp == nullptr) {
		state.SkipWithError("mf_fetchpath_new failed");
		mf_rmdir(dir);
		return;
	}
	for (auto _ : state)
		if (mf_fetchpath_send(fp, size_t(state.range(0))) < 0) {
			state.SkipWithError("send failed");
			break;
		}
	state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
	mf_fetchpath_free(fp);
	mf_rmdir(dir);
}
BENCHMARK_CAPTURE(BM_FetchPath, ReadWrite, MF_FP_READ_WRITE)
	->Arg(64 * 1024)->Arg(1024 * 1024)->UseRealTime();
BENCHMARK_CAPTURE(BM_FetchPath, Sendfile, MF_FP_SENDFILE)
	->Arg(64 * 1024)->Arg(1024 * 1024)->UseRealTime();
BENCHMARK_CAPTURE(BM_FetchPath, Splice, MF_FP_SPLICE)
	->Arg(64 * 1024)->Arg(1024 * 1024)->UseRealTime();

BENCHMARK_MAIN();
