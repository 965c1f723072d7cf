// Wire-model throughput next to a memcpy of the same bytes, measured in the same run:
//   BM_BuildSerializeRequest1MiBJpeg  build a request around a 1 MiB JPEG (base64) and serialise it
//   BM_ParseResponse1MiBPng           parse a response carrying a 1 MiB PNG and base64-decode it
//   BM_Memcpy1MiB                     the floor: copy the same 1 MiB
// bytes_per_second counts the image bytes (1 MiB per iteration). The counters vs_memcpy (this
// benchmark's throughput / memcpy's) and x_memcpy_time (how many times slower) compare against a
// memcpy rate measured once in this process. All of them use thread CPU time, as Google
// Benchmark's own rates do, so a busy machine skews the ratio less than wall time would.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "roilens/client/interactions.h"

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

// Encodes noise (incompressible) as `ext` and cuts the bytes to exactly 1 MiB. The payload need
// not decode: neither serialisation nor base64 looks inside it (cv::imdecode is not measured).
std::vector<std::uint8_t> OneMiBImage(const char* ext) {
  cv::Mat noise(1024, 1024, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(256));
  std::vector<std::uint8_t> bytes;
  cv::imencode(ext, noise, bytes, {cv::IMWRITE_JPEG_QUALITY, 95});
  if (bytes.size() < kMiB) bytes.resize(kMiB, 0x5A);
  bytes.resize(kMiB);
  return bytes;
}

void CopyOnce(std::vector<std::uint8_t>& dst, const std::vector<std::uint8_t>& src) {
  std::memcpy(dst.data(), src.data(), src.size());
  benchmark::DoNotOptimize(dst.data());
  benchmark::ClobberMemory();
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// memcpy throughput of 1 MiB blocks in bytes per CPU second, measured once (~0.2 s).
double MemcpyBytesPerSecond() {
  static const double rate = [] {
    std::vector<std::uint8_t> src(kMiB, 1), dst(kMiB);
    for (int i = 0; i < 50; ++i) CopyOnce(dst, src);  // warm caches and pages
    const double start = ThreadCpuSeconds();
    std::int64_t n = 0;
    while (ThreadCpuSeconds() - start < 0.2) {
      for (int i = 0; i < 64; ++i) CopyOnce(dst, src);
      n += 64;
    }
    return static_cast<double>(n * kMiB) / (ThreadCpuSeconds() - start);
  }();
  return rate;
}

// `cpu_seconds`: the thread CPU time of the timed loop, measured around it.
void ReportAgainstMemcpy(benchmark::State& state, std::size_t bytes_per_iteration,
                         double cpu_seconds) {
  const double total = static_cast<double>(state.iterations()) * bytes_per_iteration;
  state.SetBytesProcessed(static_cast<std::int64_t>(total));
  const double ratio = (total / cpu_seconds) / MemcpyBytesPerSecond();
  state.counters["vs_memcpy"] = ratio;
  state.counters["x_memcpy_time"] = 1.0 / ratio;
}

void BM_BuildSerializeRequest1MiBJpeg(benchmark::State& state) {
  const auto jpeg = OneMiBImage(".jpg");
  MemcpyBytesPerSecond();
  const double start = ThreadCpuSeconds();
  for (auto _ : state) {
    roilens::wire::InteractionRequest request;
    request.model = "gemini-3-flash-preview";
    request.input = std::vector<roilens::wire::ContentBlock>{
        roilens::wire::ContentBlock::Text("Read the gauge. Answer with one JSON line."),
        roilens::wire::ContentBlock::ImageBytes(jpeg, "image/jpeg")};
    request.tools.push_back({{"type", "code_execution"}});
    std::string body = roilens::wire::SerializeRequest(request);
    benchmark::DoNotOptimize(body.data());
  }
  ReportAgainstMemcpy(state, jpeg.size(), ThreadCpuSeconds() - start);
}
BENCHMARK(BM_BuildSerializeRequest1MiBJpeg)->Unit(benchmark::kMillisecond);

std::string ResponseWithImage(const std::vector<std::uint8_t>& png) {
  nlohmann::json steps = nlohmann::json::array();
  steps.push_back({{"type", "thought"}, {"signature", std::string(400, 'S')}});
  steps.push_back({{"type", "code_execution_call"},
                   {"id", "exec_1"},
                   {"arguments", {{"code", std::string(2000, 'x')}, {"language", "python"}}}});
  steps.push_back({{"type", "code_execution_result"}, {"call_id", "exec_1"}, {"result", "ok\n"}});
  steps.push_back({{"type", "model_output"},
                   {"content",
                    {{{"type", "image"},
                      {"data", roilens::wire::Base64Encode(png.data(), png.size())},
                      {"mime_type", "image/png"}},
                     {{"type", "text"}, {"text", "{\"value\": 3.2, \"unit\": \"bar\"}"}}}}});
  nlohmann::json r = {{"id", "v1_bench"},        {"status", "completed"},
                      {"object", "interaction"}, {"model", "gemini-3"},
                      {"steps", steps},          {"usage", {{"total_tokens", 1000}}}};
  return r.dump();
}

void BM_ParseResponse1MiBPng(benchmark::State& state) {
  const auto png = OneMiBImage(".png");
  const std::string body = ResponseWithImage(png);
  MemcpyBytesPerSecond();
  const double start = ThreadCpuSeconds();
  for (auto _ : state) {
    auto interaction = roilens::wire::ParseInteraction(body);
    if (!interaction.ok()) {
      state.SkipWithError(interaction.status().ToString().c_str());
      break;
    }
    auto bytes = roilens::wire::Base64Decode(interaction->steps.back().content[0].data);
    if (!bytes.ok() || bytes->size() != png.size()) {
      state.SkipWithError("image block did not decode to the original bytes");
      break;
    }
    benchmark::DoNotOptimize(bytes->data());
  }
  ReportAgainstMemcpy(state, png.size(), ThreadCpuSeconds() - start);
  state.counters["body_MiB"] = static_cast<double>(body.size()) / kMiB;
}
BENCHMARK(BM_ParseResponse1MiBPng)->Unit(benchmark::kMillisecond);

void BM_Memcpy1MiB(benchmark::State& state) {
  std::vector<std::uint8_t> src(kMiB, 1), dst(kMiB);
  MemcpyBytesPerSecond();
  const double start = ThreadCpuSeconds();
  for (auto _ : state) CopyOnce(dst, src);
  ReportAgainstMemcpy(state, kMiB, ThreadCpuSeconds() - start);
}
BENCHMARK(BM_Memcpy1MiB)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
