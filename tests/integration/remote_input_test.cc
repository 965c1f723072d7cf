// http(s):// inputs (tools/cli/remote_input.h) against a real HTTP server on loopback: a small
// file server in this test whose Range support, Content-Length and early hang-ups are chosen per
// test, and `roilens run` on a URL end to end (download, 404, secrets kept out of the output).
#include "remote_input.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "roilens/samples.h"
#include "testing/cli_runner.h"
#include "testing/paths.h"

namespace roilens::cli {
namespace {

namespace fs = std::filesystem;

/// An HTTP/1.1 file server on 127.0.0.1 (port 0), one request per connection. Serves `files` by
/// path (query strings ignored), with or without Range support; can hang up after a number of
/// body bytes (once), omit Content-Length, or refuse HEAD. Records each request's first line and
/// Range header.
class FileServer {
 public:
  struct Seen {
    std::string method, target, range;
  };

  std::map<std::string, std::string> files;
  bool ranges = true;
  bool send_length = true;
  bool refuse_head = false;
  std::int64_t hang_up_after = -1;  ///< body bytes sent before closing, once (-1: never)

  ~FileServer() {
    if (fd_ >= 0) {
      ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
      thread_.join();
      ::close(fd_);
    }
  }

  bool Start() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return false;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int client = ::accept(fd_, nullptr, nullptr);
        if (client < 0) return;
        Serve(client);
        ::close(client);
      }
    });
    return true;
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  static void SendAll(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  void Serve(int fd) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return;
      request.append(buffer, static_cast<std::size_t>(n));
    }
    Seen seen;
    std::istringstream lines(request);
    lines >> seen.method >> seen.target;
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("Range: ", 0) == 0) seen.range = line.substr(7, line.find('\r') - 7);
    }
    std::int64_t hang_up = -1;
    {
      std::lock_guard lock(mu_);
      seen_.push_back(seen);
      std::swap(hang_up, hang_up_after);
    }
    const auto file = files.find(seen.target.substr(0, seen.target.find('?')));
    if (file == files.end() || (refuse_head && seen.method == "HEAD")) {
      const bool missing = file == files.end();
      SendAll(fd, std::string(missing ? "HTTP/1.1 404 Not Found" : "HTTP/1.1 403 Forbidden") +
                      "\r\nContent-Length: 6\r\nConnection: close\r\n\r\nnope\r\n");
      return;
    }
    const std::string& body = file->second;
    const auto size = static_cast<std::int64_t>(body.size());
    std::int64_t start = 0;
    std::string head = "HTTP/1.1 200 OK\r\n";
    if (ranges && seen.range.rfind("bytes=", 0) == 0) {
      start = std::stoll(seen.range.substr(6));
      if (start >= size) {
        SendAll(fd, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */" +
                        std::to_string(size) +
                        "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      head = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(start) + "-" +
             std::to_string(size - 1) + "/" + std::to_string(size) + "\r\n";
    }
    if (send_length) head += "Content-Length: " + std::to_string(size - start) + "\r\n";
    SendAll(fd, head + "Connection: close\r\n\r\n");
    if (seen.method == "HEAD") return;
    std::string rest = body.substr(static_cast<std::size_t>(start));
    if (hang_up >= 0) rest.resize(static_cast<std::size_t>(hang_up));
    SendAll(fd, rest);
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
};

std::string RandomBytes(std::size_t n) {
  std::mt19937 rng(7);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

std::string ReadAll(const std::string& path) { return testing::ReadFileText(path); }

/// Files in `dir` (names only).
std::vector<std::string> Listing(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

TEST(RemoteInputTest, RedactUrlDropsCredentialsQueryAndFragment) {
  EXPECT_EQ(RedactUrl("https://example.com/a/b.mp4"), "https://example.com/a/b.mp4");
  EXPECT_EQ(
      RedactUrl("https://bucket.s3.amazonaws.com/v.mp4?X-Amz-Signature=abc&X-Amz-Credential=k"),
      "https://bucket.s3.amazonaws.com/v.mp4?<query redacted>");
  EXPECT_EQ(RedactUrl("http://user:pw@host:8080/x.mp4#t=3"),
            "http://<credentials redacted>@host:8080/x.mp4?<query redacted>");
  // An '@' in the path is not a credential.
  EXPECT_EQ(RedactUrl("http://host/a@b.mp4"), "http://host/a@b.mp4");
  EXPECT_TRUE(IsRemoteInput("HTTPS://host/x"));
  EXPECT_TRUE(IsRemoteInput("http://host/x"));
  EXPECT_FALSE(IsRemoteInput("rtsp://host/x"));
  EXPECT_FALSE(IsRemoteInput("clip.mp4"));
}

TEST(RemoteInputTest, DownloadsTheWholeFileUnderItsOwnNameWithoutAPartFileLeft) {
  FileServer server;
  server.files["/media/clip.mp4"] = RandomBytes(300000);
  ASSERT_TRUE(server.Start());
  const fs::path dir = testing::ScratchDir("remote_full");
  auto path = DownloadToFile(server.url("/media/clip.mp4"), dir.string());
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(fs::path(*path).extension(), ".mp4");  // OpenCV picks the demuxer by it
  EXPECT_EQ(ReadAll(*path), server.files["/media/clip.mp4"]);
  EXPECT_EQ(Listing(dir).size(), 1u);
  ASSERT_EQ(server.seen().size(), 1u);
  EXPECT_EQ(server.seen()[0].range, "");
}

TEST(RemoteInputTest, AConnectionLostMidwayIsContinuedWithARangeRequest) {
  FileServer server;
  const std::string body = RandomBytes(500000);
  server.files["/clip.mp4"] = body;
  server.hang_up_after = 123456;
  ASSERT_TRUE(server.Start());
  const fs::path dir = testing::ScratchDir("remote_resume");
  auto first = DownloadToFile(server.url("/clip.mp4"), dir.string());
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status();
  EXPECT_NE(first.status().message().find("run again"), std::string::npos);
  // Only the partial file, under a name that does not pass for the input.
  auto names = Listing(dir);
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(fs::path(names[0]).extension(), ".part");
  EXPECT_EQ(fs::file_size(dir / names[0]), 123456u);

  auto second = DownloadToFile(server.url("/clip.mp4"), dir.string());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(ReadAll(*second), body);
  ASSERT_EQ(server.seen().size(), 2u);
  EXPECT_EQ(server.seen()[1].range, "bytes=123456-");
  EXPECT_EQ(Listing(dir).size(), 1u);
}

TEST(RemoteInputTest, AServerWithoutRangeSupportStartsTheFileOver) {
  FileServer server;
  const std::string body = RandomBytes(200000);
  server.files["/clip.mp4"] = body;
  server.ranges = false;
  server.hang_up_after = 50000;
  ASSERT_TRUE(server.Start());
  const fs::path dir = testing::ScratchDir("remote_norange");
  ASSERT_FALSE(DownloadToFile(server.url("/clip.mp4"), dir.string()).ok());
  auto second = DownloadToFile(server.url("/clip.mp4"), dir.string());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(ReadAll(*second), body);  // the 200's body replaced the partial one, not appended
}

TEST(RemoteInputTest, APartialFileThatWasAlreadyCompleteIsKept) {
  // A crash between the last byte and the rename: the server answers 416 "bytes */SIZE".
  FileServer server;
  const std::string body = RandomBytes(10000);
  server.files["/clip.mp4"] = body;
  ASSERT_TRUE(server.Start());
  const fs::path dir = testing::ScratchDir("remote_416");
  auto done = DownloadToFile(server.url("/clip.mp4"), dir.string());
  ASSERT_TRUE(done.ok()) << done.status();
  fs::rename(*done, *done + ".part");
  auto again = DownloadToFile(server.url("/clip.mp4"), dir.string());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ReadAll(*again), body);
  EXPECT_EQ(server.seen().back().range, "bytes=10000-");
}

TEST(RemoteInputTest, OverTheSizeCapFailsClearlyAndKeepsNothing) {
  FileServer server;
  server.files["/big.mp4"] = RandomBytes(3 << 20);
  ASSERT_TRUE(server.Start());
  const fs::path dir = testing::ScratchDir("remote_cap");
  DownloadOptions options;
  options.max_bytes = 1 << 20;
  for (bool send_length : {true, false}) {  // refused at the header, or stopped at the cap
    SCOPED_TRACE(send_length ? "with Content-Length" : "without Content-Length");
    server.send_length = send_length;
    auto result = DownloadToFile(server.url("/big.mp4"), dir.string(), options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(result.status().message().find("--max-download-mb"), std::string::npos)
        << result.status();
    EXPECT_NE(result.status().message().find(server.url("/big.mp4")), std::string::npos);
    EXPECT_TRUE(Listing(dir).empty());
  }
}

TEST(RemoteInputTest, NotFoundNamesTheUrlButNeverItsSecrets) {
  FileServer server;
  ASSERT_TRUE(server.Start());
  const fs::path dir = testing::ScratchDir("remote_404");
  std::string url = server.url("/bucket/missing.mp4?X-Amz-Signature=SECRET-SIGNATURE");
  url.insert(url.find("127."), "me:SECRET-PASSWORD@");
  auto result = DownloadToFile(url, dir.string());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kNotFound);
  const std::string& message = result.status().message();
  EXPECT_NE(message.find("/bucket/missing.mp4"), std::string::npos) << message;
  EXPECT_NE(message.find("404"), std::string::npos) << message;
  EXPECT_EQ(message.find("SECRET"), std::string::npos) << message;
  EXPECT_TRUE(Listing(dir).empty());
  ASSERT_EQ(server.seen().size(), 1u);
  EXPECT_EQ(server.seen()[0].target, "/bucket/missing.mp4?X-Amz-Signature=SECRET-SIGNATURE");
}

TEST(RemoteInputTest, RemoteSizeFromHeadOrFromARangeGetWhereHeadIsRefused) {
  FileServer server;
  server.files["/a.mp4"] = RandomBytes(77777);
  ASSERT_TRUE(server.Start());
  auto size = RemoteSize(server.url("/a.mp4?sig=x"));
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 77777);
  EXPECT_EQ(server.seen().back().method, "HEAD");

  server.refuse_head = true;  // a URL signed for GET only
  size = RemoteSize(server.url("/a.mp4"));
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 77777);
  EXPECT_EQ(server.seen().back().method, "GET");
  EXPECT_EQ(server.seen().back().range, "bytes=0-0");

  auto missing = RemoteSize(server.url("/nope.mp4"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(RemoteInputTest, RunOnASignedUrlDownloadsAndKeepsTheSignatureOutOfEverything) {
  const fs::path dir = testing::ScratchDir("remote_run");
  SampleOptions samples;
  samples.frames = 12;
  ASSERT_TRUE(WriteSamples((dir / "samples").string(), samples).ok());
  FileServer server;
  server.files["/media/station.mp4"] = ReadAll((dir / "samples" / "station.mp4").string());
  ASSERT_TRUE(server.Start());
  const std::string url = server.url("/media/station.mp4?X-Goog-Signature=SECRET-SIGNATURE");
  auto result =
      testing::RunCli({"run", url, "--config", (dir / "samples" / "station.json").string(), "--out",
                       (dir / "out").string(), "--coder", "echo"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(result.out.find("SECRET"), std::string::npos) << result.out;
  EXPECT_EQ(result.err.find("SECRET"), std::string::npos) << result.err;
  const auto summary = nlohmann::json::parse(ReadAll((dir / "out" / "summary.json").string()));
  EXPECT_EQ(summary["frames"], 12);
  EXPECT_EQ(summary["input"], server.url("/media/station.mp4?<query redacted>"));
  for (const auto& entry : fs::recursive_directory_iterator(dir / "out")) {
    if (entry.is_regular_file()) {
      EXPECT_EQ(ReadAll(entry.path().string()).find("SECRET"), std::string::npos) << entry.path();
    }
  }
  // A finished run removes its scratch copy.
  EXPECT_FALSE(fs::exists(dir / "out" / ".roilens-download"));

  auto missing = testing::RunCli({"run", server.url("/media/gone.mp4?token=SECRET-TOKEN"),
                                  "--config", (dir / "samples" / "station.json").string(), "--out",
                                  (dir / "missing").string(), "--quiet"});
  EXPECT_EQ(missing.exit_code, 4) << missing.err;
  EXPECT_NE(missing.err.find(server.url("/media/gone.mp4")), std::string::npos) << missing.err;
  EXPECT_EQ(missing.err.find("SECRET"), std::string::npos) << missing.err;
}

TEST(RemoteInputTest, ABatchOfSignedUrlsKeepsTheSignaturesOutOfEveryFileAndSizesTheShards) {
  const fs::path dir = testing::ScratchDir("remote_batch");
  SampleOptions samples;
  samples.frames = 4;
  ASSERT_TRUE(WriteSamples((dir / "samples").string(), samples).ok());
  FileServer server;
  const std::string video = ReadAll((dir / "samples" / "station.mp4").string());
  server.files["/media/a.mp4"] = video;
  server.files["/media/b.mp4"] = video + video;  // twice the bytes: a shard of its own
  server.files["/media/c.mp4"] = video;
  ASSERT_TRUE(server.Start());
  {
    std::ofstream list(dir / "list.txt");
    for (const char* name : {"a", "b", "c"}) {
      list << server.url(std::string("/media/") + name + ".mp4?X-Amz-Signature=SECRET-" + name)
           << "\n";
    }
  }
  const fs::path out = dir / "out";
  for (const char* shard : {"0/2", "1/2"}) {
    auto run = testing::RunCli({"run", "--inputs", (dir / "list.txt").string(), "--config",
                                (dir / "samples" / "station.json").string(), "--out", out.string(),
                                "--coder", "echo", "--shard", shard});
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    EXPECT_EQ(run.out.find("SECRET"), std::string::npos) << run.out;
    EXPECT_EQ(run.err.find("SECRET"), std::string::npos) << run.err;
  }
  for (const auto& entry : fs::recursive_directory_iterator(out)) {
    if (entry.is_regular_file()) {
      EXPECT_EQ(ReadAll(entry.path().string()).find("SECRET"), std::string::npos) << entry.path();
    }
  }
  // Balanced by the sizes the server reported: b (the largest) alone in shard 0.
  const auto manifest = nlohmann::json::parse(ReadAll((out / "manifest.json").string()));
  std::map<std::string, std::uintmax_t> bytes;
  for (const auto& file : manifest["files"]) bytes[file["folder"]] = file["bytes"];
  EXPECT_EQ(bytes["b"], 2 * video.size());
  EXPECT_EQ(bytes["a"], video.size());
  const auto shard0 = nlohmann::json::parse(ReadAll((out / "shards" / "0-of-2.json").string()));
  ASSERT_EQ(shard0["files"].size(), 1u);
  EXPECT_EQ(shard0["files"][0]["folder"], "b");
  const auto summary = nlohmann::json::parse(ReadAll((out / "summary.json").string()));
  EXPECT_EQ(summary["totals"]["ok"], 3);
  EXPECT_EQ(summary["totals"]["frames"], 12);
}

}  // namespace
}  // namespace roilens::cli
