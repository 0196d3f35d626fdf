#include "http/browser_sessions.hpp"

#include <gtest/gtest.h>

namespace gw::http {
namespace {

using namespace std::chrono_literals;

class FakeClock final : public Clock {
 public:
  SystemTime now() const override { return now_; }
  void advance(std::chrono::milliseconds by) { now_ += by; }

 private:
  SystemTime now_ = fromUnixMillis(1'800'000'000'000);
};

Request withCookie(const std::string& id, std::string method = "GET") {
  Request r;
  r.method = std::move(method);
  r.headers.emplace_back("Cookie", "other=1; " + std::string(BrowserSessions::kCookieName) + "=" + id + "; x=y");
  return r;
}

Principal officer() { return Principal{"compliance-c1", {Role::Compliance}, {"c1"}}; }

class BrowserSessionsTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  BrowserSessions sessions_{BrowserSessionLimits{15min, 8h, 3}, clock_};
};

TEST_F(BrowserSessionsTest, ASessionCarriesTheTokensPrincipalUnderRandomIds) {
  const auto a = sessions_.open(officer());
  const auto b = sessions_.open(officer());
  EXPECT_EQ(a.id.size(), 64u);  // 256 bits, hex
  EXPECT_EQ(a.csrf.size(), 64u);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.id, a.csrf);
  auto found = sessions_.find(withCookie(a.id));
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found.value().principal.token_id, "compliance-c1");
  EXPECT_EQ(found.value().principal.clinics, std::vector<std::string>{"c1"});
  EXPECT_EQ(found.value().csrf, a.csrf);
  EXPECT_EQ(a.view.csrf, a.csrf);
  EXPECT_EQ(a.view.absolute_left, std::chrono::milliseconds(8h));
  EXPECT_EQ(a.view.expires_at, clock_.now() + 15min);
}

TEST_F(BrowserSessionsTest, UnknownMissingAndClosedSessionsAreUnauthenticated) {
  EXPECT_EQ(sessions_.find(Request{}).error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(sessions_.find(withCookie(std::string(64, 'a'))).error().code, ErrorCode::Unauthenticated);
  const auto a = sessions_.open(officer());
  sessions_.close(withCookie(a.id));
  EXPECT_EQ(sessions_.find(withCookie(a.id)).error().code, ErrorCode::Unauthenticated);
}

TEST_F(BrowserSessionsTest, IdleTimeoutRestartsWithUseAndTheAbsoluteOneDoesNot) {
  const auto a = sessions_.open(officer());
  clock_.advance(14min);
  ASSERT_TRUE(sessions_.find(withCookie(a.id)));  // used: idle timer restarts
  clock_.advance(14min);
  ASSERT_TRUE(sessions_.find(withCookie(a.id)));
  clock_.advance(15min);
  EXPECT_EQ(sessions_.find(withCookie(a.id)).error().code, ErrorCode::Unauthenticated) << "idle 15 min";

  const auto b = sessions_.open(officer());
  for (int i = 0; i < 8 * 6 - 1; ++i) {
    clock_.advance(10min);
    ASSERT_TRUE(sessions_.find(withCookie(b.id))) << i;
  }
  clock_.advance(10min);  // 8 h since the sign-in, however busy
  EXPECT_EQ(sessions_.find(withCookie(b.id)).error().code, ErrorCode::Unauthenticated) << "absolute 8 h";
}

TEST_F(BrowserSessionsTest, ChangesNeedTheSynchronizerTokenAndTheOwnOrigin) {
  const auto a = sessions_.open(officer());
  EXPECT_TRUE(sessions_.admit(withCookie(a.id, "GET"))) << "reads need no token";
  auto post = withCookie(a.id, "POST");
  EXPECT_EQ(sessions_.admit(post).error().code, ErrorCode::Forbidden) << "no token";
  post.headers.emplace_back("X-CSRF-Token", std::string(64, '0'));
  EXPECT_EQ(sessions_.admit(post).error().code, ErrorCode::Forbidden) << "wrong token";
  post.headers.back().second = a.csrf;
  EXPECT_TRUE(sessions_.admit(post));
  post.headers.emplace_back("Host", "console.internal:8444");
  post.headers.emplace_back("Origin", "https://evil.example");
  EXPECT_EQ(sessions_.admit(post).error().code, ErrorCode::Forbidden) << "another origin";
  post.headers.back().second = "https://console.internal:8444";
  EXPECT_TRUE(sessions_.admit(post));
  const auto b = sessions_.open(officer());
  auto other = withCookie(b.id, "POST");
  other.headers.emplace_back("X-CSRF-Token", a.csrf);
  EXPECT_EQ(sessions_.admit(other).error().code, ErrorCode::Forbidden) << "another session's token";
}

TEST_F(BrowserSessionsTest, TheOldestSessionMakesRoomBeyondTheLimit) {
  const auto a = sessions_.open(officer());
  clock_.advance(1s);
  const auto b = sessions_.open(officer());
  clock_.advance(1s);
  const auto c = sessions_.open(officer());
  clock_.advance(1s);
  const auto d = sessions_.open(officer());
  EXPECT_FALSE(sessions_.find(withCookie(a.id)));
  EXPECT_TRUE(sessions_.find(withCookie(b.id)));
  EXPECT_TRUE(sessions_.find(withCookie(d.id)));
  EXPECT_EQ(sessions_.size(), 3u);
  (void)c;
}

TEST_F(BrowserSessionsTest, TheCookieIsHttpOnlySecureStrictAndScopedToTheSite) {
  const std::string header = BrowserSessions::cookieHeader("abc", 8h);
  EXPECT_EQ(header, "gw_console=abc; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=28800");
  EXPECT_NE(BrowserSessions::clearingCookieHeader().find("Max-Age=0"), std::string::npos);
  Request r;
  r.headers.emplace_back("cookie", "a=1;gw_console=xyz");
  EXPECT_EQ(BrowserSessions::cookieValue(r, "gw_console"), "xyz");
  EXPECT_EQ(BrowserSessions::cookieValue(r, "gw"), "");
}

}  // namespace
}  // namespace gw::http
