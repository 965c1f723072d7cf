// The local backend over real HTTP on loopback: routes under any prefix, API keys, every
// Google-shaped error, the store, multi-turn history, SSE, fault injection, the echo coder,
// attempts visible as steps, and the sandbox-unavailable path.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>

#include "roilens/backend/coder.h"
#include "roilens/backend/sandbox.h"
#include "roilens/backend/server.h"
#include "testing/backend_fixture.h"

namespace roilens::backend {
namespace {

using nlohmann::json;
using testing::Base64;
using testing::ClientFor;
using testing::EchoBackendOptions;
using testing::ParseSse;
using testing::PostJson;
using testing::StartBackend;
using testing::TestPng;

json ImageRequest(const std::string& text, const std::vector<std::uint8_t>& png) {
  return {{"model", "gemini-3-flash-preview"},
          {"input",
           {{{"type", "text"}, {"text", text}},
            {{"type", "image"}, {"data", Base64(png)}, {"mime_type", "image/png"}}}},
          {"tools", {{{"type", "code_execution"}}}}};
}

json Body(const httplib::Result& res) {
  EXPECT_TRUE(res) << "transport error " << httplib::to_string(res.error());
  if (!res) return json();
  return json::parse(res->body, nullptr, false);
}

std::string FinalText(const json& interaction) {
  std::string text;
  for (const auto& step : interaction["steps"]) {
    if (step["type"] != "model_output") continue;
    text.clear();
    for (const auto& block : step["content"]) {
      if (block["type"] == "text") text += block["text"].get<std::string>();
    }
  }
  return text;
}

json LastJsonLine(const json& interaction) {
  const std::string text = FinalText(interaction);
  return json::parse(text.substr(text.rfind('\n') + 1), nullptr, false);
}

// Asserts the Google error shape and returns the error object.
json ExpectGoogleError(const httplib::Result& res, int http, const std::string& status) {
  EXPECT_TRUE(res);
  if (!res) return json();
  EXPECT_EQ(res->status, http) << res->body;
  EXPECT_NE(res->get_header_value("Content-Type").find("application/json"), std::string::npos);
  json body = json::parse(res->body, nullptr, false);
  EXPECT_TRUE(body.is_object() && body.contains("error")) << res->body;
  if (!body.is_object() || !body.contains("error")) return json();
  const json& error = body["error"];
  EXPECT_EQ(error.value("code", 0), http);
  EXPECT_EQ(error.value("status", ""), status) << res->body;
  EXPECT_FALSE(error.value("message", "").empty());
  EXPECT_TRUE(error.contains("details") && error["details"].is_array());
  return error;
}

TEST(BackendServerTest, EchoAnswersUnderAnyPrefixAndBothVersions) {
  auto backend = StartBackend(EchoBackendOptions());
  ASSERT_TRUE(backend);
  EXPECT_EQ(backend->base_url(), "http://127.0.0.1:" + std::to_string(backend->port()));
  auto client = ClientFor(*backend);
  const auto png = TestPng();
  for (const std::string path :
       {"/v1beta/interactions", "/v1/interactions", "/proxy/gemini/v1beta/interactions"}) {
    SCOPED_TRACE(path);
    auto res = PostJson(*client, path, ImageRequest("Describe this", png));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    json interaction = Body(res);
    EXPECT_EQ(interaction["object"], "interaction");
    EXPECT_EQ(interaction["model"], "gemini-3-flash-preview");
    EXPECT_EQ(interaction["status"], "completed");
    EXPECT_EQ(interaction["id"].get<std::string>().rfind("v1_", 0), 0u);
    EXPECT_TRUE(interaction["created"].get<std::string>().ends_with("Z"));
    ASSERT_GE(interaction["steps"].size(), 2u);
    EXPECT_EQ(interaction["steps"][0]["type"], "thought");
    EXPECT_FALSE(interaction["steps"][0]["signature"].get<std::string>().empty());
    const json& final_step = interaction["steps"].back();
    ASSERT_EQ(final_step["type"], "model_output");
    // The echo coder runs no code, and sends the input image back.
    for (const auto& step : interaction["steps"]) EXPECT_NE(step["type"], "code_execution_call");
    ASSERT_EQ(final_step["content"].size(), 2u);
    EXPECT_EQ(final_step["content"][1]["type"], "image");
    EXPECT_EQ(final_step["content"][1]["data"], Base64(png));
    EXPECT_EQ(final_step["content"][1]["mime_type"], "image/png");
    EXPECT_EQ(LastJsonLine(interaction)["text"], "echo: Describe this");
    const json& usage = interaction["usage"];
    EXPECT_GE(usage["total_input_tokens"].get<int>(), 258);   // one image
    EXPECT_GE(usage["total_output_tokens"].get<int>(), 258);  // the echoed image
    EXPECT_EQ(usage["total_tokens"].get<int>(), usage["total_input_tokens"].get<int>() +
                                                    usage["total_output_tokens"].get<int>() +
                                                    usage["total_tool_use_tokens"].get<int>() +
                                                    usage["total_thought_tokens"].get<int>());
    EXPECT_TRUE(usage["input_tokens_by_modality"].is_array());
  }
}

TEST(BackendServerTest, EchoCoderAnswersFromTheTaskSpec) {
  auto backend = StartBackend(EchoBackendOptions());
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  auto ask = [&](const std::string& prompt) {
    auto res = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", prompt}});
    EXPECT_TRUE(res && res->status == 200);
    return LastJsonLine(Body(res));
  };
  json gauge =
      ask("Read the gauge.\n```json\n{\"task\":\"read_gauge\",\"calibration\":{\"min_value\":2,"
          "\"max_value\":10,\"unit\":\"bar\"}}\n```\nEnd with one JSON line.");
  EXPECT_DOUBLE_EQ(gauge["value"].get<double>(), 6.0);
  EXPECT_EQ(gauge["unit"], "bar");
  EXPECT_DOUBLE_EQ(gauge["confidence"].get<double>(), 0.5);
  json count = ask("Count.\n```json\n{\"task\":\"count\",\"object\":\"bolts\"}\n```");
  EXPECT_EQ(count["count"], 0);
  json other = ask(std::string(200, 'x'));
  EXPECT_EQ(other["text"], "echo: " + std::string(80, 'x'));
}

TEST(BackendServerTest, ApiKeysAreRequiredAndNeverEchoed) {
  auto options = EchoBackendOptions();
  options.api_keys = {"good-key-1", "good-key-2"};
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  const json request = {{"model", "m"}, {"input", "hi"}};

  ExpectGoogleError(PostJson(*client, "/v1beta/interactions", request), 403, "PERMISSION_DENIED");
  auto wrong =
      PostJson(*client, "/v1beta/interactions", request, {{"x-goog-api-key", "secret-but-wrong"}});
  json error = ExpectGoogleError(wrong, 400, "INVALID_ARGUMENT");
  ASSERT_EQ(error["details"].size(), 1u);
  EXPECT_EQ(error["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
  EXPECT_EQ(error["details"][0]["reason"], "API_KEY_INVALID");
  EXPECT_EQ(wrong->body.find("secret-but-wrong"), std::string::npos);

  auto by_header =
      PostJson(*client, "/v1beta/interactions", request, {{"x-goog-api-key", "good-key-2"}});
  ASSERT_TRUE(by_header);
  EXPECT_EQ(by_header->status, 200) << by_header->body;
  EXPECT_EQ(by_header->body.find("good-key"), std::string::npos);
  auto by_query = PostJson(*client, "/v1beta/interactions?key=good-key-1", request);
  ASSERT_TRUE(by_query);
  EXPECT_EQ(by_query->status, 200) << by_query->body;
  // GET is guarded too.
  const std::string id = Body(by_query)["id"];
  ExpectGoogleError(client->Get(("/v1beta/interactions/" + id).c_str()), 403, "PERMISSION_DENIED");
  auto got = client->Get(("/v1beta/interactions/" + id).c_str(),
                         httplib::Headers{{"x-goog-api-key", "good-key-1"}});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
}

TEST(BackendServerTest, WithoutKeysOnlyLoopbackIsServed) {
  auto options = EchoBackendOptions();
  options.host = "0.0.0.0";
  auto backend = LocalBackend::Start(options);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(backend.status().message().find("without API keys"), std::string::npos)
      << backend.status();
}

// Regression: cpp-httplib ignores stop() until its listener runs, so a backend destroyed right
// after Start() used to hang in the destructor's join.
TEST(BackendServerTest, StopRightAfterStartReturns) {
  for (int i = 0; i < 20; ++i) {
    auto backend = LocalBackend::Start(EchoBackendOptions());
    ASSERT_TRUE(backend.ok()) << backend.status();
    (*backend)->Stop();
  }
}

TEST(BackendServerTest, RejectsBadOptions) {
  auto options = EchoBackendOptions();
  options.coder = "gpt";
  EXPECT_EQ(LocalBackend::Start(options).status().code(), StatusCode::kInvalidArgument);
  options = EchoBackendOptions();
  options.faults.rate = 0.5;
  options.faults.kinds = {"418"};
  auto bad_fault = LocalBackend::Start(options);
  ASSERT_FALSE(bad_fault.ok());
  EXPECT_NE(bad_fault.status().message().find("'418'"), std::string::npos);
}

TEST(BackendServerTest, ErrorsAreGoogleShaped) {
  auto options = EchoBackendOptions();
  options.max_request_bytes = 64 * 1024;
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  const std::string path = "/v1beta/interactions";

  auto bad_json = client->Post(path.c_str(), "{\"model\": ", "application/json");
  EXPECT_NE(ExpectGoogleError(bad_json, 400, "INVALID_ARGUMENT")["message"].get<std::string>().find(
                "JSON"),
            std::string::npos);
  auto no_model = PostJson(*client, path, {{"input", "hi"}});
  EXPECT_NE(ExpectGoogleError(no_model, 400, "INVALID_ARGUMENT")["message"].get<std::string>().find(
                "model"),
            std::string::npos);
  auto no_input = PostJson(*client, path, {{"model", "m"}});
  EXPECT_NE(ExpectGoogleError(no_input, 400, "INVALID_ARGUMENT")["message"].get<std::string>().find(
                "input"),
            std::string::npos);
  auto bad_image = PostJson(
      *client, path,
      {{"model", "m"},
       {"input", {{{"type", "image"}, {"data", "not base64!"}, {"mime_type", "image/png"}}}}});
  EXPECT_NE(
      ExpectGoogleError(bad_image, 400, "INVALID_ARGUMENT")["message"].get<std::string>().find(
          "input[0].data"),
      std::string::npos);
  auto unknown_previous = PostJson(
      *client, path, {{"model", "m"}, {"input", "hi"}, {"previous_interaction_id", "v1_nope"}});
  EXPECT_NE(
      ExpectGoogleError(unknown_previous, 404, "NOT_FOUND")["message"].get<std::string>().find(
          "v1_nope"),
      std::string::npos);
  auto oversized = PostJson(*client, path, {{"model", "m"}, {"input", std::string(100000, 'a')}});
  EXPECT_NE(
      ExpectGoogleError(oversized, 413, "INVALID_ARGUMENT")["message"].get<std::string>().find(
          "65536"),
      std::string::npos);
  ExpectGoogleError(client->Get("/v1beta/interactions/v1_unknown"), 404, "NOT_FOUND");
  ExpectGoogleError(client->Delete("/v1beta/interactions/v1_unknown"), 404, "NOT_FOUND");
  ExpectGoogleError(client->Get("/v2/elsewhere"), 404, "NOT_FOUND");
  // The server keeps serving after all of that, on the same connection.
  auto ok = PostJson(*client, path, {{"model", "m"}, {"input", "still here"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(BackendServerTest, StoreServesGetDeleteAndHonoursStoreFalse) {
  auto backend = StartBackend(EchoBackendOptions());
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  const auto png = TestPng();
  json created = Body(PostJson(*client, "/v1beta/interactions", ImageRequest("keep me", png)));
  const std::string id = created["id"];

  auto got = client->Get(("/v1beta/interactions/" + id).c_str());
  ASSERT_TRUE(got);
  ASSERT_EQ(got->status, 200);
  json stored = Body(got);
  EXPECT_EQ(stored["id"], id);
  ASSERT_EQ(stored["steps"][0]["type"], "user_input");
  EXPECT_EQ(stored["steps"][0]["content"][0]["text"], "keep me");
  EXPECT_EQ(stored["steps"][0]["content"][1]["data"], Base64(png));
  EXPECT_EQ(stored["steps"].size(), created["steps"].size() + 1);
  EXPECT_EQ(stored["steps"].back(), created["steps"].back());
  // Without the input, on request.
  json without = Body(client->Get(("/v1beta/interactions/" + id + "?include_input=false").c_str()));
  EXPECT_EQ(without["steps"], created["steps"]);
  // Cancel of a finished interaction answers it as it is.
  auto cancelled =
      client->Post(("/v1beta/interactions/" + id + "/cancel").c_str(), "", "application/json");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 200);
  EXPECT_EQ(Body(cancelled)["status"], "completed");

  auto deleted = client->Delete(("/v1beta/interactions/" + id).c_str());
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->status, 200);
  ExpectGoogleError(client->Get(("/v1beta/interactions/" + id).c_str()), 404, "NOT_FOUND");

  json request = ImageRequest("forget me", png);
  request["store"] = false;
  json unstored = Body(PostJson(*client, "/v1beta/interactions", request));
  EXPECT_EQ(unstored["status"], "completed");
  ExpectGoogleError(
      client->Get(("/v1beta/interactions/" + unstored["id"].get<std::string>()).c_str()), 404,
      "NOT_FOUND");
  ExpectGoogleError(
      PostJson(*client, "/v1beta/interactions",
               {{"model", "m"}, {"input", "next"}, {"previous_interaction_id", unstored["id"]}}),
      404, "NOT_FOUND");
}

TEST(BackendServerTest, StoreEvictsLeastRecentlyUsedAndExpires) {
  auto options = EchoBackendOptions();
  options.store_max_interactions = 2;
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  auto create = [&](const std::string& text) {
    return Body(PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", text}}))["id"]
        .get<std::string>();
  };
  auto status_of = [&](const std::string& id) {
    auto res = client->Get(("/v1beta/interactions/" + id).c_str());
    return res ? res->status : -1;
  };
  const std::string a = create("a"), b = create("b");
  EXPECT_EQ(status_of(a), 200);       // a is now the most recently used
  const std::string c = create("c");  // evicts b
  EXPECT_EQ(status_of(a), 200);
  EXPECT_EQ(status_of(b), 404);
  EXPECT_EQ(status_of(c), 200);

  auto expiring = EchoBackendOptions();
  expiring.store_ttl = std::chrono::seconds(0);  // everything is expired as soon as it is stored
  auto backend2 = StartBackend(expiring);
  ASSERT_TRUE(backend2);
  auto client2 = ClientFor(*backend2);
  json made = Body(PostJson(*client2, "/v1beta/interactions", {{"model", "m"}, {"input", "x"}}));
  ExpectGoogleError(client2->Get(("/v1beta/interactions/" + made["id"].get<std::string>()).c_str()),
                    404, "NOT_FOUND");
}

TEST(BackendServerTest, PreviousInteractionIdCarriesTheConversation) {
  auto backend = StartBackend(EchoBackendOptions());
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  const auto png = TestPng(32, 32);
  json first = Body(PostJson(*client, "/v1beta/interactions", ImageRequest("first", png)));
  json second = Body(
      PostJson(*client, "/v1beta/interactions",
               {{"model", "m"}, {"input", "second"}, {"previous_interaction_id", first["id"]}}));
  ASSERT_EQ(second["status"], "completed") << second.dump();
  EXPECT_EQ(second["previous_interaction_id"], first["id"]);
  // The coder saw both turns' text, and the image of the first turn.
  EXPECT_EQ(LastJsonLine(second)["text"], "echo: first\nsecond");
  EXPECT_EQ(second["steps"].back()["content"][1]["data"], Base64(png));
  EXPECT_GT(second["usage"]["total_input_tokens"], first["usage"]["total_input_tokens"]);
  json third = Body(
      PostJson(*client, "/v1beta/interactions",
               {{"model", "m"}, {"input", "third"}, {"previous_interaction_id", second["id"]}}));
  EXPECT_EQ(LastJsonLine(third)["text"], "echo: first\nsecond\nthird");
}

TEST(BackendServerTest, StatelessStoreFalseReplaysHistoryVerbatim) {
  auto backend = StartBackend(EchoBackendOptions());
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  const auto png = TestPng(16, 16);
  json request = ImageRequest("first", png);
  request["store"] = false;
  json first = Body(PostJson(*client, "/v1beta/interactions", request));
  json history = json::array({{{"type", "user_input"}, {"content", request["input"]}}});
  for (const auto& step : first["steps"]) history.push_back(step);
  // An unknown field in a replayed step is accepted (and the step passes through).
  history.back()["x_future_field"] = {{"kept", true}};
  history.push_back(
      {{"type", "user_input"}, {"content", {{{"type", "text"}, {"text", "second"}}}}});
  json second = Body(PostJson(*client, "/v1beta/interactions",
                              {{"model", "m"}, {"store", false}, {"input", history}}));
  ASSERT_EQ(second["status"], "completed") << second.dump();
  EXPECT_EQ(LastJsonLine(second)["text"], "echo: first\nsecond");
  EXPECT_EQ(second["steps"].back()["content"][1]["data"], Base64(png));
  ExpectGoogleError(
      client->Get(("/v1beta/interactions/" + second["id"].get<std::string>()).c_str()), 404,
      "NOT_FOUND");
}

TEST(BackendServerTest, StreamingSendsTheSdkEventSequence) {
  auto backend = StartBackend(EchoBackendOptions());
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  json request = ImageRequest(std::string(600, 'q') + " long prompt", TestPng());
  request["stream"] = true;
  auto res = PostJson(*client, "/v1beta/interactions", request);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  auto events = ParseSse(res->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back().data, "[DONE]");
  json created = json::parse(events.front().data);
  EXPECT_EQ(created["event_type"], "interaction.created");
  EXPECT_EQ(created["interaction"]["status"], "in_progress");
  json completed = json::parse(events[events.size() - 2].data);
  ASSERT_EQ(completed["event_type"], "interaction.completed");
  const json& interaction = completed["interaction"];
  EXPECT_EQ(interaction["id"], created["interaction"]["id"]);
  EXPECT_EQ(interaction["status"], "completed");

  // Rebuild the steps from start/delta/stop and compare with the completed interaction.
  json rebuilt = json::array();
  int open_index = -1;
  for (std::size_t i = 1; i + 2 < events.size(); ++i) {
    json e = json::parse(events[i].data);
    EXPECT_EQ(events[i].event, e["event_type"]);
    const std::string type = e["event_type"];
    if (type == "step.start") {
      EXPECT_EQ(open_index, -1) << "step.start before the previous step.stop";
      open_index = e["index"];
      EXPECT_EQ(open_index, static_cast<int>(rebuilt.size()));
      rebuilt.push_back(e["step"]);
    } else if (type == "step.delta") {
      ASSERT_EQ(e["index"], open_index);
      json& step = rebuilt.back();
      const json& d = e["delta"];
      if (d["type"] == "text") {
        if (step["content"].empty() || step["content"].back()["type"] != "text") {
          step["content"].push_back({{"type", "text"}, {"text", ""}});
        }
        step["content"].back()["text"] =
            step["content"].back()["text"].get<std::string>() + d["text"].get<std::string>();
      } else if (d["type"] == "image") {
        step["content"].push_back(d);
      } else if (d["type"] == "thought_summary") {
        step["summary"].push_back(d["content"]);
      } else if (d["type"] == "thought_signature") {
        step["signature"] = d["signature"];
      }
    } else if (type == "step.stop") {
      EXPECT_EQ(e["index"], open_index);
      open_index = -1;
    } else {
      EXPECT_EQ(type, "interaction.status_update");
    }
  }
  EXPECT_EQ(rebuilt, interaction["steps"]);
  EXPECT_GT(events.size(), 8u) << "long text should arrive in several deltas";
}

// A coder that answers only once the client has seen the turn's first step: a server that
// renders the stream after the turn is done can never release it.
class WaitsForTheClientCoder final : public Coder {
 public:
  explicit WaitsForTheClientCoder(std::shared_future<void> client_saw_first_step)
      : client_saw_first_step_(std::move(client_saw_first_step)) {}
  CoderProgram Write(const CoderInput&, int, const std::vector<CoderObservation>&) override {
    return {};
  }
  std::string Answer(const CoderInput&, const std::vector<CoderObservation>&) override {
    // A liveness bound, not a timing assertion: without incremental streaming this never fires.
    const bool released =
        client_saw_first_step_.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
    return released ? "{\"text\": \"released\"}" : "{\"text\": \"not streamed\"}";
  }
  bool ExecutesCode() const override { return false; }

 private:
  std::shared_future<void> client_saw_first_step_;
};

std::unique_ptr<LocalBackend> StartWaitingBackend(std::shared_future<void> release) {
  auto options = EchoBackendOptions();
  options.coder_factory = [release] { return std::make_unique<WaitsForTheClientCoder>(release); };
  return StartBackend(options);
}

// Streams an image request and returns the whole stream; `on_first_step(so_far)` runs once, as
// soon as the first step.stop event has arrived (while the turn is still running).
std::string StreamRequest(LocalBackend& backend,
                          const std::function<void(const std::string&)>& on_first_step) {
  json body = ImageRequest("read it", TestPng());
  body["stream"] = true;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1beta/interactions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string received;
  bool first_step_seen = false;
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    received.append(data, n);
    if (!first_step_seen && received.find("\"event_type\":\"step.stop\"") != std::string::npos) {
      first_step_seen = true;
      on_first_step(received);
    }
    return true;
  };
  auto res = ClientFor(backend)->send(req);
  EXPECT_TRUE(res) << httplib::to_string(res.error());
  if (res) {
    EXPECT_EQ(res->status, 200);
  }
  EXPECT_TRUE(first_step_seen) << "no step.stop arrived:\n" << received;
  return received;
}

TEST(BackendServerTest, StreamingSendsEachStepBeforeTheTurnEnds) {
  std::promise<void> saw_first_step;
  auto backend = StartWaitingBackend(saw_first_step.get_future().share());
  ASSERT_TRUE(backend);
  const std::string received = StreamRequest(*backend, [&](const std::string& so_far) {
    EXPECT_EQ(so_far.find("interaction.completed"), std::string::npos);
    saw_first_step.set_value();
  });

  auto events = ParseSse(received);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back().data, "[DONE]");
  json completed = json::parse(events[events.size() - 2].data);
  ASSERT_EQ(completed["event_type"], "interaction.completed");
  EXPECT_EQ(FinalText(completed["interaction"]), "{\"text\": \"released\"}");
  int expected_id = 0;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {  // ids stay one sequence across the turn
    EXPECT_EQ(json::parse(events[i].data)["event_id"], "evt_" + std::to_string(++expected_id));
  }
}

TEST(BackendServerTest, CancelStopsARunningTurnBeforeItsNextStep) {
  std::promise<void> cancel_answered;
  auto backend = StartWaitingBackend(cancel_answered.get_future().share());
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  std::string id;
  json cancel_reply;
  const std::string received = StreamRequest(*backend, [&](const std::string& so_far) {
    id = json::parse(ParseSse(so_far).front().data)["interaction"]["id"];
    auto res =
        client->Post(("/v1beta/interactions/" + id + "/cancel").c_str(), "", "application/json");
    if (res && res->status == 200) cancel_reply = json::parse(res->body);
    cancel_answered.set_value();  // the coder finishes its answer; the turn must not send it
  });
  ASSERT_FALSE(id.empty()) << received;
  EXPECT_EQ(cancel_reply["status"], "cancelled") << cancel_reply.dump();
  EXPECT_EQ(cancel_reply["id"], id);

  auto events = ParseSse(received);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back().data, "[DONE]");
  json completed = json::parse(events[events.size() - 2].data);
  ASSERT_EQ(completed["event_type"], "interaction.completed");
  EXPECT_EQ(completed["interaction"]["status"], "cancelled");
  ASSERT_EQ(completed["interaction"]["steps"].size(), 1u) << "only the thought was sent";
  EXPECT_EQ(completed["interaction"]["steps"][0]["type"], "thought");
  EXPECT_EQ(received.find("released"), std::string::npos) << "the answer was sent after cancel";

  // The stored interaction says the same; cancelling it again answers it as it is.
  json stored = Body(client->Get(("/v1beta/interactions/" + id).c_str()));
  EXPECT_EQ(stored["status"], "cancelled");
  json again = Body(
      client->Post(("/v1beta/interactions/" + id + "/cancel").c_str(), "", "application/json"));
  EXPECT_EQ(again["status"], "cancelled");
}

// ---- faults ---------------------------------------------------------------------------------

std::unique_ptr<LocalBackend> FaultyBackend(const std::string& kind) {
  auto options = EchoBackendOptions();
  options.faults.rate = 1.0;
  options.faults.kinds = {kind};
  options.faults.retry_delay = std::chrono::milliseconds(1500);
  return StartBackend(options);
}

TEST(BackendFaultsTest, Injects429WithRetryDelay) {
  auto backend = FaultyBackend("429");
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  auto res = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "x"}});
  json error = ExpectGoogleError(res, 429, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(res->get_header_value("Retry-After"), "2");
  EXPECT_EQ(res->get_header_value("retry-after-ms"), "1500");
  ASSERT_EQ(error["details"].size(), 1u);
  EXPECT_EQ(error["details"][0]["@type"], "type.googleapis.com/google.rpc.RetryInfo");
  EXPECT_EQ(error["details"][0]["retryDelay"], "1.500s");
}

TEST(BackendFaultsTest, Injects500And503) {
  for (auto [kind, status] : {std::pair{"500", "INTERNAL"}, {"503", "UNAVAILABLE"}}) {
    auto backend = FaultyBackend(kind);
    ASSERT_TRUE(backend);
    auto client = ClientFor(*backend);
    ExpectGoogleError(PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "x"}}),
                      std::stoi(kind), status);
  }
}

TEST(BackendFaultsTest, InjectsGarbageBody) {
  auto backend = FaultyBackend("garbage");
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  auto res = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "x"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(json::parse(res->body, nullptr, false).is_discarded()) << res->body;
}

TEST(BackendFaultsTest, InjectsConnectionReset) {
  auto backend = FaultyBackend("reset");
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  for (int i = 0; i < 3; ++i) {
    auto res = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "x"}});
    EXPECT_FALSE(res) << "expected a transport error, got HTTP " << res->status;
  }
}

TEST(BackendFaultsTest, SlowBodyStillArrivesWhole) {
  auto backend = FaultyBackend("slow");
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  auto res = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "slowly"}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  json interaction = Body(res);
  EXPECT_EQ(LastJsonLine(interaction)["text"], "echo: slowly");
  EXPECT_EQ(res->get_header_value("Content-Length"), std::to_string(res->body.size()));
}

TEST(BackendFaultsTest, InjectsTruncatedJsonWithAMatchingContentLength) {
  auto backend = FaultyBackend("truncated");
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  auto res = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "x"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Length"), std::to_string(res->body.size()));
  EXPECT_EQ(res->body.rfind(R"({"id":)", 0), 0u) << "an interaction's start: " << res->body;
  EXPECT_TRUE(json::parse(res->body, nullptr, false).is_discarded()) << res->body;
}

TEST(BackendFaultsTest, StallStillAnswersWhole) {
  auto backend = FaultyBackend("stall");
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  auto res = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "stalled"}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(LastJsonLine(Body(res))["text"], "echo: stalled");
}

TEST(BackendFaultsTest, UnknownFaultKindNamesTheKnownOnes) {
  auto options = EchoBackendOptions();
  options.faults.rate = 0.5;
  options.faults.kinds = {"truncate"};
  auto started = LocalBackend::Start(options);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("truncated, stall"), std::string::npos)
      << started.status();
}

TEST(BackendFaultsTest, SameSeedSameFaultSequence) {
  auto sequence = [](std::uint32_t seed) {
    auto options = EchoBackendOptions();
    options.faults.rate = 0.5;
    options.faults.kinds = {"429", "500", "503"};
    options.faults.retry_delay = std::chrono::milliseconds(0);
    options.faults.seed = seed;
    auto backend = StartBackend(options);
    auto client = ClientFor(*backend);
    std::vector<int> codes;
    for (int i = 0; i < 24; ++i) {
      auto res = PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "x"}});
      codes.push_back(res ? res->status : -1);
    }
    return codes;
  };
  const auto first = sequence(7);
  EXPECT_EQ(first, sequence(7));
  EXPECT_NE(std::count(first.begin(), first.end(), 200), 0);
  EXPECT_NE(std::count(first.begin(), first.end(), 200), 24);
}

// ---- code execution -------------------------------------------------------------------------

// A coder whose first `failures` programs exit non-zero; later ones print an answer and copy the
// input image to result.png.
class FlakyCoder final : public Coder {
 public:
  explicit FlakyCoder(int failures) : failures_(failures) {}
  CoderProgram Write(const CoderInput& input, int attempt,
                     const std::vector<CoderObservation>& history) override {
    EXPECT_EQ(history.size(), static_cast<std::size_t>(attempt));
    EXPECT_EQ(input.images.size(), 1u);
    if (attempt < failures_) {
      return {"Attempt " + std::to_string(attempt) + " (will fail)",
              "import sys\nprint('trying')\nsys.exit('boom " + std::to_string(attempt) + "')\n"};
    }
    return {"Attempt " + std::to_string(attempt) + " (works)",
            "import shutil\nshutil.copy('input_0.png', 'result.png')\nprint('{\"ok\": 1}')\n"};
  }
  std::string Answer(const CoderInput&, const std::vector<CoderObservation>& history) override {
    return "Done after " + std::to_string(history.size()) + " attempts.\n{\"text\": \"ok\"}";
  }

 private:
  int failures_;
};

// Probed once per binary: creating a sandbox starts warm interpreters and runs a self-test.
bool SandboxAvailable(std::string* why) {
  static const std::string reason = [] {
    auto sandbox = Sandbox::Create(SandboxOptions{});
    return sandbox.ok() ? std::string() : sandbox.status().ToString();
  }();
  *why = reason;
  return reason.empty();
}

TEST(BackendCodeTest, FailedAttemptsAreVisibleAsSteps) {
  std::string why;
  if (!SandboxAvailable(&why)) GTEST_SKIP() << "sandbox unavailable here: " << why;
  auto options = EchoBackendOptions();
  options.coder_factory = [] { return std::make_unique<FlakyCoder>(2); };
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  EXPECT_NE(backend->Describe().find("coder=custom"), std::string::npos);
  auto client = ClientFor(*backend);
  const auto png = TestPng();
  json interaction = Body(PostJson(*client, "/v1beta/interactions", ImageRequest("go", png)));
  ASSERT_EQ(interaction["status"], "completed") << interaction.dump(1);
  std::vector<json> calls, results;
  for (const auto& step : interaction["steps"]) {
    if (step["type"] == "code_execution_call") calls.push_back(step);
    if (step["type"] == "code_execution_result") results.push_back(step);
  }
  ASSERT_EQ(calls.size(), 3u);
  ASSERT_EQ(results.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i]["call_id"], calls[i]["id"]);
    EXPECT_EQ(calls[i]["arguments"]["language"], "python");
    EXPECT_FALSE(calls[i]["signature"].get<std::string>().empty());
    EXPECT_EQ(results[i]["is_error"], i < 2) << results[i].dump();
  }
  EXPECT_NE(results[0]["result"].get<std::string>().find("boom 0"), std::string::npos)
      << results[0].dump();
  EXPECT_NE(results[2]["result"].get<std::string>().find("{\"ok\": 1}"), std::string::npos);
  const json& final_step = interaction["steps"].back();
  EXPECT_EQ(FinalText(interaction), "Done after 3 attempts.\n{\"text\": \"ok\"}");
  ASSERT_EQ(final_step["content"].size(), 2u);
  EXPECT_EQ(final_step["content"][1]["data"], Base64(png));  // the copied image came back
  EXPECT_GT(interaction["usage"]["total_tool_use_tokens"].get<int>(), 0);
}

TEST(BackendCodeTest, AllAttemptsFailingIsAFailedInteractionWithSteps) {
  std::string why;
  if (!SandboxAvailable(&why)) GTEST_SKIP() << "sandbox unavailable here: " << why;
  auto options = EchoBackendOptions();
  options.max_attempts = 2;
  options.coder_factory = [] { return std::make_unique<FlakyCoder>(99); };
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  json interaction = Body(PostJson(*client, "/v1beta/interactions", ImageRequest("go", TestPng())));
  EXPECT_EQ(interaction["status"], "failed");
  int calls = 0;
  for (const auto& step : interaction["steps"]) calls += step["type"] == "code_execution_call";
  EXPECT_EQ(calls, 2);
  EXPECT_NE(FinalText(interaction).find("failed in all 2 attempt(s)"), std::string::npos)
      << FinalText(interaction);
  EXPECT_EQ(interaction["steps"].back()["content"].size(), 1u);  // no image from a failed run
}

TEST(BackendCodeTest, WithoutTheToolNoCodeRuns) {
  std::atomic<int> writes{0};
  class CountingCoder final : public Coder {
   public:
    explicit CountingCoder(std::atomic<int>* writes) : writes_(writes) {}
    CoderProgram Write(const CoderInput&, int, const std::vector<CoderObservation>&) override {
      ++*writes_;
      return {"plan", "print(1)"};
    }
    std::string Answer(const CoderInput&, const std::vector<CoderObservation>& h) override {
      return "answered with " + std::to_string(h.size()) + " runs";
    }

   private:
    std::atomic<int>* writes_;
  };
  auto options = EchoBackendOptions();
  options.sandbox.bwrap = "/nonexistent/bwrap";  // not needed without the tool
  options.coder_factory = [&writes] { return std::make_unique<CountingCoder>(&writes); };
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  auto client = ClientFor(*backend);
  json interaction =
      Body(PostJson(*client, "/v1beta/interactions", {{"model", "m"}, {"input", "hi"}}));
  EXPECT_EQ(interaction["status"], "completed");
  EXPECT_EQ(FinalText(interaction), "answered with 0 runs");
  EXPECT_EQ(writes.load(), 0);
}

TEST(BackendCodeTest, SandboxUnavailableRefusesCodeExecutionClearly) {
  auto options = EchoBackendOptions();
  options.coder = "cv";
  options.sandbox.bwrap = "/nonexistent/bwrap";
  auto backend = StartBackend(options);
  ASSERT_TRUE(backend);
  EXPECT_NE(backend->Describe().find("UNAVAILABLE"), std::string::npos) << backend->Describe();
  auto client = ClientFor(*backend);
  auto res = PostJson(*client, "/v1beta/interactions", ImageRequest("read it", TestPng()));
  json error = ExpectGoogleError(res, 400, "FAILED_PRECONDITION");
  const std::string message = error.value("message", "");
  EXPECT_NE(message.find("sandbox"), std::string::npos) << message;
  EXPECT_NE(message.find("never run unsandboxed"), std::string::npos) << message;
  ASSERT_FALSE(error["details"].empty());
  EXPECT_EQ(error["details"][0]["reason"], "SANDBOX_UNAVAILABLE");
  // Streaming requests are refused the same way, before the stream starts.
  json streaming = ImageRequest("read it", TestPng());
  streaming["stream"] = true;
  ExpectGoogleError(PostJson(*client, "/v1beta/interactions", streaming), 400,
                    "FAILED_PRECONDITION");
}

}  // namespace
}  // namespace roilens::backend
