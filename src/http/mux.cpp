// The request/response value types and the router (Go's ServeMux), with the URL decoding
// they need (Go's url.PathUnescape and url.ParseQuery). No I/O here; server.cpp does it.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "gort/http.hpp"
#include "http/url.hpp"

namespace gort::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

namespace detail {

std::optional<std::string> unescape(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c != '%') {
      out += c;
    } else {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

}  // namespace detail

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const Field& f : fields_)
    if (iequals(f.first, name)) return f.second;
  return std::nullopt;
}

void Headers::set(std::string_view name, std::string_view value) {
  remove(name);
  add(name, value);
}

void Headers::add(std::string_view name, std::string_view value) {
  fields_.emplace_back(std::string(name), std::string(value));
}

void Headers::remove(std::string_view name) {
  std::erase_if(fields_, [&](const Field& f) { return iequals(f.first, name); });
}

std::optional<std::string> Request::query(std::string_view key) const {
  std::string_view q = raw_query;
  while (!q.empty()) {
    const std::size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    auto k = detail::unescape(pair.substr(0, eq), true);
    if (!k || *k != key) continue;
    if (eq == std::string_view::npos) return std::string();
    if (auto v = detail::unescape(pair.substr(eq + 1), true)) return v;
  }
  return std::nullopt;
}

void error(Response& w, int status, std::string_view msg) {
  w.status = status;
  w.headers.set("Content-Type", "text/plain; charset=utf-8");
  w.headers.set("X-Content-Type-Options", "nosniff");
  w.body.assign(msg);
  w.body += '\n';
}

void ServeMux::handle(std::string pattern, Handler h) {
  if (pattern.empty() || pattern[0] != '/')
    throw std::invalid_argument("http: invalid pattern \"" + pattern + "\"");
  routes_.emplace_back(std::move(pattern), std::move(h));
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void ServeMux::operator()(const Request& r, Response& w) const {
  for (const auto& [pattern, h] : routes_) {
    const bool subtree = pattern.back() == '/';
    if (subtree ? r.path.compare(0, pattern.size(), pattern) == 0 : r.path == pattern) {
      h(r, w);
      return;
    }
  }
  // "/tree" with only "/tree/" registered: redirect, as Go's ServeMux does.
  for (const auto& route : routes_) {
    if (route.first.size() == r.path.size() + 1 && route.first.back() == '/' &&
        route.first.compare(0, r.path.size(), r.path) == 0) {
      w.status = 301;
      w.headers.set("Location", route.first + (r.raw_query.empty() ? "" : "?" + r.raw_query));
      return;
    }
  }
  error(w, 404, "404 page not found");
}

}  // namespace gort::http
