#include "base/fatal.hpp"

#include <unistd.h>

namespace gort::base {

void raw_write(std::string_view s) noexcept {
  while (!s.empty()) {
    ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
    if (n <= 0) return;  // nothing sensible to do on a failing stderr
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

void raw_write_uint(std::uint64_t v) noexcept {
  char buf[24];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  raw_write(std::string_view(p, static_cast<std::size_t>(buf + sizeof buf - p)));
}

void die() noexcept {
  ::_exit(2);
}

void fatal(std::string_view msg) noexcept {
  raw_write("fatal error: ");
  raw_write(msg);
  raw_write("\n");
  die();
}

}  // namespace gort::base
