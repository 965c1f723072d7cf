// Batch planning (tools/cli/batch.h): the input list, folder names, shard flags and environment,
// the size-balanced shard assignment, the manifest check and the merge of what is on disk.
#include "batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "testing/paths.h"

namespace roilens::cli {
namespace {

namespace fs = std::filesystem;

void WriteText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

TEST(BatchListTest, CommentsBlanksAndRelativePathsResolveAgainstTheList) {
  const fs::path dir = testing::ScratchDir("list_ok");
  WriteText(dir / "lists" / "inputs.txt",
            "# line 3 cameras\n\n  a.mp4  \nsub/b.mp4\n/abs/c.mp4\n   # indented comment\n"
            "https://example.com/v/d.mp4?x=1\n");
  auto inputs = ReadInputList((dir / "lists" / "inputs.txt").string());
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_EQ(*inputs, (std::vector<std::string>{(dir / "lists" / "a.mp4").string(),
                                               (dir / "lists" / "sub" / "b.mp4").string(),
                                               "/abs/c.mp4", "https://example.com/v/d.mp4?x=1"}));
}

TEST(BatchListTest, ErrorsNameTheFileAndLine) {
  const fs::path dir = testing::ScratchDir("list_bad");
  const std::string list = (dir / "inputs.txt").string();
  WriteText(list, "a.mp4\n# comment\nb.mp4\n./a.mp4\n");
  auto twice = ReadInputList(list);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find(list + ":4:"), std::string::npos)
      << twice.status().message();
  EXPECT_NE(twice.status().message().find("line 1"), std::string::npos);

  WriteText(list, "# only comments\n\n");
  auto empty = ReadInputList(list);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find(list), std::string::npos);

  auto missing = ReadInputList((dir / "nope.txt").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.txt"), std::string::npos);
}

TEST(BatchPlanTest, FolderNamesAreStemsDisambiguatedByAHashOfThePath) {
  auto planned = PlanInputs({"/data/a/cam.mp4", "/data/b/cam.mp4", "/data/x y.mov",
                             "/data/shards.mp4", "/data/summary.json.mp4"});
  ASSERT_TRUE(planned.ok()) << planned.status();
  const auto& p = *planned;
  EXPECT_EQ(p[0].folder.rfind("cam-", 0), 0u) << p[0].folder;
  EXPECT_EQ(p[0].folder.size(), 4u + 8u);
  EXPECT_EQ(p[1].folder.rfind("cam-", 0), 0u);
  EXPECT_NE(p[0].folder, p[1].folder);
  EXPECT_EQ(p[2].folder, "x_y");
  EXPECT_NE(p[3].folder, "shards");  // the output root's own folder
  EXPECT_NE(p[4].folder, "summary.json");
  // Deterministic: the same list plans the same names.
  auto again = PlanInputs({"/data/a/cam.mp4", "/data/b/cam.mp4", "/data/x y.mov",
                           "/data/shards.mp4", "/data/summary.json.mp4"});
  ASSERT_TRUE(again.ok());
  for (std::size_t i = 0; i < p.size(); ++i) EXPECT_EQ(p[i].folder, (*again)[i].folder);

  EXPECT_FALSE(PlanInputs({"/d/a.mp4", "/d/a.mp4"}).ok());
}

TEST(BatchShardTest, ParsesKOfNAndRejectsMalformedValues) {
  auto ok = ParseShard("3/4");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->index, 3);
  EXPECT_EQ(ok->count, 4);
  for (const char* bad : {"4/4", "-1/2", "1", "a/2", "1/b", "0/0", "1/2x", "/2", "1/", ""}) {
    auto parsed = ParseShard(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("--shard"), std::string::npos);
    }
  }
}

TEST(BatchShardTest, IndexedJobEnvironment) {
  auto env = [](std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  };
  auto none = ShardFromEnvironment(env({}));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto both = ShardFromEnvironment(env({{"JOB_COMPLETION_INDEX", "2"}, {"JOB_COMPLETIONS", "5"}}));
  ASSERT_TRUE(both.ok()) << both.status();
  ASSERT_TRUE(both->has_value());
  EXPECT_EQ((*both)->index, 2);
  EXPECT_EQ((*both)->count, 5);

  auto only_index = ShardFromEnvironment(env({{"JOB_COMPLETION_INDEX", "0"}}));
  ASSERT_FALSE(only_index.ok());
  EXPECT_NE(only_index.status().message().find("JOB_COMPLETIONS"), std::string::npos);

  for (const auto& [index, count, named] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"5", "5", "JOB_COMPLETION_INDEX='5'"},
           {"x", "2", "JOB_COMPLETION_INDEX='x'"},
           {"-1", "2", "JOB_COMPLETION_INDEX='-1'"},
           {"0", "0", "JOB_COMPLETIONS='0'"},
           {"0", "two", "JOB_COMPLETIONS='two'"}}) {
    auto bad =
        ShardFromEnvironment(env({{"JOB_COMPLETION_INDEX", index}, {"JOB_COMPLETIONS", count}}));
    ASSERT_FALSE(bad.ok()) << index << "/" << count;
    EXPECT_NE(bad.status().message().find(named), std::string::npos) << bad.status().message();
  }
}

std::vector<BatchInput> Inputs(const std::vector<std::pair<std::string, std::uintmax_t>>& sizes) {
  std::vector<BatchInput> inputs;
  for (const auto& [path, bytes] : sizes) inputs.push_back({path, path, path, bytes});
  return inputs;
}

TEST(BatchShardTest, AssignmentBalancesBytesNotCounts) {
  // One big file and three small ones: by count each shard would get two; by size the big one
  // is alone.
  const auto inputs = Inputs({{"a", 10}, {"big", 90}, {"c", 10}, {"d", 10}});
  EXPECT_EQ(AssignShards(inputs, 2), (std::vector<int>{1, 0, 1, 1}));
  // Equal sizes: ties go by path, then to the lower shard.
  EXPECT_EQ(AssignShards(Inputs({{"z", 5}, {"y", 5}, {"x", 5}}), 2), (std::vector<int>{0, 1, 0}));
}

TEST(BatchShardTest, AssignmentIsDeterministicCompleteAndNearlyEven) {
  std::mt19937_64 rng(7);
  std::vector<std::pair<std::string, std::uintmax_t>> sizes;
  for (int i = 0; i < 200; ++i) {
    sizes.emplace_back("f" + std::to_string(i), 1 + rng() % 1000000);
  }
  sizes.emplace_back("same-size-1", 5000);
  sizes.emplace_back("same-size-2", 5000);
  const auto inputs = Inputs(sizes);
  for (int count : {1, 2, 3, 7}) {
    const auto shard_of = AssignShards(inputs, count);
    ASSERT_EQ(shard_of.size(), inputs.size());
    // The same inputs in another order (another machine's listing) give the same shards.
    auto shuffled = inputs;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    const auto shuffled_of = AssignShards(shuffled, count);
    std::map<std::string, int> by_path;
    for (std::size_t i = 0; i < inputs.size(); ++i) by_path[inputs[i].path] = shard_of[i];
    for (std::size_t i = 0; i < shuffled.size(); ++i) {
      EXPECT_EQ(shuffled_of[i], by_path.at(shuffled[i].path)) << shuffled[i].path;
    }
    // Every file in exactly one shard; the shards' bytes differ by at most the largest file.
    std::vector<std::uintmax_t> load(count, 0);
    std::uintmax_t largest = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      ASSERT_GE(shard_of[i], 0);
      ASSERT_LT(shard_of[i], count);
      load[shard_of[i]] += inputs[i].bytes;
      largest = std::max(largest, inputs[i].bytes);
    }
    const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
    EXPECT_LE(*hi - *lo, largest) << "shards " << count;
  }
}

TEST(BatchManifestTest, ShardsOfOneBatchAgreeAndAnotherBatchIsRefused) {
  const fs::path root = testing::ScratchDir("manifest");
  BatchManifest manifest;
  manifest.inputs = Inputs({{"/v/a.mp4", 3}, {"/v/b.mp4", 4}});
  ASSERT_TRUE(WriteOrCheckManifest(root.string(), manifest).ok());
  ASSERT_TRUE(WriteOrCheckManifest(root.string(), manifest).ok());  // the second shard
  auto read = ReadManifest(root.string());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->inputs.size(), 2u);
  EXPECT_EQ(read->inputs[1].path, "/v/b.mp4");
  BatchManifest other = manifest;
  other.inputs.pop_back();
  EXPECT_FALSE(WriteOrCheckManifest(root.string(), other).ok());
  BatchManifest other_config = manifest;
  other_config.config_digest = "0123456789abcdef";
  EXPECT_FALSE(WriteOrCheckManifest(root.string(), other_config).ok());
  for (const auto& entry : fs::directory_iterator(root)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos)
        << "temporary file left: " << entry.path();
  }
}

TEST(BatchMergeTest, RowsSayOkFailedPartialPendingAndTotalsAddUp) {
  const fs::path root = testing::ScratchDir("merge");
  BatchManifest manifest;
  manifest.inputs = Inputs({{"/v/done.mp4", 1},
                            {"/v/bad.mp4", 1},
                            {"/v/half.mp4", 1},
                            {"/v/later.mp4", 1},
                            {"/v/done2.mp4", 1}});
  for (auto& input : manifest.inputs) input.folder = fs::path(input.path).stem().string();
  ASSERT_TRUE(WriteOrCheckManifest(root.string(), manifest).ok());
  WriteText(root / "done" / "summary.json",
            R"({"frames": 10, "roi_results": 30, "calls": 7, "errors": 1, "wall_time_s": 2.5})");
  WriteText(
      root / "done" / "alarms.jsonl",
      R"({"type":"alarm","event":"raise","roi":"boiler","alarm":"high","frame":4,"value":9.5})"
      "\n"
      R"({"type":"alarm","event":"clear","roi":"boiler","alarm":"high","frame":6,"value":5})"
      "\n");
  WriteText(root / "done" / kDoneMarker, R"({"exit_code": 1})");
  WriteText(root / "done2" / "summary.json", R"({"frames": 5, "roi_results": 15, "calls": 2})");
  WriteText(root / "done2" / kDoneMarker, R"({"exit_code": 0})");
  WriteText(root / "bad" / kFailedMarker, R"({"exit_code": 4, "error": "not a readable video"})");
  // Under way: a summary.json without the marker is not final and is not counted.
  WriteText(root / "half" / "summary.json", R"({"frames": 99, "roi_results": 297})");

  auto summary = MergeBatch(root.string());
  ASSERT_TRUE(summary.ok()) << summary.status();
  const auto& files = (*summary)["files"];
  ASSERT_EQ(files.size(), 5u);
  EXPECT_EQ(files[0]["status"], "ok");
  EXPECT_EQ(files[0]["alarms"], 1);
  EXPECT_EQ(files[0]["elapsed_s"], 2.5);
  EXPECT_EQ(files[1]["status"], "failed");
  EXPECT_EQ(files[1]["error"], "not a readable video");
  EXPECT_EQ(files[2]["status"], "partial");
  EXPECT_EQ(files[3]["status"], "pending");
  EXPECT_EQ(files[4]["status"], "ok");
  const auto& totals = (*summary)["totals"];
  EXPECT_EQ(totals["files"], 5);
  EXPECT_EQ(totals["ok"], 2);
  EXPECT_EQ(totals["failed"], 1);
  EXPECT_EQ(totals["partial"], 1);
  EXPECT_EQ(totals["pending"], 1);
  EXPECT_EQ(totals["frames"], 15);
  EXPECT_EQ(totals["roi_results"], 45);
  EXPECT_EQ(totals["errors"], 1);
  EXPECT_EQ(totals["alarms"], 1);
  EXPECT_FALSE((*summary)["complete"].get<bool>());
  ASSERT_EQ((*summary)["alarms"].size(), 1u);
  EXPECT_EQ((*summary)["alarms"][0]["input"], "/v/done.mp4");
  // What was written is what was returned; merging again changes nothing.
  std::ifstream written(root / "summary.json");
  EXPECT_EQ(nlohmann::json::parse(written), *summary);
  auto again = MergeBatch(root.string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *summary);
  std::ifstream report(root / "report.html");
  const std::string html((std::istreambuf_iterator<char>(report)), {});
  EXPECT_NE(html.find("not a readable video"), std::string::npos);
  EXPECT_NE(html.find("done/report.html"), std::string::npos);

  EXPECT_FALSE(MergeBatch((root / "done").string()).ok());  // not a batch root
}

}  // namespace
}  // namespace roilens::cli
