// Uses the installed roilens::pipeline: the wire model, Status, and the client factory.
#include <roilens/client/interactions.h>
#include <roilens/client/interactions_client.h>

#include <iostream>

int main() {
  roilens::wire::InteractionRequest request;
  request.model = "gemini-3-flash-preview";
  request.input = std::vector<roilens::wire::ContentBlock>{
      roilens::wire::ContentBlock::Text("hello"),
      roilens::wire::ContentBlock::ImageBytes({1, 2, 3}, "image/png")};
  const std::string body = roilens::wire::SerializeRequest(request);
  auto parsed = nlohmann::json::parse(body).get<roilens::wire::InteractionRequest>();
  if (roilens::wire::SerializeRequest(parsed) != body) {
    std::cerr << "round trip changed the request\n";
    return 1;
  }
  auto bad = roilens::wire::ParseInteraction("[1]");
  if (bad.ok()) return 1;

  roilens::ClientOptions options;
  options.base_url = "http://127.0.0.1:9";
  options.api_key = "consumer-key";
  auto client = roilens::InteractionsClient::Create(options);
  if (!client.ok()) {
    std::cerr << client.status() << "\n";
    return 1;
  }
  std::cout << "roilens consumer ok: " << body.size() << " bytes; " << bad.status() << "\n";
  return 0;
}
