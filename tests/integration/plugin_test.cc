// The plugin library end to end: its single exported symbol and SONAME, version negotiation,
// the C++ facade, and frames through the plugin matching frames through roilens::Pipeline
// linked directly (echo coder on the embedded local backend; real HTTP on loopback).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "roilens/backend/server.h"
#include "roilens/config/config.h"
#include "roilens/stages/pipeline.h"
#include "roilens_plugin/roilens_plugin.hpp"
#include "testing/plugin_paths.h"
#include "testing/plugin_support.h"

namespace roilens::testing {
namespace {

using nlohmann::json;

constexpr const char* kEchoOptions = R"({"coder":"echo"})";

// Deterministic, visibly different frames (noise + a moving disc), 640x360.
std::vector<cv::Mat> MakeFrames(int n) {
  cv::RNG rng(42);
  std::vector<cv::Mat> frames;
  for (int i = 0; i < n; ++i) {
    cv::Mat f(360, 640, CV_8UC3);
    rng.fill(f, cv::RNG::UNIFORM, 0, 256);
    cv::circle(f, {60 + 40 * i, 180}, 50, {0, 40.0 * (i % 6), 255}, -1);
    frames.push_back(f);
  }
  return frames;
}

// The fields of a result line that must not depend on how the pipeline was reached.
json Deterministic(const json& r) {
  json out;
  for (const char* key : {"frame", "roi", "task", "rect", "status", "value", "unit", "count",
                          "text", "alarm", "error"})
    if (r.contains(key)) out[key] = r[key];
  return out;
}

TEST(PluginLibrary, ExportsOnlyTheVersionedEntryPoint) {
  const std::string& path = GetPluginPaths().plugin;
  ASSERT_FALSE(path.empty()) << "plugin_paths.txt missing: is the plugin built?";
  auto nm = RunCommand("nm -D --defined-only " + ShellQuote(path));
  ASSERT_EQ(nm.exit_code, 0) << nm.output;
  std::istringstream lines(nm.output);
  std::vector<std::string> symbols;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string address, type, name;
    fields >> address >> type >> name;
    if (!name.empty()) symbols.push_back(name);
  }
  EXPECT_EQ(symbols, std::vector<std::string>{"roilens_plugin_init_v1"}) << nm.output;
}

TEST(PluginLibrary, FileNameAndSonameCarryTheAbiVersion) {
  const std::string& path = GetPluginPaths().plugin;
  auto objdump = RunCommand("objdump -p " + ShellQuote(path));
  ASSERT_EQ(objdump.exit_code, 0) << objdump.output;
  EXPECT_NE(objdump.output.find("SONAME               libroilens_plugin.so.1"), std::string::npos)
      << objdump.output;
  EXPECT_NE(path.find("libroilens_plugin.so.1"), std::string::npos) << path;
  // Self-contained apart from system libraries: no roilens library is needed at load time.
  EXPECT_EQ(objdump.output.find("NEEDED               libroilens"), std::string::npos)
      << objdump.output;
}

TEST(PluginInit, ReturnsTheTableForAbi1) {
  const roilens_plugin_api* api = PluginApi();
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->abi_version, 1);
  EXPECT_GE(api->api_version, 1);
  EXPECT_EQ(api->size, sizeof(roilens_plugin_api));
  EXPECT_STRNE(api->library_version, "");
  for (auto* fn :
       {reinterpret_cast<const void*>(api->create), reinterpret_cast<const void*>(api->submit),
        reinterpret_cast<const void*>(api->take), reinterpret_cast<const void*>(api->frame_release),
        reinterpret_cast<const void*>(api->flush), reinterpret_cast<const void*>(api->destroy),
        reinterpret_cast<const void*>(api->last_error)})
    EXPECT_NE(fn, nullptr);
}

TEST(PluginInit, RefusesAnotherAbiNamingBothVersions) {
  ASSERT_NE(PluginApi(), nullptr);
  void* dl = ::dlopen(GetPluginPaths().plugin.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr);
  auto init = reinterpret_cast<roilens_plugin_init_fn>(::dlsym(dl, ROILENS_PLUGIN_INIT_SYMBOL));
  ASSERT_NE(init, nullptr);

  roilens_init_error error{};
  EXPECT_EQ(init(2, 1, &error), nullptr);
  EXPECT_STREQ(error.message, "roilens plugin ABI 1, caller asked for ABI 2");
  EXPECT_EQ(error.plugin_abi_version, 1);

  error = {};
  EXPECT_EQ(init(0, 1, &error), nullptr);
  EXPECT_STREQ(error.message, "roilens plugin ABI 1, caller asked for ABI 0");

  // A caller needing a newer API (functions this library lacks) is refused too...
  error = {};
  EXPECT_EQ(init(1, ROILENS_PLUGIN_API_VERSION + 1, &error), nullptr);
  EXPECT_NE(std::string(error.message)
                .find("caller asked for API " + std::to_string(ROILENS_PLUGIN_API_VERSION + 1)),
            std::string::npos)
      << error.message;
  // ...and without an error struct the refusal is still clean.
  EXPECT_EQ(init(7, 1, nullptr), nullptr);
  // An older-or-equal API is served the same table.
  EXPECT_EQ(init(1, 1, nullptr), PluginApi());
  ::dlclose(dl);
}

TEST(PluginFacade, LoadErrorsNameThePath) {
  try {
    plugin::Library library("/nonexistent/libroilens_plugin.so.1");
    FAIL() << "loaded a file that does not exist";
  } catch (const plugin::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/libroilens_plugin.so.1"), std::string::npos)
        << e.what();
  }
  // A shared library that is not the plugin (libc has no entry point).
  try {
    plugin::Library library("libc.so.6");
    FAIL() << "accepted a library without the entry point";
  } catch (const plugin::Error& e) {
    EXPECT_NE(std::string(e.what()).find("roilens_plugin_init_v1"), std::string::npos) << e.what();
  }
}

TEST(PluginFacade, PathComesFromTheEnvironmentWhenNotGiven) {
  ASSERT_EQ(::setenv("ROILENS_PLUGIN_PATH", GetPluginPaths().plugin.c_str(), 1), 0);
  plugin::Library library;
  ::unsetenv("ROILENS_PLUGIN_PATH");
  EXPECT_EQ(library.path(), GetPluginPaths().plugin);
  EXPECT_EQ(library.abi_version(), 1);
  EXPECT_EQ(plugin::Library::ResolvePath(""), plugin::kDefaultLibraryName);
  EXPECT_EQ(plugin::Library::ResolvePath("/x/y.so"), "/x/y.so");
}

TEST(PluginFacade, FramesComeBackInOrderWithOnePerRoiResult) {
  plugin::Library library(GetPluginPaths().plugin);
  plugin::Session session(library, EchoStationConfig(3), kEchoOptions);
  const auto frames = MakeFrames(10);
  std::vector<plugin::Frame> taken;
  for (int i = 0; i < 10; ++i) {
    session.Submit(frames[i], 100 + i, 0.5 * i);
    while (auto f = session.TryTake()) taken.push_back(std::move(*f));
  }
  session.Flush();
  while (auto f = session.Take()) taken.push_back(std::move(*f));
  EXPECT_TRUE(session.ended());
  EXPECT_FALSE(session.Take(std::chrono::milliseconds(0)).has_value());

  ASSERT_EQ(taken.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    const auto& f = taken[i];
    EXPECT_EQ(f.index, 100 + i);
    EXPECT_DOUBLE_EQ(f.time_s, 0.5 * i);
    EXPECT_EQ(f.annotated.size(), cv::Size(640, 360));
    EXPECT_EQ(f.annotated.type(), CV_8UC3);
    const json results = json::parse(f.results_json);
    ASSERT_TRUE(results.is_array());
    ASSERT_EQ(results.size(), 3u) << f.results_json;
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(results[r].at("roi"), "roi" + std::to_string(r)) << results[r];
      EXPECT_EQ(results[r].at("frame"), 100 + i) << results[r];
      EXPECT_EQ(results[r].at("task"), "count") << results[r];
      EXPECT_TRUE(results[r].contains("status")) << results[r];
    }
  }
}

// The same frames through the plugin and through roilens::Pipeline linked directly give the same
// results and the same annotated pixels: the boundary adds nothing and loses nothing. One frame
// goes in as a view into a bigger image (row stride != width * 3).
TEST(PluginFacade, MatchesThePipelineLinkedDirectly) {
  const auto frames = MakeFrames(6);
  cv::Mat canvas(500, 900, CV_8UC3, cv::Scalar(1, 2, 3));
  frames[3].copyTo(canvas(cv::Rect(100, 70, 640, 360)));
  const cv::Mat view = canvas(cv::Rect(100, 70, 640, 360));
  ASSERT_FALSE(view.isContinuous());

  std::vector<plugin::Frame> via_plugin;
  {
    plugin::Library library(GetPluginPaths().plugin);
    plugin::Session session(library, EchoStationConfig(2), kEchoOptions);
    for (int i = 0; i < 6; ++i) session.Submit(i == 3 ? view : frames[i], i, i / 10.0);
    session.Flush();
    while (auto f = session.Take()) via_plugin.push_back(std::move(*f));
  }

  std::vector<FrameOutput> direct;
  {
    backend::BackendOptions backend_options;
    backend_options.coder = "echo";
    auto backend = backend::LocalBackend::Start(backend_options);
    ASSERT_TRUE(backend.ok()) << backend.status();
    auto config = ParseStationConfig(EchoStationConfig(2));
    ASSERT_TRUE(config.ok()) << config.status();
    PipelineOptions options;
    options.base_url = (*backend)->base_url();
    auto pipeline = Pipeline::Create(std::move(*config), options);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    for (int i = 0; i < 6; ++i) {
      FrameInput in;
      in.index = i;
      in.time_s = i / 10.0;
      in.bgr = frames[i].clone();
      ASSERT_TRUE((*pipeline)->Submit(std::move(in)).ok());
    }
    (*pipeline)->Flush();
    while (auto f = (*pipeline)->Take()) direct.push_back(std::move(*f));
  }

  ASSERT_EQ(via_plugin.size(), direct.size());
  for (std::size_t i = 0; i < direct.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    EXPECT_EQ(via_plugin[i].index, direct[i].index);
    const json results = json::parse(via_plugin[i].results_json);
    ASSERT_EQ(results.size(), direct[i].results.size());
    for (std::size_t r = 0; r < results.size(); ++r)
      EXPECT_EQ(Deterministic(results[r]), Deterministic(ToJson(direct[i].results[r])));
    ASSERT_EQ(via_plugin[i].annotated.size(), direct[i].annotated.size());
    EXPECT_EQ(cv::norm(via_plugin[i].annotated, direct[i].annotated, cv::NORM_INF), 0.0);
  }
}

// The embedded backend is an emulator on loopback: a session never hands it the API key from the
// environment (backend.api_key_env), as `roilens run` never does. A key the client refuses (it
// holds a line break) shows whether the session read it: one that did could not be created.
TEST(PluginFacade, EmbeddedBackendNeverGetsTheEnvironmentsKey) {
  constexpr const char* kKeyVariable = "ROILENS_PLUGIN_TEST_KEY";
  json config = json::parse(EchoStationConfig(1));
  config["backend"]["api_key_env"] = kKeyVariable;
  ASSERT_EQ(::setenv(kKeyVariable, "not-for-the\nemulator", 1), 0);
  struct Unset {
    const char* name;
    ~Unset() { ::unsetenv(name); }
  } unset{kKeyVariable};

  plugin::Library library(GetPluginPaths().plugin);
  try {
    plugin::Session session(library, config.dump(), kEchoOptions);
    session.Submit(MakeFrames(1)[0], 0, 0.0);
    session.Flush();
    auto frame = session.Take();
    ASSERT_TRUE(frame.has_value());
    const json results = json::parse(frame->results_json);
    ASSERT_EQ(results.size(), 1u) << frame->results_json;
    EXPECT_NE(results[0].value("status", ""), "error") << results[0];
  } catch (const plugin::Error& e) {
    FAIL() << "the session read the environment's key: " << e.what();
  }
}

// Submit on one thread, take (blocking) on another, as the C header allows.
TEST(PluginFacade, SubmitAndTakeOnDifferentThreads) {
  plugin::Library library(GetPluginPaths().plugin);
  plugin::Session session(library, EchoStationConfig(1), kEchoOptions);
  auto taker = std::async(std::launch::async, [&session] {
    std::vector<std::int64_t> indices;
    while (auto f = session.Take()) indices.push_back(f->index);
    return indices;
  });
  const auto frames = MakeFrames(4);
  for (int i = 0; i < 20; ++i) session.Submit(frames[i % 4], i, i / 10.0);
  session.Flush();
  const auto indices = taker.get();
  ASSERT_EQ(indices.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(indices[i], i);
}

TEST(PluginFacade, TakeWithTimeoutReportsNothingReadyBeforeAnyFrame) {
  plugin::Library library(GetPluginPaths().plugin);
  plugin::Session session(library, EchoStationConfig(1), kEchoOptions);
  EXPECT_FALSE(session.TryTake().has_value());
  EXPECT_FALSE(session.Take(std::chrono::milliseconds(20)).has_value());
  EXPECT_FALSE(session.ended());
  session.Flush();  // nothing submitted: the end comes at once
  EXPECT_FALSE(session.Take().has_value());
  EXPECT_TRUE(session.ended());
}

TEST(PluginFacade, LiveModeDeliversEveryFrame) {
  plugin::Library library(GetPluginPaths().plugin);
  plugin::Session session(library, EchoStationConfig(2, "live"), kEchoOptions);
  const auto frames = MakeFrames(5);
  for (int i = 0; i < 5; ++i) session.Submit(frames[i], i, i / 10.0);
  session.Flush();
  int n = 0;
  while (auto f = session.Take()) {
    EXPECT_EQ(f->index, n++);
    EXPECT_EQ(json::parse(f->results_json).size(), 2u);
  }
  EXPECT_EQ(n, 5);
}

TEST(PluginFacade, ConfigErrorsNameTheFieldPath) {
  plugin::Library library(GetPluginPaths().plugin);
  json config = json::parse(EchoStationConfig(2));
  config["rois"][1]["task"] = "levitate";
  try {
    plugin::Session session(library, config.dump(), kEchoOptions);
    FAIL() << "accepted an unknown task";
  } catch (const plugin::Error& e) {
    EXPECT_EQ(e.code(), ROILENS_ERROR_CONFIG);
    EXPECT_NE(std::string(e.what()).find("rois[1].task"), std::string::npos) << e.what();
  }
  try {
    plugin::Session session(library, EchoStationConfig(1), R"({"coder":"gpt-9"})");
    FAIL() << "accepted an unknown coder";
  } catch (const plugin::Error& e) {
    EXPECT_EQ(e.code(), ROILENS_ERROR_CONFIG);
    EXPECT_NE(std::string(e.what()).find("options.coder"), std::string::npos) << e.what();
  }
  try {
    plugin::Session session(library, EchoStationConfig(1), R"({"codec":"echo"})");
    FAIL() << "accepted an unknown option";
  } catch (const plugin::Error& e) {
    EXPECT_NE(std::string(e.what()).find("options.codec: unknown option"), std::string::npos)
        << e.what();
  }
}

TEST(PluginFacade, SessionsAreIndependent) {
  plugin::Library library(GetPluginPaths().plugin);
  plugin::Session a(library, EchoStationConfig(1), kEchoOptions);
  plugin::Session b(library, EchoStationConfig(2), kEchoOptions);
  const auto frames = MakeFrames(3);
  for (int i = 0; i < 3; ++i) {
    a.Submit(frames[i], i, 0);
    b.Submit(frames[2 - i], 10 + i, 0);
  }
  a.Flush();
  b.Flush();
  int na = 0, nb = 0;
  while (auto f = a.Take()) {
    EXPECT_EQ(json::parse(f->results_json).size(), 1u);
    ++na;
  }
  while (auto f = b.Take()) {
    EXPECT_EQ(f->index, 10 + nb);
    ++nb;
  }
  EXPECT_EQ(na, 3);
  EXPECT_EQ(nb, 3);
}

}  // namespace
}  // namespace roilens::testing
