// The server over real TLS on 127.0.0.1: routing, async answers, limits, timeouts, keep-alive,
// concurrency, response headers, request logging and stopping.
#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <future>
#include <iostream>
#include <regex>

#include "http/server_fixture.hpp"
#include "support/connection_flood.hpp"

namespace gw::http {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
using testing::clientOptions;
using testing::LogCapture;
using testing::serverOptions;
using testing::startServer;

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : router_(std::make_shared<Router>()) {
    router_->add("GET", "/v1/records/{record_id}", [](Request& r, Respond respond) {
      respond(jsonResponse(200, "{\"id\":\"" + std::string(r.pathParam("record_id")) + "\",\"q\":\"" +
                                    r.queryParam("q").value_or("") + "\"}"));
    });
    router_->add("POST", "/v1/records", [](Request& r, Respond respond) {
      Response response = jsonResponse(202, "{\"bytes\":" + std::to_string(r.body.size()) + "}");
      response.headers.emplace_back("Location", "/v1/records/1");
      respond(std::move(response));
    });
    router_->add("GET", "/remote", [](Request& r, Respond respond) { respond(jsonResponse(200, r.remote)); });
    router_->add("GET", "/later", [this](Request&, Respond respond) {
      // Answers from a thread that is not an io thread, after the handler returned.
      std::lock_guard lock(workers_mutex_);
      workers_.emplace_back([respond] {
        std::this_thread::sleep_for(20ms);
        respond(jsonResponse(200, "{\"later\":true}"));
      });
    });
    router_->add("GET", "/hold", [this](Request&, Respond respond) { held_.set_value(std::move(respond)); });
    router_->add("GET", "/drop", [](Request&, Respond) {});
    router_->add("GET", "/throw", [](Request&, Respond) { throw std::runtime_error("patient A12345"); });
    router_->add("GET", "/twice", [](Request&, Respond respond) {
      respond(jsonResponse(200, "first"));
      respond(jsonResponse(500, "second"));
    });
    router_->add("GET", "/badheaders", [](Request&, Respond respond) {
      Response response = jsonResponse(200, "{}");
      response.headers = {{"X-Evil", "a\r\nSet-Cookie: stolen=1"}, {"Content-Length", "9999"}, {"X-Ok", "1"}};
      respond(std::move(response));
    });
    router_->add("GET", "/auth", [](Request& r, Respond respond) {
      r.token_id = "clinic-c1";
      respond(jsonResponse(200, "{}"));
    });
  }

  ~ServerTest() override {
    server_.reset();
    std::lock_guard lock(workers_mutex_);
    for (auto& worker : workers_) worker.join();
  }

  void start(ServerOptions options = serverOptions()) {
    server_ = startServer(std::move(options), router_);
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(server_->port(), 0);
  }

  test::TlsTestClient connected() {
    test::TlsTestClient client(clientOptions());
    const auto ec = client.connect(server_->port());
    EXPECT_FALSE(ec) << ec.message();
    return client;
  }

  std::shared_ptr<Router> router_;
  std::unique_ptr<Server> server_;
  std::mutex workers_mutex_;
  std::vector<std::thread> workers_;
  std::promise<Respond> held_;
};

TEST_F(ServerTest, RoutesWithParametersAndQuery) {
  start();
  auto r = test::tlsRequest(server_->port(), clientOptions(), "GET", "/v1/records/c1%3Apt%3A7?q=a+b");
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"id":"c1:pt:7","q":"a b"})");
}

TEST_F(ServerTest, EveryResponseCarriesSecurityHeaders) {
  start();
  auto client = connected();
  for (const char* target : {"/v1/records/1", "/nope"}) {
    auto r = client.request("GET", target);
    ASSERT_FALSE(r.error) << r.error.message();
    EXPECT_TRUE(std::regex_match(r.header("X-Request-Id"), std::regex("[0-9a-f]{32}"))) << target;
    EXPECT_EQ(r.header("Cache-Control"), "no-store") << target;
    EXPECT_EQ(r.header("Strict-Transport-Security").rfind("max-age=", 0), 0u) << target;
    EXPECT_FALSE(r.header("Content-Type").empty()) << target;
    EXPECT_EQ(r.header("Server"), "") << target;
  }
  auto posted = client.request("POST", "/v1/records", "{}");
  EXPECT_EQ(posted.status, 202);
  EXPECT_EQ(posted.header("Location"), "/v1/records/1");
  EXPECT_EQ(posted.body, R"({"bytes":2})");
}

TEST_F(ServerTest, HandlerCannotInjectOrReframeHeaders) {
  start();
  auto client = connected();
  auto r = client.request("GET", "/badheaders");
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("X-Ok"), "1");
  EXPECT_EQ(r.header("Set-Cookie"), "");
  EXPECT_EQ(r.header("X-Evil"), "");
  EXPECT_EQ(r.header("Content-Length"), "2");
  EXPECT_EQ(client.request("GET", "/v1/records/1").status, 200);  // the stream is still in step
}

TEST_F(ServerTest, UnknownPathAndWrongMethod) {
  start();
  auto client = connected();
  auto missing = client.request("GET", "/v1/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.header("Content-Type"), "application/fhir+json");
  EXPECT_NE(missing.body.find("\"resourceType\":\"OperationOutcome\""), std::string::npos);
  auto wrong = client.request("DELETE", "/v1/records");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.header("Allow"), "POST");
  EXPECT_TRUE(wrong.keep_alive);  // routing errors do not cost the connection
}

TEST_F(ServerTest, BadTargetIs400AndConnectionStays) {
  start();
  auto client = connected();
  auto bad = client.request("GET", "/v1/records/%zz");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(client.request("GET", "/v1/records/1").status, 200);
}

TEST_F(ServerTest, HandlerMayAnswerFromAnotherThread) {
  start();
  auto client = connected();
  for (int i = 0; i < 3; ++i) {
    auto r = client.request("GET", "/later");
    ASSERT_FALSE(r.error) << r.error.message();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"later":true})");
  }
}

TEST_F(ServerTest, RespondAfterClientLeftIsSafe) {
  start();
  auto held = held_.get_future();
  {
    auto client = connected();
    ASSERT_FALSE(client.writeRaw("GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    ASSERT_EQ(held.wait_for(5s), std::future_status::ready);
  }  // client gone before the answer
  std::this_thread::sleep_for(20ms);
  held.get()(jsonResponse(200, "{}"));
  // The server is still healthy.
  auto r = test::tlsRequest(server_->port(), clientOptions(), "GET", "/v1/records/1");
  EXPECT_EQ(r.status, 200);
}

TEST_F(ServerTest, DroppedRespondAnswers500) {
  LogCapture logs;
  start();
  auto r = test::tlsRequest(server_->port(), clientOptions(), "GET", "/drop");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("OperationOutcome"), std::string::npos);
  EXPECT_TRUE(logs.waitFor({"handler_dropped_response"}));
}

TEST_F(ServerTest, HandlerExceptionAnswers500WithoutLoggingItsMessage) {
  LogCapture logs;
  start();
  auto client = connected();
  auto r = client.request("GET", "/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(client.request("GET", "/v1/records/1").status, 200);
  EXPECT_TRUE(logs.waitFor({"handler_exception", "route=/throw"}));
  EXPECT_EQ(logs.all().find("A12345"), std::string::npos);
}

TEST_F(ServerTest, SecondRespondIsIgnored) {
  LogCapture logs;
  start();
  auto client = connected();
  auto r = client.request("GET", "/twice");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "first");
  // Exactly one response was written: the next exchange lines up.
  auto next = client.request("GET", "/v1/records/2");
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, R"({"id":"2","q":""})");
  EXPECT_TRUE(logs.waitFor({"respond_called_twice"}));
}

TEST_F(ServerTest, BodyOverLimitIs413AndCloses) {
  auto options = serverOptions();
  options.max_body_bytes = 1024;
  start(options);
  auto client = connected();
  EXPECT_EQ(client.request("POST", "/v1/records", std::string(1024, 'x')).status, 202);  // at the limit: fine
  auto r = client.request("POST", "/v1/records", std::string(4096, 'x'));
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("\"code\":\"too-costly\""), std::string::npos);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_TRUE(client.waitForClose(2s));
}

TEST_F(ServerTest, BodyFarOverLimitStillGets413) {
  // The client sends all 2 MiB before reading; the server must not reset the connection under
  // it (which would lose the 413) while it discards the rest.
  auto options = serverOptions();
  options.max_body_bytes = 1024;
  start(options);
  auto client = connected();
  auto r = client.request("POST", "/v1/records", std::string(2 * 1024 * 1024, 'x'));
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 413);
}

TEST_F(ServerTest, ChunkedBodyOverLimitIs413) {
  auto options = serverOptions();
  options.max_body_bytes = 1024;
  start(options);
  auto client = connected();
  std::string chunked = "POST /v1/records HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) chunked += "200\r\n" + std::string(512, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  ASSERT_FALSE(client.writeRaw(chunked));
  auto r = client.readResponse();
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 413);
}

// Issue 9, defect 4: memory for bodies in flight is bounded as a whole, not only per request.
TEST_F(ServerTest, BodiesInFlightAreBoundedAsAWhole) {
  LogCapture logs;
  auto options = serverOptions();
  options.max_body_bytes = 64 * 1024;
  options.max_inflight_body_bytes = 100 * 1024;
  start(options);
  auto headers = [](std::size_t length) {
    return "POST /v1/records HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(length) +
           "\r\n\r\n";
  };
  // A 64 KiB body in flight: its client got 100 Continue, so its reservation is made.
  auto first = connected();
  ASSERT_FALSE(first.writeRaw(headers(64 * 1024)));
  ASSERT_EQ(first.readResponse().status, 100);
  ASSERT_FALSE(first.writeRaw(std::string(1000, 'x')));

  // Another 64 KiB body does not fit beside it: 503 with Retry-After, before its body, and close.
  auto second = connected();
  ASSERT_FALSE(second.writeRaw(headers(64 * 1024)));
  auto busy = second.readResponse();
  ASSERT_FALSE(busy.error) << busy.error.message();
  EXPECT_EQ(busy.status, 503) << busy.body;
  EXPECT_EQ(busy.header("Retry-After"), "1");
  EXPECT_FALSE(busy.keep_alive);
  EXPECT_TRUE(logs.waitFor({"body_budget_exhausted", "route=/v1/records"}));
  // Nor does a chunked body, which may grow to max_body_bytes.
  auto chunked = connected();
  ASSERT_FALSE(chunked.writeRaw("POST /v1/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"));
  EXPECT_EQ(chunked.readResponse().status, 503);
  // A small one does.
  auto small = connected();
  EXPECT_EQ(small.request("POST", "/v1/records", std::string(1000, 'y')).status, 202);

  // Once the first is answered its reservation is released.
  ASSERT_FALSE(first.writeRaw(std::string(64 * 1024 - 1000, 'x')));
  auto answered = first.readResponse();
  EXPECT_EQ(answered.status, 202);
  EXPECT_EQ(answered.body, R"({"bytes":65536})");
  auto again = connected();
  EXPECT_EQ(again.request("POST", "/v1/records", std::string(64 * 1024, 'z')).status, 202);
}

TEST_F(ServerTest, MalformedHttpIs400AndCloses) {
  start();
  auto client = connected();
  ASSERT_FALSE(client.writeRaw("THIS IS NOT HTTP\r\n\r\n"));
  auto r = client.readResponse();
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("OperationOutcome"), std::string::npos);
  EXPECT_TRUE(client.waitForClose(2s));
}

// RFC 9112 section 6.1: a request whose Transfer-Encoding does not end in "chunked" has no
// length the server can trust, so its body must not be read as the next request (smuggling).
TEST_F(ServerTest, UnknownTransferEncodingIs400AndClosesWithoutServingTheEmbeddedRequest) {
  start();
  const std::string smuggled = "GET /v1/records/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const std::string coding : {"gzip", "xchunked", "chunked, gzip", "identity"}) {
    auto client = connected();
    ASSERT_FALSE(
        client.writeRaw("POST /v1/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + "\r\n\r\n" + smuggled));
    auto r = client.readResponse();
    ASSERT_FALSE(r.error) << coding << ": " << r.error.message();
    EXPECT_EQ(r.status, 400) << coding;
    EXPECT_NE(r.body.find("Transfer-Encoding"), std::string::npos) << coding << ": " << r.body;
    EXPECT_FALSE(r.keep_alive) << coding;
    auto second = client.readResponse();  // exactly one response: the embedded request is not served
    EXPECT_TRUE(second.error) << coding << ": got a second response " << second.status << " " << second.body;
  }
}

TEST_F(ServerTest, TransferEncodingWithContentLengthIs400AndCloses) {
  start();
  const std::string smuggled = "GET /v1/records/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string length = "Content-Length: " + std::to_string(smuggled.size()) + "\r\n";
  const std::string chunked_body = "5\r\nhello\r\n0\r\n\r\n" + smuggled;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Transfer-Encoding: chunked\r\n" + length, chunked_body},
      {length + "Transfer-Encoding: chunked\r\n", chunked_body},
      {"Transfer-Encoding: gzip\r\n" + length, smuggled},
      {length + "Transfer-Encoding: gzip\r\n", smuggled},
  };
  for (const auto& [headers, body] : cases) {
    auto client = connected();
    ASSERT_FALSE(client.writeRaw("POST /v1/records HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n" + body));
    auto r = client.readResponse();
    ASSERT_FALSE(r.error) << headers << r.error.message();
    EXPECT_EQ(r.status, 400) << headers;
    EXPECT_FALSE(r.keep_alive) << headers;
    auto second = client.readResponse();
    EXPECT_TRUE(second.error) << headers << "got a second response " << second.status << " " << second.body;
  }
}

TEST_F(ServerTest, ChunkedTransferEncodingStillWorks) {
  start();
  auto client = connected();
  ASSERT_FALSE(
      client.writeRaw("POST /v1/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"));
  auto r = client.readResponse();
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, R"({"bytes":2})");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(client.request("GET", "/v1/records/1").status, 200);
}

TEST_F(ServerTest, OversizedHeadersAre431) {
  auto options = serverOptions();
  options.max_header_bytes = 2048;
  start(options);
  auto client = connected();
  auto r = client.request("GET", "/v1/records/1", "", {{"X-Padding", std::string(4096, 'p')}});
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 431);
  EXPECT_TRUE(client.waitForClose(2s));
}

TEST_F(ServerTest, OnlyHttp11) {
  start();
  auto client = connected();
  ASSERT_FALSE(client.writeRaw("GET /v1/records/1 HTTP/1.0\r\nHost: localhost\r\n\r\n"));
  auto r = client.readResponse();
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 505);
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  start();
  auto client = connected();
  auto first = client.request("GET", "/remote");
  auto second = client.request("GET", "/remote");
  ASSERT_FALSE(first.error);
  ASSERT_FALSE(second.error);
  EXPECT_TRUE(first.keep_alive);
  EXPECT_EQ(first.body, second.body);  // same client port: same TCP connection
  EXPECT_NE(first.header("X-Request-Id"), second.header("X-Request-Id"));
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  auto client = connected();
  ASSERT_FALSE(
      client.writeRaw("GET /v1/records/a HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /v1/records/c HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(client.readResponse().body, R"({"id":"a","q":""})");
  EXPECT_EQ(client.readResponse().body, R"({"later":true})");
  EXPECT_EQ(client.readResponse().body, R"({"id":"c","q":""})");
}

TEST_F(ServerTest, ExpectContinueGetsInterimResponse) {
  start();
  auto client = connected();
  ASSERT_FALSE(client.writeRaw("POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.readResponse();
  ASSERT_FALSE(interim.error) << interim.error.message();
  EXPECT_EQ(interim.status, 100);
  ASSERT_FALSE(client.writeRaw("{}"));
  auto r = client.readResponse();
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, R"({"bytes":2})");
}

TEST_F(ServerTest, ReadTimeoutClosesHalfSentRequest) {
  auto options = serverOptions();
  options.read_timeout = 300ms;
  options.idle_timeout = 10s;  // so only the read timeout can close the connection below
  start(options);
  auto client = connected();
  ASSERT_EQ(client.request("GET", "/v1/records/1").status, 200);  // now in keep-alive
  const auto started = std::chrono::steady_clock::now();
  ASSERT_FALSE(client.writeRaw("POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"partial"));
  EXPECT_TRUE(client.waitForClose(3s));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2500ms);
}

TEST_F(ServerTest, IdleTimeoutClosesKeepAliveConnection) {
  auto options = serverOptions();
  options.idle_timeout = 300ms;
  start(options);
  auto client = connected();
  ASSERT_EQ(client.request("GET", "/v1/records/1").status, 200);
  EXPECT_TRUE(client.waitForClose(3s));
}

TEST_F(ServerTest, KeepAliveConnectionStaysOpenWithinIdleTimeout) {
  auto options = serverOptions();
  options.idle_timeout = 10s;
  start(options);
  auto client = connected();
  ASSERT_EQ(client.request("GET", "/v1/records/1").status, 200);
  EXPECT_FALSE(client.waitForClose(600ms));
}

TEST_F(ServerTest, ConcurrentClientsAreAllAnswered) {
  start();
  constexpr int kThreads = 8;
  constexpr int kRequests = 50;
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      test::TlsTestClient client(clientOptions());
      if (client.connect(server_->port())) return;
      for (int i = 0; i < kRequests; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        // Every fifth request answers from a worker thread, interleaving with io threads.
        auto r = client.request("GET", i % 5 == 0 ? "/later" : "/v1/records/" + id);
        const std::string expected = i % 5 == 0 ? R"({"later":true})" : R"({"id":")" + id + R"(","q":""})";
        if (!r.error && r.status == 200 && r.body == expected) ++answered;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(answered.load(), kThreads * kRequests);
}

TEST_F(ServerTest, RequestLogLineHasRouteNotPathQueryOrSecrets) {
  LogCapture logs;
  start();
  auto client = connected();
  auto r = client.request("GET", "/v1/records/MRN-SECRET-1?mrn=MRN-SECRET-2", "",
                          {{"Authorization", "Bearer TOKEN-SECRET"}});
  ASSERT_EQ(r.status, 200);
  auto posted = client.request("POST", "/v1/records", R"({"name":"BODY-SECRET"})");
  ASSERT_EQ(posted.status, 202);
  ASSERT_EQ(client.request("GET", "/auth").status, 200);
  ASSERT_TRUE(logs.waitFor({"request", "route=/auth", "token=clinic-c1"}));
  const auto lines = logs.find({" request ", "route=/v1/records/{record_id}", "status=200", "method=GET"});
  ASSERT_EQ(lines.size(), 1u) << logs.all();
  EXPECT_NE(lines[0].find("request_id=" + r.header("X-Request-Id")), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("ms="), std::string::npos);
  EXPECT_NE(lines[0].find("bytes_out="), std::string::npos);
  EXPECT_EQ(logs.find({" request ", "route=/v1/records ", "status=202", "bytes_in=22"}).size(), 1u) << logs.all();
  EXPECT_EQ(logs.all().find("SECRET"), std::string::npos) << logs.all();
}

// The access log says which certificate connected (subject and fingerprint), never the token.
TEST_F(ServerTest, RequestLogLineCarriesClientCertificateNotToken) {
  LogCapture logs;
  start();
  auto r = test::tlsRequest(server_->port(), clientOptions("client-c2"), "GET", "/auth", "",
                            {{"Authorization", "Bearer TOKEN-SECRET-c2"}});
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(logs.waitFor({" request ", "route=/auth"})) << logs.all();
  const auto lines = logs.find({" request ", "route=/auth", "token=clinic-c1"});
  ASSERT_EQ(lines.size(), 1u) << logs.all();
  EXPECT_NE(lines[0].find("client=\"CN=clinic-c2,O=fhir-gateway development\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("client_sha256=" + test::devCertFingerprint("client-c2")), std::string::npos) << lines[0];
  EXPECT_EQ(logs.all().find("TOKEN-SECRET"), std::string::npos) << logs.all();
}

TEST_F(ServerTest, RequestLogLineWithoutClientCertificateSaysSo) {
  LogCapture logs;
  start(serverOptions(ClientCertMode::Optional));
  ASSERT_EQ(test::tlsRequest(server_->port(), clientOptions(""), "GET", "/auth").status, 200);
  ASSERT_TRUE(logs.waitFor({" request ", "route=/auth", "client=- client_sha256=-"})) << logs.all();
}

TEST_F(ServerTest, UnmatchedPathIsNotLogged) {
  LogCapture logs;
  start();
  auto r = test::tlsRequest(server_->port(), clientOptions(), "GET", "/v1/patients/MRN-SECRET");
  ASSERT_EQ(r.status, 404);
  ASSERT_TRUE(logs.waitFor({" request ", "status=404", "route=-"})) << logs.all();
  EXPECT_EQ(logs.all().find("SECRET"), std::string::npos) << logs.all();
}

TEST_F(ServerTest, StartFailsWhenPortIsTaken) {
  start();
  auto options = serverOptions();
  options.port = server_->port();
  auto second = Server::create(options, router_);
  ASSERT_TRUE(second) << second.error().describe();
  auto started = second.value()->start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, ErrorCode::Config);
  EXPECT_NE(started.error().where.find(std::to_string(server_->port())), std::string::npos);
  EXPECT_NE(started.error().hint.find("port"), std::string::npos);
}

TEST_F(ServerTest, ConnectionLimitClosesExtraConnections) {
  LogCapture logs;
  auto options = serverOptions();
  options.max_connections = 2;
  start(options);
  auto a = connected();
  auto b = connected();
  ASSERT_EQ(a.request("GET", "/v1/records/1").status, 200);
  ASSERT_EQ(b.request("GET", "/v1/records/1").status, 200);
  test::TlsTestClient extra(clientOptions());
  EXPECT_TRUE(extra.connect(server_->port()));  // accepted and closed before the handshake
  EXPECT_TRUE(logs.waitFor({"connection_limit", "max_connections=2"}));
  a.close();
  // The slot frees once the server sees the close.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    test::TlsTestClient again(clientOptions());
    served = !again.connect(server_->port()) && again.request("GET", "/v1/records/1").status == 200;
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);
}

// Issue 9, defect 1: idle plain TCP connections (no TLS, no certificate, no token) must not
// hold every slot. The attacker keeps more idle connections open than the limit allows and
// reconnects each one the server closes; a clinic connecting anew for each request must still be
// answered. All connections come from 127.0.0.1, so this tests the reserve logic (the oldest
// connection that has not proved itself makes room), not the per-address limit.
double floodedSuccessRate(std::uint16_t port, std::size_t idle_connections, int requests) {
  test::IdleConnectionFlood flood(port, idle_connections);
  if (!flood.start()) {
    ADD_FAILURE() << "could not open " << idle_connections << " sockets";
    return 0;
  }
  std::this_thread::sleep_for(300ms);  // the server has accepted what it will accept
  int answered = 0;
  auto options = clientOptions();
  options.timeout = 2000ms;
  std::string failures;
  for (int i = 0; i < requests; ++i) {
    auto r = test::tlsRequest(port, options, "GET", "/v1/records/" + std::to_string(i));
    if (!r.error && r.status == 200) {
      ++answered;
    } else {
      failures += " [" + (r.error ? r.error.message() : std::to_string(r.status)) + "]";
    }
  }
  const double rate = static_cast<double>(answered) / requests;
  std::cout << "[ flood    ] " << idle_connections << " idle connections, " << flood.reconnects()
            << " reconnects: " << answered << "/" << requests << " requests answered" << failures << "\n";
  return rate;
}

TEST_F(ServerTest, IdleConnectionFloodDoesNotLockOutClients) {
  LogCapture logs;
  auto options = serverOptions();
  options.max_connections = 64;
  start(options);
  EXPECT_GE(floodedSuccessRate(server_->port(), 70, 40), 0.9);
  // The server is still healthy afterwards, and said what it did (once a second at most).
  EXPECT_EQ(test::tlsRequest(server_->port(), clientOptions(), "GET", "/v1/records/1").status, 200);
  EXPECT_TRUE(logs.waitFor({"connections_evicted", "limit=max_connections"}));
  EXPECT_LT(logs.find({"connections_evicted"}).size(), 10u);
}

// The same flood from another address (127.0.0.2) is held to its per-address limit, so it cannot
// even fill the server: no client of another address ever needs to make room.
TEST_F(ServerTest, PerAddressLimitHoldsAFloodFromOneAddress) {
  LogCapture logs;
  auto options = serverOptions();
  options.max_connections = 64;
  options.max_connections_per_address = 16;
  start(options);
  test::IdleConnectionFlood flood(server_->port(), 70, "127.0.0.2");
  ASSERT_TRUE(flood.start());
  std::this_thread::sleep_for(300ms);
  int answered = 0;
  for (int i = 0; i < 20; ++i) {
    if (test::tlsRequest(server_->port(), clientOptions(), "GET", "/v1/records/1").status == 200) ++answered;
  }
  EXPECT_EQ(answered, 20);
  EXPECT_TRUE(logs.waitFor({"connections_evicted", "limit=max_connections_per_address"}));
  EXPECT_TRUE(logs.find({"connections_evicted", "limit=max_connections "}).empty()) << logs.all();
}

// Connections that have proved themselves are never closed for a newcomer: at the limit with
// only those, the newcomer is closed (and a client's keep-alive connection survives a flood).
TEST_F(ServerTest, ProvenConnectionsAreNotEvicted) {
  LogCapture logs;
  auto options = serverOptions();
  options.max_connections = 8;
  options.max_connections_per_address = 100;
  start(options);
  auto kept = connected();  // verified client certificate: trusted from its handshake
  ASSERT_EQ(kept.request("GET", "/v1/records/1").status, 200);
  {
    test::IdleConnectionFlood flood(server_->port(), 20);
    ASSERT_TRUE(flood.start());
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(kept.request("GET", "/v1/records/2").status, 200) << "the proven connection stayed open";
  }
  std::vector<test::TlsTestClient> proven;
  for (int i = 0; i < 7; ++i) {
    proven.push_back(connected());
    ASSERT_EQ(proven.back().request("GET", "/v1/records/1").status, 200);
  }
  test::TlsTestClient extra(clientOptions());
  EXPECT_TRUE(extra.connect(server_->port()));  // all 8 proven: the newcomer is closed
  EXPECT_TRUE(logs.waitFor({"connection_limit", "limit=max_connections"}));
  EXPECT_EQ(kept.request("GET", "/v1/records/3").status, 200);
}

// Without client certificates (client_cert none), a connection proves itself with a request whose
// route check accepted a token: newcomers then take the places of the connections that have not.
TEST_F(ServerTest, ARequestWithAnAcceptedTokenMakesAConnectionTrusted) {
  auto check = [](Request& request) -> std::optional<Response> {
    if (request.header("Authorization") != "Bearer good") return jsonResponse(401, "{}");
    request.token_id = "clinic-c1";
    return std::nullopt;
  };
  router_->add("GET", "/checked", check, [](Request&, Respond respond) { respond(jsonResponse(200, "{}")); });
  auto options = serverOptions(ClientCertMode::None);
  options.max_connections = 6;
  options.max_connections_per_address = 100;
  start(options);
  auto no_certificate = clientOptions("");
  auto open = [&](bool with_token) {
    test::TlsTestClient client(no_certificate);
    EXPECT_FALSE(client.connect(server_->port()));
    auto r = with_token ? client.request("GET", "/checked", "", {{"Authorization", "Bearer good"}})
                        : client.request("GET", "/v1/records/1");
    EXPECT_EQ(r.status, 200);
    return client;
  };
  auto kept = open(true);  // the oldest connection, but trusted
  std::vector<test::TlsTestClient> others;
  for (int i = 0; i < 5; ++i) others.push_back(open(false));
  for (int i = 0; i < 5; ++i) others.push_back(open(false));  // each takes the place of the oldest unproven one
  EXPECT_EQ(kept.request("GET", "/checked", "", {{"Authorization", "Bearer good"}}).status, 200);
  EXPECT_TRUE(others.front().waitForClose(2s)) << "the oldest unproven connection made room";
  EXPECT_EQ(others.back().request("GET", "/v1/records/2").status, 200);
}

// The TLS handshake has its own, short deadline: a connection that sends nothing, or only the
// start of a handshake, is closed after handshake_timeout, not after read_timeout.
TEST_F(ServerTest, HandshakeHasItsOwnDeadline) {
  auto options = serverOptions();
  options.handshake_timeout = 300ms;
  options.read_timeout = 10s;
  start(options);
  for (std::string_view sent : {std::string_view(), std::string_view("\x16\x03\x01\x02\x00", 5)}) {
    net::io_context ioc;
    tcp::socket socket(ioc);
    socket.connect({net::ip::make_address("127.0.0.1"), server_->port()});
    if (!sent.empty()) net::write(socket, net::buffer(sent.data(), sent.size()));
    const auto started = std::chrono::steady_clock::now();
    char byte;
    boost::system::error_code ec;
    socket.read_some(net::buffer(&byte, 1), ec);  // returns when the server closes
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(ec) << "the server closed the connection";
    EXPECT_GE(elapsed, 200ms);
    EXPECT_LT(elapsed, 3s) << "closed by the handshake deadline, not the read timeout";
  }
  // A real client's handshake is well within it.
  EXPECT_EQ(test::tlsRequest(server_->port(), clientOptions(), "GET", "/v1/records/1").status, 200);
}

TEST_F(ServerTest, StopLetsInFlightHandlerAnswer) {
  start();
  auto client = connected();
  ASSERT_FALSE(client.writeRaw("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto held = held_.get_future();
  ASSERT_EQ(held.wait_for(5s), std::future_status::ready);
  Respond respond = held.get();
  std::thread answer([respond] {
    std::this_thread::sleep_for(100ms);
    respond(jsonResponse(200, "{\"late\":true}"));
  });
  // Like a real client: read the answer as it comes, then hang up.
  auto read = std::async(std::launch::async, [&client] {
    auto r = client.readResponse();
    client.close();
    return r;
  });
  const auto started = std::chrono::steady_clock::now();
  server_->stop();                                                // waits (within stop_grace) for the held request
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1500ms);  // did not need the whole grace period
  answer.join();
  auto r = read.get();
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"late":true})");
  EXPECT_FALSE(r.keep_alive);
}

TEST_F(ServerTest, RespondAfterServerIsGoneIsDropped) {
  auto options = serverOptions();
  options.stop_grace = 100ms;
  start(options);
  auto client = connected();
  ASSERT_FALSE(client.writeRaw("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto held = held_.get_future();
  ASSERT_EQ(held.wait_for(5s), std::future_status::ready);
  Respond respond = held.get();
  const auto started = std::chrono::steady_clock::now();
  server_.reset();  // stop() gives up on the handler after the grace period
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  respond(jsonResponse(200, "{}"));  // must not touch freed memory (run under ASan)
  respond = nullptr;
  EXPECT_TRUE(client.waitForClose(2s));
}

TEST_F(ServerTest, StopIsIdempotentAndWorksWithoutStart) {
  auto created = Server::create(serverOptions(), router_);
  ASSERT_TRUE(created);
  created.value()->stop();
  created.value()->stop();
  start();
  server_->stop();
  server_->stop();
  test::TlsTestClient client(clientOptions());
  EXPECT_TRUE(client.connect(server_->port()));  // nobody listens any more
}

}  // namespace
}  // namespace gw::http
