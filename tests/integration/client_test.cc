// InteractionsClient against in-process HTTP servers on 127.0.0.1: success with every step type,
// each error class, retry schedules (recorded through the sleeper), server-given delays,
// deadlines, cancellation, malformed bodies, refused connections, concurrency with a bounded
// thread count, connection reuse, multi-turn helpers, and an API key that never leaks.
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>
#include <opencv2/imgcodecs.hpp>

#include "roilens/client/interactions_client.h"
#include "testing/http_fixture.h"

namespace roilens {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::Gate;
using ::testing::HasSubstr;
using testing::HttpFixtureServer;
using ::testing::Not;

constexpr char kKey[] = "AIzaSyROILENS-test-key-0123456789-zQ";
constexpr char kPath[] = "/v1beta/interactions";

std::string PngBase64() {
  cv::Mat img(6, 10, CV_8UC3, cv::Scalar(0, 0, 255));
  std::vector<std::uint8_t> png;
  cv::imencode(".png", img, png);
  return wire::Base64Encode(png.data(), png.size());
}

// A response with every documented step type, plus fields the model does not know.
json EveryStepResponse() {
  return {
      {"id", "v1_every"},
      {"status", "completed"},
      {"object", "interaction"},
      {"model", "gemini-3-flash-preview"},
      {"created", "2026-05-20T10:00:00Z"},
      {"updated", "2026-05-20T10:00:02Z"},
      {"unknown_top", {{"kept", true}}},
      {"steps",
       json::array({
           {{"type", "thought"}, {"signature", "dGhvdWdodC1zaWc="}, {"summary", "thinking"}},
           {{"type", "model_output"}, {"content", {{{"type", "text"}, {"text", "Running."}}}}},
           {{"type", "code_execution_call"},
            {"id", "exec_1"},
            {"signature", "Y2FsbC1zaWc="},
            {"arguments", {{"code", "print(6*7)"}, {"language", "python"}}}},
           {{"type", "code_execution_result"},
            {"call_id", "exec_1"},
            {"result", "42\n"},
            {"is_error", false},
            {"signature", "cmVzdWx0LXNpZw=="}},
           {{"type", "model_output"},
            {"content",
             {{{"type", "image"}, {"data", PngBase64()}, {"mime_type", "image/png"}},
              {{"type", "text"}, {"text", "Answer: {\"value\": 42, \"unit\": \"psi\"}"}}}}},
       })},
      {"usage",
       {{"total_input_tokens", 270},
        {"total_output_tokens", 40},
        {"total_tool_use_tokens", 9},
        {"total_tokens", 319}}},
  };
}

json GoogleErrorBody(int code, const std::string& status, const std::string& message,
                     json details = json::array()) {
  return {
      {"error", {{"code", code}, {"message", message}, {"status", status}, {"details", details}}}};
}

wire::InteractionRequest SimpleRequest(const std::string& text = "read the gauge") {
  wire::InteractionRequest r;
  r.model = "gemini-3-flash-preview";
  r.input = std::vector<wire::ContentBlock>{wire::ContentBlock::Text(text)};
  r.tools.push_back({{"type", "code_execution"}});
  return r;
}

int ProcessThreadCount() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
  }
  return n;
}

// Records the delays the client would have waited.
struct DelayLog {
  std::mutex mu;
  std::vector<milliseconds> delays;
  Sleeper sleeper() {
    return [this](milliseconds d) {
      std::lock_guard lock(mu);
      delays.push_back(d);
    };
  }
  std::vector<milliseconds> get() {
    std::lock_guard lock(mu);
    return delays;
  }
};

class ClientTest : public ::testing::Test {
 protected:
  ClientOptions Options() {
    ClientOptions o;
    o.base_url = server_.base_url();
    o.api_key = kKey;
    o.max_retries = 3;
    o.initial_backoff = milliseconds(100);
    o.max_backoff = milliseconds(1000);
    o.request_timeout = milliseconds(20000);
    // cpp-httplib parks a worker on every kept-alive connection: never have more connections
    // in use than the server has workers, or requests queue behind idle connections.
    o.max_in_flight = 8;
    o.sleeper = delays_.sleeper();
    return o;
  }
  std::unique_ptr<InteractionsClient> MakeClient(ClientOptions o) {
    auto c = InteractionsClient::Create(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
  void Start() { ASSERT_TRUE(server_.Start()); }

  // Declaration order matters: the gate is destroyed (opened) before the server stops, and the
  // client (declared in each test body) before both.
  HttpFixtureServer server_{8};
  Gate gate_;
  DelayLog delays_;
};

TEST_F(ClientTest, SuccessWithEveryStepType) {
  server_.server().Post(kPath, [](const httplib::Request&, httplib::Response& res) {
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());
  auto attempts = std::make_shared<std::atomic<int>>(0);
  CallOptions call;
  call.attempts = attempts;
  auto result = client->CreateInteraction(SimpleRequest(), call).get();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(attempts->load(), 1);

  const wire::Interaction& i = *result;
  EXPECT_EQ(i.id, "v1_every");
  ASSERT_EQ(i.steps.size(), 5u);
  EXPECT_EQ(i.steps[0].signature, "dGhvdWdodC1zaWc=");
  EXPECT_EQ(i.FinalText(), "Answer: {\"value\": 42, \"unit\": \"psi\"}");
  auto answer = i.LastJsonObject();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)["value"], 42);
  auto images = i.OutputImages();
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].size(), cv::Size(10, 6));
  auto runs = i.CodeRuns();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].code, "print(6*7)");
  EXPECT_EQ(runs[0].result, "42\n");
  ASSERT_TRUE(i.usage.has_value());
  EXPECT_EQ(i.usage->total_tokens, 319);
  EXPECT_EQ(json(i), EveryStepResponse()) << "the parsed interaction must round-trip verbatim";

  // What went over the wire.
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].path, kPath);
  EXPECT_EQ(reqs[0].Header("x-goog-api-key"), kKey);
  EXPECT_EQ(reqs[0].Header("Api-Revision"), "2026-05-20");
  EXPECT_EQ(reqs[0].Header("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(reqs[0].body), json::parse(wire::SerializeRequest(SimpleRequest())));
}

TEST_F(ClientTest, CallbackRunsOffTheCallersThread) {
  server_.server().Post(kPath, [](const httplib::Request&, httplib::Response& res) {
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());
  std::promise<std::thread::id> ran_on;
  client->CreateInteraction(SimpleRequest(),
                            [&](StatusOr<wire::Interaction> r) {
                              EXPECT_TRUE(r.ok()) << r.status();
                              ran_on.set_value(std::this_thread::get_id());
                            },
                            {});
  EXPECT_NE(ran_on.get_future().get(), std::this_thread::get_id());
}

TEST_F(ClientTest, GetAndDeleteUseTheirVerbsAndPaths) {
  server_.server().Get(
      R"(/v1beta/interactions/([^/]+))", [](const httplib::Request& req, httplib::Response& res) {
        if (req.matches[1] != "v1_every") {
          res.status = 404;
          res.set_content(GoogleErrorBody(404, "NOT_FOUND", "no such interaction").dump(),
                          "application/json");
          return;
        }
        res.set_content(EveryStepResponse().dump(), "application/json");
      });
  server_.server().Delete(R"(/v1beta/interactions/([^/]+))",
                          [](const httplib::Request&, httplib::Response& res) {
                            res.set_content("{}", "application/json");
                          });
  Start();
  auto client = MakeClient(Options());
  auto got = client->GetInteraction("v1_every").get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, "v1_every");
  auto missing = client->GetInteraction("v1 missing?x#y").get();
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().http_status(), 404);
  EXPECT_THAT(missing.status().message(), HasSubstr("no such interaction"));
  EXPECT_TRUE(client->DeleteInteraction("v1_every").get().ok());
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  // httplib decodes the path: the whole id arriving (not cut at '?' or '#') shows it was escaped.
  EXPECT_EQ(reqs[1].path, "/v1beta/interactions/v1 missing?x#y");
  EXPECT_EQ(reqs[2].method, "DELETE");
  EXPECT_TRUE(delays_.get().empty()) << "404 is not retried";
}

struct ErrorCase {
  int http;
  const char* status;
  const char* reason;  // ErrorInfo reason or ""
  StatusCode code;
  bool retried;
};

class ClientErrorTest : public ClientTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(ClientErrorTest, MapsToStatusAndRetriesOnlyTransientErrors) {
  const ErrorCase c = GetParam();
  server_.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
    json details = json::array();
    if (*c.reason) {
      details.push_back({{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                         {"reason", c.reason},
                         {"domain", "googleapis.com"}});
    }
    if (c.http == 429) {
      details.push_back(
          {{"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", "2s"}});
    }
    res.status = c.http;
    res.set_content(
        GoogleErrorBody(c.http, c.status, std::string("server says ") + c.status, details).dump(),
        "application/json");
  });
  Start();
  auto options = Options();
  options.max_retries = 2;
  auto client = MakeClient(options);
  auto attempts = std::make_shared<std::atomic<int>>(0);
  CallOptions call;
  call.attempts = attempts;
  auto result = client->CreateInteraction(SimpleRequest(), call).get();
  ASSERT_FALSE(result.ok());
  const Status& s = result.status();
  EXPECT_EQ(s.code(), c.code) << s;
  EXPECT_EQ(s.http_status(), c.http);
  EXPECT_EQ(s.reason(), c.reason);
  EXPECT_THAT(s.message(), HasSubstr(std::string("server says ") + c.status));
  EXPECT_THAT(s.message(), HasSubstr("POST /v1beta/interactions"));
  EXPECT_THAT(s.message(), Not(HasSubstr(kKey)));
  const int want_attempts = c.retried ? 3 : 1;
  EXPECT_EQ(attempts->load(), want_attempts);
  EXPECT_EQ(server_.request_count(), static_cast<std::size_t>(want_attempts));
  EXPECT_EQ(delays_.get().size(), static_cast<std::size_t>(want_attempts - 1));
  if (c.http == 429) {
    EXPECT_THAT(delays_.get(), ::testing::Each(milliseconds(2000))) << "RetryInfo honoured";
  }
  if (c.retried) {
    EXPECT_THAT(s.message(), HasSubstr("after 3 attempts"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    EachErrorClass, ClientErrorTest,
    ::testing::Values(ErrorCase{400, "INVALID_ARGUMENT", "API_KEY_INVALID",
                                StatusCode::kInvalidArgument, false},
                      ErrorCase{403, "PERMISSION_DENIED", "", StatusCode::kPermissionDenied, false},
                      ErrorCase{404, "NOT_FOUND", "", StatusCode::kNotFound, false},
                      ErrorCase{429, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED",
                                StatusCode::kResourceExhausted, true},
                      ErrorCase{500, "INTERNAL", "", StatusCode::kInternal, true},
                      ErrorCase{503, "UNAVAILABLE", "", StatusCode::kUnavailable, true},
                      ErrorCase{504, "DEADLINE_EXCEEDED", "", StatusCode::kDeadlineExceeded, true}),
    [](const auto& info) { return std::to_string(info.param.http); });

TEST_F(ClientTest, NonGoogleErrorBodyStillGivesAStatus) {
  server_.server().Post(kPath, [](const httplib::Request&, httplib::Response& res) {
    res.status = 502;
    res.set_content("<html>Bad Gateway</html>", "text/html");
  });
  Start();
  auto o = Options();
  o.max_retries = 0;
  auto result = MakeClient(o)->CreateInteraction(SimpleRequest()).get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().http_status(), 502);
  EXPECT_EQ(result.status().code(), StatusCode::kInternal);
  EXPECT_THAT(result.status().message(), HasSubstr("Bad Gateway"));
}

TEST_F(ClientTest, RetryScheduleIsJitteredExponentialThenSucceeds) {
  std::atomic<int> calls{0};
  server_.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
    if (++calls <= 3) {
      res.status = 503;
      res.set_content(GoogleErrorBody(503, "UNAVAILABLE", "overloaded").dump(), "application/json");
      return;
    }
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());  // initial 100 ms, max 1000 ms, 3 retries
  auto result = client->CreateInteraction(SimpleRequest()).get();
  ASSERT_TRUE(result.ok()) << result.status();
  auto d = delays_.get();
  ASSERT_EQ(d.size(), 3u);
  // Attempt n waits uniformly in [100*2^n / 2, 100*2^n].
  for (int n = 0; n < 3; ++n) {
    const auto upper = milliseconds(100 << n);
    EXPECT_GE(d[n], upper / 2) << n;
    EXPECT_LE(d[n], upper) << n;
  }
  EXPECT_EQ(client->stats().attempts, 4);
  EXPECT_EQ(client->stats().retries, 3);
  EXPECT_EQ(client->stats().requests, 1);
}

TEST_F(ClientTest, ServerGivenDelaysWinOverBackoff) {
  std::atomic<int> calls{0};
  server_.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
    switch (++calls) {
      case 1:  // Retry-After in seconds
        res.status = 429;
        res.set_header("Retry-After", "3");
        res.set_content(GoogleErrorBody(429, "RESOURCE_EXHAUSTED", "slow down").dump(),
                        "application/json");
        return;
      case 2:  // retry-after-ms beats Retry-After
        res.status = 503;
        res.set_header("retry-after-ms", "1234");
        res.set_header("Retry-After", "9");
        res.set_content("unavailable", "text/plain");
        return;
      case 3:  // RetryInfo in the body
        res.status = 429;
        res.set_content(GoogleErrorBody(429, "RESOURCE_EXHAUSTED", "quota",
                                        {{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                          {"retryDelay", "1.5s"}}})
                            .dump(),
                        "application/json");
        return;
      default:
        res.set_content(EveryStepResponse().dump(), "application/json");
    }
  });
  Start();
  auto client = MakeClient(Options());
  auto result = client->CreateInteraction(SimpleRequest()).get();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(delays_.get(),
              ::testing::ElementsAre(milliseconds(3000), milliseconds(1234), milliseconds(1500)));
}

TEST_F(ClientTest, DeadlineHitWhileTheServerHoldsTheResponse) {
  std::promise<void> arrived;
  std::atomic<bool> once{false};
  server_.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
    if (!once.exchange(true)) arrived.set_value();
    gate_.Wait();  // released at teardown
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());
  CallOptions call;
  call.deadline = milliseconds(200);
  auto future = client->CreateInteraction(SimpleRequest(), call);
  arrived.get_future().wait();
  auto result = future.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("deadline of 200 ms"));
  EXPECT_EQ(server_.request_count(), 1u) << "a deadline is final: no retry";
  EXPECT_TRUE(delays_.get().empty());
}

TEST_F(ClientTest, DeadlineShorterThanTheServerDelayFailsWithoutWaiting) {
  server_.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
    res.status = 429;
    res.set_header("Retry-After", "60");
    res.set_content(GoogleErrorBody(429, "RESOURCE_EXHAUSTED", "come back in a minute").dump(),
                    "application/json");
  });
  Start();
  auto o = Options();
  o.sleeper = nullptr;  // the real timer path: it must not wait the 60 s
  auto client = MakeClient(o);
  CallOptions call;
  call.deadline = milliseconds(5000);
  auto result = client->CreateInteraction(SimpleRequest(), call).get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("come back in a minute"));
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(ClientTest, RealTimerBackoffRetries) {
  std::atomic<int> calls{0};
  server_.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
    if (++calls == 1) {
      res.status = 500;
      res.set_header("retry-after-ms", "10");
      res.set_content(GoogleErrorBody(500, "INTERNAL", "hiccup").dump(), "application/json");
      return;
    }
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto o = Options();
  o.sleeper = nullptr;
  auto result = MakeClient(o)->CreateInteraction(SimpleRequest()).get();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(ClientTest, CancellationWhileInFlight) {
  std::promise<void> arrived;
  server_.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
    arrived.set_value();
    gate_.Wait();
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());
  CallOptions call;
  call.cancel = std::make_shared<std::atomic<bool>>(false);
  auto future = client->CreateInteraction(SimpleRequest(), call);
  arrived.get_future().wait();
  call.cancel->store(true);
  auto result = future.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(client->stats().in_flight, 0);
}

TEST_F(ClientTest, CancelledBeforeStartNeverReachesTheServer) {
  server_.server().Post(kPath, [](const httplib::Request&, httplib::Response& res) {
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());
  CallOptions call;
  call.cancel = std::make_shared<std::atomic<bool>>(true);
  auto result = client->CreateInteraction(SimpleRequest(), call).get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(ClientTest, DestroyingTheClientCancelsOutstandingCalls) {
  std::promise<void> arrived;
  server_.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
    arrived.set_value();
    gate_.Wait();
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());
  auto future = client->CreateInteraction(SimpleRequest());
  arrived.get_future().wait();
  client.reset();
  auto result = future.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCancelled);
  EXPECT_THAT(result.status().message(), HasSubstr("destroyed"));
}

struct MalformedCase {
  const char* body;
  StatusCode code;
  const char* mentions;
};

TEST_F(ClientTest, MalformedSuccessBodiesAreErrorsNotCrashes) {
  const MalformedCase kCases[] = {
      {"this is not json", StatusCode::kDataLoss, "not valid JSON"},
      {R"({"id":"v1_x","status":"completed","steps":[{"type":"model_out)", StatusCode::kDataLoss,
       "truncated"},
      {R"([{"id":"v1_x"}])", StatusCode::kInternal, "expected object, got array"},
      {R"({"id":"v1_x","steps":"none"})", StatusCode::kInternal, "steps: expected array"},
      {"", StatusCode::kDataLoss, "truncated"},
  };
  std::atomic<int> which{0};
  server_.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(kCases[which.load()].body, "application/json");
  });
  Start();
  auto o = Options();
  o.max_retries = 2;
  auto client = MakeClient(o);
  for (int i = 0; i < static_cast<int>(std::size(kCases)); ++i) {
    which = i;
    const std::size_t delays_before = delays_.get().size();
    auto result = client->CreateInteraction(SimpleRequest()).get();
    ASSERT_FALSE(result.ok()) << kCases[i].body;
    EXPECT_EQ(result.status().code(), kCases[i].code) << result.status();
    EXPECT_EQ(result.status().http_status(), 200);
    EXPECT_THAT(result.status().message(), HasSubstr(kCases[i].mentions));
    // A body that does not parse is retried like a 503; one with the wrong shape is not.
    const bool retried = kCases[i].code == StatusCode::kDataLoss;
    EXPECT_EQ(delays_.get().size() - delays_before, retried ? 2u : 0u) << kCases[i].body;
    if (retried) {
      EXPECT_THAT(result.status().message(), HasSubstr("after 3 attempts"));
    }
  }
}

TEST_F(ClientTest, GarbageOrTruncatedSuccessIsRetriedThenSucceeds) {
  const std::string good = EveryStepResponse().dump();
  const std::string kBad[] = {
      "<html><body>502 Bad Gateway</body>\n\x01\x02{\"id\":",  // a proxy's garbage
      good.substr(0, good.size() / 2),                         // cut mid-way, Content-Length ok
  };
  for (const std::string& bad : kBad) {
    HttpFixtureServer server(4);
    std::atomic<int> posts{0};
    server.server().Post(kPath, [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(posts.fetch_add(1) == 0 ? bad : good, "application/json");
    });
    ASSERT_TRUE(server.Start());
    auto o = Options();
    o.base_url = server.base_url();
    auto client = MakeClient(o);
    CallOptions call;
    call.attempts = std::make_shared<std::atomic<int>>(0);
    auto result = client->CreateInteraction(SimpleRequest(), call).get();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->id, "v1_every");
    EXPECT_EQ(call.attempts->load(), 2);
    EXPECT_EQ(client->stats().retries, 1);
    EXPECT_EQ(server.request_count(), 2u);
  }
}

TEST_F(ClientTest, ConnectionRefusedIsRetriedThenUnavailable) {
  const int port = testing::RefusingPort();
  ASSERT_GT(port, 0);
  auto o = Options();
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.max_retries = 2;
  auto client = MakeClient(o);
  auto result = client->CreateInteraction(SimpleRequest()).get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(result.status().http_status(), 0);
  EXPECT_THAT(result.status().message(), HasSubstr("transport error"));
  EXPECT_EQ(delays_.get().size(), 2u);
  EXPECT_EQ(client->stats().attempts, 3);
}

TEST_F(ClientTest, SixtyFourConcurrentRequestsWithBoundedThreadsAndInFlight) {
  constexpr int kRequests = 64;
  constexpr int kMaxInFlight = 8;
  // The server could run 16 handlers at once; the client must never have more than 8 requests
  // on the wire. The first 8 are held until all 8 slots are busy, then everything flows.
  HttpFixtureServer server(16);
  Gate hold;
  std::mutex mu;
  std::condition_variable filled_cv;
  int active = 0, max_active = 0;
  bool filled = false;
  server.server().Post(kPath, [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(mu);
      max_active = std::max(max_active, ++active);
      if (active == kMaxInFlight && !filled) {
        filled = true;
        filled_cv.notify_all();
      }
    }
    if (json::parse(req.body).value("input", json()).dump().find("warm-up") == std::string::npos) {
      hold.Wait();
    }
    json body = EveryStepResponse();
    body["id"] = "v1_" + json::parse(req.body)["input"][0]["text"].get<std::string>();
    res.set_content(body.dump(), "application/json");
    std::lock_guard lock(mu);
    --active;
  });
  ASSERT_TRUE(server.Start());
  auto o = Options();
  o.base_url = server.base_url();
  o.max_in_flight = kMaxInFlight;
  auto client = MakeClient(o);
  // Warm up so the server's pool threads and the client's I/O thread all exist.
  ASSERT_TRUE(client->CreateInteraction(SimpleRequest("warm-up")).get().ok());
  const int baseline_threads = ProcessThreadCount();

  std::vector<std::future<StatusOr<wire::Interaction>>> futures;
  for (int i = 0; i < kRequests; ++i) {
    futures.push_back(client->CreateInteraction(SimpleRequest("r" + std::to_string(i))));
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(filled_cv.wait_for(lock, std::chrono::seconds(60), [&] { return filled; }))
        << "the client never had " << kMaxInFlight << " requests on the wire";
  }
  const int threads_while_full = ProcessThreadCount();
  const auto stats_while_full = client->stats();
  hold.Open();
  for (int i = 0; i < kRequests; ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    EXPECT_EQ(r->id, "v1_r" + std::to_string(i));
  }
  EXPECT_EQ(stats_while_full.in_flight, kMaxInFlight);
  // One I/O thread serves all of them; allow two for resolver helpers libcurl may start.
  EXPECT_LE(threads_while_full, baseline_threads + 2)
      << "baseline " << baseline_threads << " threads";
  EXPECT_EQ(max_active, kMaxInFlight);
  EXPECT_EQ(client->stats().max_in_flight_seen, kMaxInFlight);
  EXPECT_EQ(client->stats().requests, kRequests + 1);
  EXPECT_EQ(client->stats().in_flight, 0);
  client.reset();
}

TEST_F(ClientTest, ConnectionsAreReused) {
  server_.server().Post(kPath, [](const httplib::Request&, httplib::Response& res) {
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(client->CreateInteraction(SimpleRequest()).get().ok());
  }
  EXPECT_EQ(client->stats().connections, 1) << "sequential calls share one keep-alive connection";
}

TEST_F(ClientTest, RequestsPerMinuteLimiterSpacesAttempts) {
  server_.server().Post(kPath, [](const httplib::Request&, httplib::Response& res) {
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto o = Options();
  o.requests_per_minute = 600;  // 10 per second, a burst of 10
  auto client = MakeClient(o);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::future<StatusOr<wire::Interaction>>> futures;
  for (int i = 0; i < 12; ++i) futures.push_back(client->CreateInteraction(SimpleRequest()));
  for (auto& f : futures) ASSERT_TRUE(f.get().ok());
  // The 11th and 12th attempts need two fresh tokens: at least ~200 ms at 10/s. This is a lower
  // bound the limiter guarantees, not a speed expectation.
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(150));
}

TEST_F(ClientTest, MultiTurnWithPreviousInteractionId) {
  server_.server().Post(kPath, [](const httplib::Request&, httplib::Response& res) {
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());
  auto first = client->CreateInteraction(SimpleRequest()).get();
  ASSERT_TRUE(first.ok());
  auto next = InteractionsClient::FollowUp(*first, SimpleRequest("and now zoom in"));
  ASSERT_TRUE(client->CreateInteraction(next).get().ok());
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  json sent = json::parse(reqs[1].body);
  EXPECT_EQ(sent["previous_interaction_id"], "v1_every");
  EXPECT_EQ(sent["input"][0]["text"], "and now zoom in");
  EXPECT_FALSE(sent.contains("store"));
}

TEST_F(ClientTest, StatelessMultiTurnSendsHistoryVerbatim) {
  server_.server().Post(kPath, [](const httplib::Request&, httplib::Response& res) {
    json r = EveryStepResponse();
    // Fields this client has never heard of, on the steps it must send back.
    r["steps"][0]["future_field"] = {{"nested", {1, 2}}};
    r["steps"][2]["arguments"]["timeout_s"] = 30;
    res.set_content(r.dump(), "application/json");
  });
  Start();
  auto client = MakeClient(Options());
  auto first_request = SimpleRequest();
  first_request.store = false;
  auto first = client->CreateInteraction(first_request).get();
  ASSERT_TRUE(first.ok()) << first.status();
  auto next = InteractionsClient::FollowUpStateless(first_request, *first, SimpleRequest("again"));
  ASSERT_TRUE(client->CreateInteraction(next).get().ok());

  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  json sent = json::parse(reqs[1].body);
  json returned = json::parse(EveryStepResponse().dump());
  returned["steps"][0]["future_field"] = {{"nested", {1, 2}}};
  returned["steps"][2]["arguments"]["timeout_s"] = 30;
  EXPECT_EQ(sent["store"], false);
  EXPECT_FALSE(sent.contains("previous_interaction_id"));
  const json& input = sent["input"];
  ASSERT_EQ(input.size(), 1 + returned["steps"].size() + 1);
  EXPECT_EQ(input[0]["type"], "user_input");
  EXPECT_EQ(input[0]["content"][0]["text"], "read the gauge");
  for (std::size_t i = 0; i < returned["steps"].size(); ++i) {
    EXPECT_EQ(input[1 + i], returned["steps"][i]) << "step " << i << " must be sent back verbatim";
  }
  EXPECT_EQ(input.back()["content"][0]["text"], "again");
  EXPECT_EQ(sent["model"], "gemini-3-flash-preview");
}

// Every error class, with servers that echo the key back: the key must appear in no Status.
TEST_F(ClientTest, ApiKeyNeverAppearsInAnyStatus) {
  std::atomic<int> mode{0};
  server_.server().Post(kPath, [&](const httplib::Request& req, httplib::Response& res) {
    const std::string key = req.get_header_value("x-goog-api-key");
    switch (mode.load()) {
      case 0:
        res.status = 400;
        res.set_content(GoogleErrorBody(400, "INVALID_ARGUMENT", "API key not valid: " + key,
                                        {{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                                          {"reason", "API_KEY_INVALID"},
                                          {"metadata", {{"key", key}}}}})
                            .dump(),
                        "application/json");
        return;
      case 1:
        res.status = 403;
        res.set_content(GoogleErrorBody(403, "PERMISSION_DENIED", "denied for " + key).dump(),
                        "application/json");
        return;
      case 2:
        res.status = 429;
        res.set_content(GoogleErrorBody(429, "RESOURCE_EXHAUSTED", key).dump(), "application/json");
        return;
      case 3:
        res.status = 503;
        res.set_content("upstream rejected key=" + key, "text/plain");
        return;
      case 4:
        res.set_content("not json " + key, "application/json");
        return;
      case 5:
        res.set_content(R"({"id":")" + key + R"(","steps":{}})", "application/json");
        return;
      default:
        gate_.Wait();
        res.set_content("{}", "application/json");
    }
  });
  Start();
  auto o = Options();
  o.max_retries = 1;
  auto client = MakeClient(o);
  std::vector<Status> statuses;
  for (int m = 0; m <= 5; ++m) {
    mode = m;
    statuses.push_back(client->CreateInteraction(SimpleRequest()).get().status());
  }
  mode = 6;
  CallOptions deadline;
  deadline.deadline = milliseconds(100);
  statuses.push_back(client->CreateInteraction(SimpleRequest(), deadline).get().status());
  CallOptions cancelled;
  cancelled.cancel = std::make_shared<std::atomic<bool>>(true);
  statuses.push_back(client->CreateInteraction(SimpleRequest(), cancelled).get().status());
  auto refused_options = Options();
  refused_options.base_url = "http://127.0.0.1:" + std::to_string(testing::RefusingPort());
  statuses.push_back(
      MakeClient(refused_options)->CreateInteraction(SimpleRequest()).get().status());
  statuses.push_back(InteractionsClient::Create([&] {
                       auto bad = Options();
                       bad.api_key = std::string(kKey) + "\n";
                       return bad;
                     }())
                         .status());

  EXPECT_EQ(server_.requests().front().Header("x-goog-api-key"), kKey) << "the key was sent";
  for (const auto& s : statuses) {
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(s.ToString(), Not(HasSubstr(kKey))) << s;
    EXPECT_THAT(s.reason(), Not(HasSubstr(kKey)));
  }
}

class EnvGuard {
 public:
  EnvGuard(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~EnvGuard() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_F(ClientTest, KeyAndBaseUrlFromTheEnvironment) {
  server_.server().Post(kPath, [](const httplib::Request&, httplib::Response& res) {
    res.set_content(EveryStepResponse().dump(), "application/json");
  });
  Start();
  EnvGuard base("GOOGLE_GEMINI_BASE_URL", (server_.base_url() + "/").c_str());
  EnvGuard named("ROILENS_TEST_KEY", "key-from-named-env");
  EnvGuard google("GOOGLE_API_KEY", "key-from-google-env");
  auto o = Options();
  o.base_url.clear();
  o.api_key.reset();
  o.api_key_env = "ROILENS_TEST_KEY";
  {
    auto client = MakeClient(o);
    EXPECT_EQ(client->base_url(), server_.base_url());
    ASSERT_TRUE(client->CreateInteraction(SimpleRequest()).get().ok());
  }
  {
    EnvGuard unset("ROILENS_TEST_KEY", nullptr);
    ASSERT_TRUE(MakeClient(o)->CreateInteraction(SimpleRequest()).get().ok());
  }
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].Header("x-goog-api-key"), "key-from-named-env");
  EXPECT_EQ(reqs[1].Header("x-goog-api-key"), "key-from-google-env");
}

TEST_F(ClientTest, CreateValidatesOptions) {
  auto o = Options();
  o.max_in_flight = 0;
  EXPECT_EQ(InteractionsClient::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.base_url = "ftp://example.com";
  EXPECT_EQ(InteractionsClient::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.api_version = "v1/../x";
  EXPECT_EQ(InteractionsClient::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.api_version = "v1";
  auto client = MakeClient(o);
  EXPECT_EQ(client->base_url(), o.base_url);
}

}  // namespace
}  // namespace roilens
