// Sandbox: normal jobs (images back, figures, tracebacks, inputs, isolation between jobs,
// concurrency) and Create()'s refusals. The hostile suite is tests/integration.
#include "roilens/backend/sandbox.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "testing/sandbox_fixture.h"

namespace roilens::backend {
namespace {

using roilens::testing::HealthyJob;
using roilens::testing::IsHealthyResult;
using roilens::testing::MakeJob;
using roilens::testing::SharedSandbox;

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sandbox_ = SharedSandbox();
    ASSERT_NE(sandbox_, nullptr) << roilens::testing::SandboxCreateError();
  }
  Sandbox* sandbox_ = nullptr;
};

cv::Mat Decode(const SandboxImage& image) {
  return cv::imdecode(cv::Mat(1, static_cast<int>(image.bytes.size()), CV_8U,
                              const_cast<std::uint8_t*>(image.bytes.data())),
                      cv::IMREAD_UNCHANGED);
}

TEST_F(SandboxTest, DescribeNamesWhatTheSelfTestFound) {
  const std::string d = sandbox_->Describe();
  EXPECT_NE(d.find("bubblewrap"), std::string::npos) << d;
  EXPECT_NE(d.find("pid ns ok"), std::string::npos) << d;
  EXPECT_NE(d.find("net ns ok"), std::string::npos) << d;
  EXPECT_NE(d.find("seccomp filter ("), std::string::npos) << d;
  std::cout << "sandbox: " << d << "\n";
}

TEST_F(SandboxTest, Cv2JobReturnsItsImagesInCreationOrder) {
  auto r = sandbox_->Run(MakeJob(R"PY(
import cv2, numpy as np
img = np.zeros((40, 60, 3), np.uint8)
cv2.rectangle(img, (5, 5), (30, 20), (0, 0, 255), -1)
cv2.imwrite("first.png", img)
import time; time.sleep(0.02)
cv2.imwrite("second.jpg", cv2.resize(img, (120, 80)))
print("drawn")
)PY"));
  ASSERT_TRUE(r.ok) << r.error << "\n" << r.stderr_text;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "drawn\n");
  ASSERT_EQ(r.images.size(), 2u);
  EXPECT_EQ(r.images[0].name, "first.png");
  EXPECT_EQ(r.images[0].mime_type, "image/png");
  EXPECT_EQ(r.images[1].name, "second.jpg");
  EXPECT_EQ(r.images[1].mime_type, "image/jpeg");
  cv::Mat first = Decode(r.images[0]);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.cols, 60);
  EXPECT_EQ(first.rows, 40);
  EXPECT_EQ(first.at<cv::Vec3b>(10, 10), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(first.at<cv::Vec3b>(35, 50), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(Decode(r.images[1]).cols, 120);
}

TEST_F(SandboxTest, PltShowFiguresComeBackAsPng) {
  auto r = sandbox_->Run(MakeJob(R"PY(
import matplotlib.pyplot as plt
plt.figure(figsize=(3, 2), dpi=50)
plt.plot([0, 1, 2], [2, 0, 1])
plt.show()
plt.figure(figsize=(2, 2), dpi=50)
plt.bar([1, 2], [3, 4])
plt.show()
)PY"));
  ASSERT_TRUE(r.ok) << r.error << "\n" << r.stderr_text;
  ASSERT_EQ(r.images.size(), 2u);
  EXPECT_EQ(r.images[0].name, "figure_1.png");
  EXPECT_EQ(r.images[1].name, "figure_2.png");
  EXPECT_EQ(r.images[0].mime_type, "image/png");
  cv::Mat fig = Decode(r.images[0]);
  ASSERT_FALSE(fig.empty());
  EXPECT_EQ(fig.cols, 150);
  EXPECT_EQ(fig.rows, 100);
}

TEST_F(SandboxTest, ExceptionGivesTracebackAndOneLineError) {
  auto r = sandbox_->Run(MakeJob("x = 1\ny = 0\nprint('before')\nprint(x / y)\n"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.error, "exit code 1: ZeroDivisionError: division by zero");
  EXPECT_EQ(r.stdout_text, "before\n");
  EXPECT_NE(r.stderr_text.find("Traceback (most recent call last)"), std::string::npos);
  EXPECT_NE(r.stderr_text.find("File \"<code>\", line 4"), std::string::npos) << r.stderr_text;
  EXPECT_EQ(r.stderr_text.find("run_code"), std::string::npos) << "wrapper frames leak";
}

TEST_F(SandboxTest, SyntaxErrorAndSysExitAreReported) {
  auto syntax = sandbox_->Run(MakeJob("def broken(:\n  pass\n"));
  EXPECT_FALSE(syntax.ok);
  EXPECT_NE(syntax.error.find("SyntaxError"), std::string::npos) << syntax.error;

  auto exit3 = sandbox_->Run(MakeJob("import sys\nprint('bye')\nsys.exit(3)\n"));
  EXPECT_FALSE(exit3.ok);
  EXPECT_EQ(exit3.exit_code, 3);
  EXPECT_EQ(exit3.error, "exit code 3");
  EXPECT_EQ(exit3.stdout_text, "bye\n");

  auto exit0 = sandbox_->Run(MakeJob("import sys\nsys.exit(0)\n"));
  EXPECT_TRUE(exit0.ok) << exit0.error;
}

TEST_F(SandboxTest, InputsAreInTheJobDirAndUnchangedInputsAreNotReturned) {
  cv::Mat img(30, 20, CV_8UC3, cv::Scalar(10, 200, 30));
  std::vector<std::uint8_t> png;
  ASSERT_TRUE(cv::imencode(".png", img, png));
  SandboxJob job = MakeJob(R"PY(
import cv2, os
img = cv2.imread("frame.png")
print(img.shape, img[0, 0].tolist(), open("spec.json").read(), sorted(os.listdir(".")))
cv2.imwrite("frame_copy.png", img)
)PY");
  job.inputs.push_back({"frame.png", png});
  job.inputs.push_back({"spec.json", {'{', '}'}});
  auto r = sandbox_->Run(job);
  ASSERT_TRUE(r.ok) << r.error << "\n" << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "(30, 20, 3) [10, 200, 30] {} ['frame.png', 'spec.json']\n");
  ASSERT_EQ(r.images.size(), 1u);
  EXPECT_EQ(r.images[0].name, "frame_copy.png");

  // An input the code overwrites is an output.
  job.code = "import cv2\ncv2.imwrite('frame.png', cv2.imread('frame.png')[:10])\n";
  auto overwritten = sandbox_->Run(job);
  ASSERT_TRUE(overwritten.ok) << overwritten.error;
  ASSERT_EQ(overwritten.images.size(), 1u);
  EXPECT_EQ(Decode(overwritten.images[0]).rows, 10);
}

TEST_F(SandboxTest, InvalidInputNamesAreRefused) {
  for (std::string name : {"../escape.png", "", "a/b.png", ".."}) {
    SandboxJob job = MakeJob("print(1)");
    job.inputs.push_back({name, {1, 2, 3}});
    auto r = sandbox_->Run(job);
    EXPECT_FALSE(r.ok) << name;
    EXPECT_NE(r.error.find("invalid input file name"), std::string::npos) << r.error;
  }
}

TEST_F(SandboxTest, JobsDoNotSeeEarlierJobsFilesOrState) {
  // More runs than warm workers so every worker serves a second job.
  const int runs = roilens::testing::SandboxTestOptions().max_workers + 1;
  for (int i = 0; i < runs; ++i) {
    auto r = sandbox_->Run(MakeJob(R"PY(
import os, json, numpy
seen = {"cwd": sorted(os.listdir(".")), "tmp": sorted(os.listdir("/tmp")),
        "job_root": sorted(os.listdir("/job")), "flag": getattr(numpy, "roilens_flag", None)}
print(json.dumps(seen))
open("secret.txt", "w").write("job data")
open("/tmp/secret.txt", "w").write("job data")
os.makedirs("/tmp/mpl", exist_ok=True)
numpy.roilens_flag = "set by an earlier job"
)PY"));
    ASSERT_TRUE(r.ok) << r.error << "\n" << r.stderr_text;
    EXPECT_EQ(r.stdout_text,
              "{\"cwd\": [], \"tmp\": [], \"job_root\": [\"job\"], \"flag\": null}\n")
        << "run " << i;
  }
}

TEST_F(SandboxTest, ConcurrentJobsAllComplete) {
  std::vector<std::future<SandboxResult>> futures;
  for (int i = 0; i < 6; ++i) {
    futures.push_back(
        std::async(std::launch::async, [this, i] { return sandbox_->Run(HealthyJob(100 + i)); }));
  }
  for (int i = 0; i < 6; ++i) {
    auto r = futures[i].get();
    EXPECT_TRUE(IsHealthyResult(r, 100 + i)) << r.error << " " << r.stdout_text;
  }
}

TEST_F(SandboxTest, FakeImagesAndLinksAreNotReturned) {
  auto r = sandbox_->Run(MakeJob(R"PY(
import os
open("fake.png", "w").write("not an image")
os.symlink("/etc/passwd", "link.png")
)PY"));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.images.empty());
  EXPECT_NE(r.stderr_text.find("fake.png dropped: not a PNG or JPEG"), std::string::npos)
      << r.stderr_text;
}

TEST_F(SandboxTest, ImageCountIsCapped) {
  auto r = sandbox_->Run(MakeJob(R"PY(
import cv2, numpy as np
for i in range(20):
    cv2.imwrite("img_%02d.png" % i, np.full((4, 4), i, np.uint8))
)PY"));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.images.size(), 16u);
  EXPECT_NE(r.stderr_text.find("dropped: more than 16 images"), std::string::npos);
}

TEST(SandboxCreateTest, MissingBubblewrapIsAPreconditionFailure) {
  SandboxOptions o;
  o.bwrap = "roilens-no-such-bwrap";
  auto s = Sandbox::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("bubblewrap not found on PATH"), std::string::npos)
      << s.status();
}

TEST(SandboxCreateTest, PythonOutsideTheSandboxViewIsRefused) {
  SandboxOptions o;
  o.python = "/opt/python3";
  auto s = Sandbox::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("/opt/python3"), std::string::npos);
}

TEST(SandboxCreateTest, BrokenPythonFailsTheSelfTest) {
  SandboxOptions o;
  o.python = "/usr/bin/false";
  o.warm_workers = 1;
  auto s = Sandbox::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("failed to start python"), std::string::npos) << s.status();
}

TEST(SandboxCreateTest, BwrapThatDropsTheSeccompFilterFailsTheSelfTest) {
  // A bwrap that ignores --seccomp FD (an old or patched one) starts the sandbox without the
  // filter: the self-test must catch that and refuse, not run code unfiltered.
  std::string real_bwrap;
  {
    std::istringstream path(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
    for (std::string d; real_bwrap.empty() && std::getline(path, d, ':');) {
      if (!d.empty() && access((d + "/bwrap").c_str(), X_OK) == 0) real_bwrap = d + "/bwrap";
    }
  }
  ASSERT_FALSE(real_bwrap.empty()) << "bwrap not on PATH";
  char dir_template[] = "/tmp/roilens-fake-bwrap-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string fake = dir + "/bwrap";
  {
    std::ofstream script(fake);
    script << R"SH(#!/bin/sh
skip=0
for arg in "$@"; do
  shift
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  if [ "$arg" = --seccomp ]; then skip=1; continue; fi
  set -- "$@" "$arg"
done
exec ')SH" << real_bwrap
           << R"SH(' "$@"
)SH";
  }
  // As root the sandbox execs bwrap as nobody: the script and its directory must be readable.
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
  ASSERT_EQ(chmod(fake.c_str(), 0755), 0);
  SandboxOptions o = roilens::testing::SandboxTestOptions();
  o.bwrap = fake;
  o.warm_workers = 1;
  auto s = Sandbox::Create(o);
  std::remove(fake.c_str());
  rmdir(dir.c_str());
  ASSERT_FALSE(s.ok()) << "the sandbox started without its seccomp filter";
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("seccomp filter is not in force"), std::string::npos)
      << s.status();
}

TEST(SandboxCreateTest, BadOptionsAreInvalidArguments) {
  SandboxOptions o;
  o.memory_limit_bytes = 1024;
  EXPECT_EQ(Sandbox::Create(o).status().code(), StatusCode::kInvalidArgument);
}

// Not a speed assertion: prints warm-pool vs fresh-interpreter job latency for the report.
TEST(SandboxLatencyTest, PrintsWarmVersusFreshInterpreterLatency) {
  Sandbox* warm = SharedSandbox();
  ASSERT_NE(warm, nullptr) << roilens::testing::SandboxCreateError();
  SandboxOptions cold_options = roilens::testing::SandboxTestOptions();
  cold_options.warm_workers = 0;  // every job starts bwrap + python + imports
  auto cold = Sandbox::Create(cold_options);
  ASSERT_TRUE(cold.ok()) << cold.status();
  const std::string code = R"PY(
import cv2, numpy as np
img = np.zeros((240, 320, 3), np.uint8)
cv2.circle(img, (160, 120), 80, (255, 255, 255), 3)
cv2.imwrite("out.png", cv2.GaussianBlur(img, (5, 5), 0))
)PY";
  auto measure = [&](Sandbox& s) {
    std::vector<double> ms;
    for (int i = 0; i < 3; ++i) {
      // Sequential: with 2 warm workers taken in turn, each has the other's job time to
      // pre-fork its next supervisor and runner.
      auto r = s.Run(MakeJob(code));
      EXPECT_TRUE(r.ok) << r.error << r.stderr_text;
      EXPECT_EQ(r.images.size(), 1u);
      ms.push_back(r.elapsed_ms);
    }
    std::sort(ms.begin(), ms.end());
    return ms[1];
  };
  const double warm_ms = measure(*warm);
  const double cold_ms = measure(**cold);
  std::cout << "sandbox cv2 job latency (median of 3): warm pool " << warm_ms
            << " ms, fresh interpreter " << cold_ms << " ms\n";
  RecordProperty("warm_ms", std::to_string(warm_ms));
  RecordProperty("fresh_ms", std::to_string(cold_ms));
}

}  // namespace
}  // namespace roilens::backend
