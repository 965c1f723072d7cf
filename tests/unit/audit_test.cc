// AuditLog: SHA-256 against the FIPS 180-4 vectors, one record per call with blobs stored once,
// the size bound (oldest records and their blobs dropped), continuing a trail, key scrubbing.
#include "roilens/outputs/audit.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "testing/paths.h"

namespace roilens {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::uint64_t DirBytes(const fs::path& dir) {
  std::uint64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

std::size_t BlobCount(const fs::path& dir) {
  std::size_t count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "blobs")) {
    if (entry.is_regular_file()) ++count;
  }
  return count;
}

AuditOptions OptionsFor(const fs::path& dir) {
  AuditOptions options;
  options.dir = dir.string();
  return options;
}

/// A call whose crop is `crop` (raw bytes) and whose model ran `code`.
AuditCall MakeCall(std::int64_t frame, const std::string& crop, const std::string& code,
                   const std::string& answer_text = "{\"value\": 1}") {
  AuditCall call;
  call.frame = frame;
  call.time_s = frame * 0.5;
  call.roi = "dial";
  call.rect = cv::Rect(1, 2, 3, 4);
  call.roi_config = {{"name", "dial"}, {"task", "ask"}, {"rect", {0, 0, 1, 1}}, {"prompt", "?"}};
  call.model = "m";
  call.endpoint = "http://user:pw@127.0.0.1:9/v1?key=abc";
  call.coder = "cv";
  call.prompt = "Read it";
  call.crop_base64 =
      wire::Base64Encode(reinterpret_cast<const std::uint8_t*>(crop.data()), crop.size());
  call.crop_mime_type = "image/png";
  wire::Interaction interaction;
  interaction.id = "i" + std::to_string(frame);
  interaction.status = "completed";
  wire::Step code_call;
  code_call.type = "code_execution_call";
  code_call.id = "c1";
  code_call.code = code;
  code_call.language = "python";
  wire::Step code_result;
  code_result.type = "code_execution_result";
  code_result.call_id = "c1";
  code_result.result = "stdout of " + code;
  code_result.is_error = false;
  wire::Step output;
  output.type = "model_output";
  output.content.push_back(wire::ContentBlock::Text(answer_text));
  interaction.steps = {code_call, code_result, output};
  call.interaction = std::move(interaction);
  call.answer = {{"status", "ok"}, {"text", answer_text}};
  return call;
}

TEST(AuditTest, Sha256MatchesFipsVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // 55, 56 and 64 bytes: the padding boundaries.
  EXPECT_EQ(Sha256Hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(Sha256Hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(Sha256Hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(AuditTest, OneRecordPerCallAndIdenticalContentStoredOnce) {
  const fs::path dir = testing::ScratchDir("audit-dedup");
  {
    auto log = AuditLog::Open(OptionsFor(dir));
    ASSERT_TRUE(log.ok()) << log.status();
    for (int frame = 0; frame < 5; ++frame)
      (*log)->Record(MakeCall(frame, "same crop", "print(1)"));
    (*log)->Record(MakeCall(5, "another crop", "print(1)"));
    (*log)->Drain();
    const AuditStats stats = (*log)->stats();
    EXPECT_EQ(stats.records, 6);
    EXPECT_EQ(stats.dropped, 0);
    EXPECT_TRUE(stats.last_error.ok()) << stats.last_error;
  }
  auto records = ReadAuditRecords(dir.string());
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 6u);
  std::set<std::string> crops;
  for (std::size_t i = 0; i < records->size(); ++i) {
    const auto& r = (*records)[i];
    EXPECT_EQ(r["frame"], static_cast<int>(i));
    EXPECT_EQ(r["rect"], nlohmann::json({1, 2, 3, 4}));
    EXPECT_EQ(r["coder"], "cv");
    EXPECT_EQ(r["endpoint"], "http://127.0.0.1:9/v1");  // no user info, no query
    crops.insert(r["crop"]["blob"].get<std::string>());
    auto crop = ReadAuditBlob(dir.string(), r["crop"]["blob"]);
    ASSERT_TRUE(crop.ok()) << crop.status();
    EXPECT_EQ(*crop, i < 5 ? "same crop" : "another crop");
    auto code = ReadAuditBlob(dir.string(), r["code_runs"][0]["code"]);
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, "print(1)");
    auto result = ReadAuditBlob(dir.string(), r["code_runs"][0]["result"]);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(*result, "stdout of print(1)");
  }
  EXPECT_EQ(crops.size(), 2u);
  // Blobs: 2 crops, 1 code, 1 result, 1 prompt, 1 roi config, 1 final text = 7 files.
  EXPECT_EQ(BlobCount(dir), 7u);
}

TEST(AuditTest, SizeBoundDropsOldestRecordsAndTheirBlobs) {
  const fs::path dir = testing::ScratchDir("audit-bound");
  AuditOptions options;
  options.dir = dir.string();
  options.max_bytes = 64 * 1024;
  {
    auto log = AuditLog::Open(options);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int frame = 0; frame < 200; ++frame) {
      // A distinct 4 KiB crop per call: 800 KiB in all, more than ten times the bound.
      std::string crop(4096, static_cast<char>('a' + frame % 26));
      crop += std::to_string(frame);
      (*log)->Record(MakeCall(frame, crop, "print(1)"));
      if (frame % 50 == 49) (*log)->Drain();  // the queue bound is not what this tests
    }
    (*log)->Drain();
    EXPECT_GT((*log)->stats().files_deleted, 0);
    EXPECT_LE((*log)->stats().bytes, options.max_bytes);
  }
  EXPECT_LE(DirBytes(dir), options.max_bytes);
  auto records = ReadAuditRecords(dir.string());
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_FALSE(records->empty());
  EXPECT_LT(records->size(), 200u);
  EXPECT_EQ(records->back()["frame"], 199);  // the newest are kept
  // Every blob left is referenced and every reference resolves: nothing dangles, nothing leaks.
  std::set<std::string> referenced;
  for (const auto& r : *records) {
    for (const std::string& hash :
         {r["crop"]["blob"].get<std::string>(), r["prompt"].get<std::string>(),
          r["code_runs"][0]["code"].get<std::string>()}) {
      referenced.insert(hash);
      EXPECT_TRUE(ReadAuditBlob(dir.string(), hash).ok()) << hash;
    }
    referenced.insert(r["roi_config"].get<std::string>());
    referenced.insert(r["final_text"].get<std::string>());
    referenced.insert(r["code_runs"][0]["result"].get<std::string>());
  }
  EXPECT_EQ(BlobCount(dir), referenced.size());
}

TEST(AuditTest, ReopeningContinuesTheTrailInANewRecordFile) {
  const fs::path dir = testing::ScratchDir("audit-reopen");
  for (int run = 0; run < 2; ++run) {
    auto log = AuditLog::Open(OptionsFor(dir));
    ASSERT_TRUE(log.ok()) << log.status();
    (*log)->Record(MakeCall(run, "crop", "print(1)"));
  }  // the destructor writes what is queued
  auto records = ReadAuditRecords(dir.string());
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0]["frame"], 0);
  EXPECT_EQ((*records)[1]["frame"], 1);
  EXPECT_EQ(BlobCount(dir), 6u);  // the second run stored nothing new
}

TEST(AuditTest, TheKeyNeverReachesDisk) {
  const fs::path dir = testing::ScratchDir("audit-key");
  const std::string key = "AIzaSECRET-audit-key-123";
  {
    AuditOptions options;
    options.dir = dir.string();
    options.redact = key;
    auto log = AuditLog::Open(options);
    ASSERT_TRUE(log.ok()) << log.status();
    AuditCall call = MakeCall(0, "crop", "print('" + key + "')", "echoed " + key);
    call.endpoint = "https://host/v1?key=" + key;
    call.answer["error"] = "rejected " + key;
    (*log)->Record(std::move(call));
    AuditCall failed = MakeCall(1, "crop", "x");
    failed.interaction.reset();
    failed.status = UnavailableError("backend said " + key);
    (*log)->Record(std::move(failed));
  }
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    EXPECT_EQ(ReadAll(entry.path()).find(key), std::string::npos) << entry.path();
  }
  EXPECT_GT(files, 3);
}

TEST(AuditTest, RecordDropsAndCountsWhenTheQueueIsFull) {
  const fs::path dir = testing::ScratchDir("audit-queue");
  AuditOptions options;
  options.dir = dir.string();
  options.max_queued = 0;  // every call is over the bound
  auto log = AuditLog::Open(options);
  ASSERT_TRUE(log.ok()) << log.status();
  (*log)->Record(MakeCall(0, "crop", "x"));
  (*log)->Drain();
  EXPECT_EQ((*log)->stats().dropped, 1);
  EXPECT_EQ((*log)->stats().records, 0);
}

}  // namespace
}  // namespace roilens
