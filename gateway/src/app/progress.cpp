#include "app/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace gw::app {
namespace {

std::string duration(double seconds) {
  const auto s = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string((s % 3600) / 60) + "m";
}

}  // namespace

ProgressBar::ProgressBar(std::string label, std::FILE* out, int tty, std::chrono::milliseconds line_every)
    : label_(std::move(label)),
      out_(out),
      tty_(tty < 0 ? ::isatty(::fileno(out)) != 0 : tty != 0),
      line_every_(line_every),
      started_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

std::string ProgressBar::render(const std::string& label, std::size_t done, std::size_t total, double seconds, bool bar) {
  std::string out;
  if (bar && total > 0) {
    constexpr std::size_t kWidth = 30;
    const std::size_t filled = std::min(kWidth, done * kWidth / total);
    out += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
  }
  out += std::to_string(done);
  if (total > 0) out += "/" + std::to_string(total);
  out += " " + label;
  if (total > 0) out += " " + std::to_string(std::min<std::size_t>(100, done * 100 / total)) + "%";
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  char rate_text[32];
  std::snprintf(rate_text, sizeof rate_text, " %.1f/s", rate);
  out += rate_text;
  if (total > 0 && done < total) {
    out += rate > 0 ? " ETA " + duration(static_cast<double>(total - done) / rate) : std::string(" ETA ?");
  } else if (total > 0) {
    out += " in " + duration(seconds);
  }
  return out;
}

void ProgressBar::update(std::size_t done, std::size_t total) {
  done_ = done;
  total_ = total;
  const auto now = std::chrono::steady_clock::now();
  const auto every = tty_ ? std::chrono::milliseconds(100) : line_every_;
  if (drawn_once_ && now - drawn_ < every && !(total > 0 && done >= total)) return;
  drawn_ = now;
  drawn_once_ = true;
  const double seconds = std::chrono::duration<double>(now - started_).count();
  const std::string text = render(label_, done, total, seconds, tty_);
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s", text.c_str());
  } else {
    std::fprintf(out_, "progress: %s\n", text.c_str());
  }
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const std::string text = render(label_, done_, total_, seconds, tty_);
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s\n", text.c_str());
  } else {
    std::fprintf(out_, "progress: %s\n", text.c_str());
  }
  std::fflush(out_);
}

}  // namespace gw::app
