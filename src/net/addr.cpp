// Address parsing and formatting (see addr.hpp). Numeric only: resolving names is a
// blocking library call (getaddrinfo) that belongs in gort::blocking, which a later
// resolver can use; "localhost" is the one name every test and example needs.
#include "net/addr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>
#include <system_error>

namespace gort::net::detail {

namespace {

[[noreturn]] void bad_address(std::string_view address, const char* why) {
  throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                          "address " + std::string(address) + ": " + why);
}

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

// Go's net.SplitHostPort, plus a numeric port.
HostPort split_host_port(std::string_view address) {
  HostPort hp;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos) bad_address(address, "missing ']' in address");
    if (close + 1 >= address.size() || address[close + 1] != ':')
      bad_address(address, "missing port in address");
    hp.host = std::string(address.substr(1, close - 1));
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) bad_address(address, "missing port in address");
    hp.host = std::string(address.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) bad_address(address, "too many colons in address");
    port = address.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
    bad_address(address, "invalid port");
  hp.port = static_cast<std::uint16_t>(value);
  return hp;
}

SockAddr make_v4(const in_addr& ip, std::uint16_t port) {
  SockAddr a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr = ip;
  a.len = sizeof(sockaddr_in);
  return a;
}

SockAddr make_v6(const in6_addr& ip, std::uint16_t port) {
  SockAddr a;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = ip;
  a.len = sizeof(sockaddr_in6);
  return a;
}

SockAddr resolve_unix(std::string_view path) {
  SockAddr a;
  auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage);
  if (path.empty() || path.size() >= sizeof(sun->sun_path))
    bad_address(path, "invalid Unix socket path");
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.data(), path.size());
  if (path.front() == '@') sun->sun_path[0] = '\0';  // abstract namespace, as in Go
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                 (path.front() == '@' ? 0 : 1));
  return a;
}

SockAddr resolve_empty_host(Network n, std::uint16_t port, bool for_listen) {
  if (n == Network::kTcp6) return make_v6(for_listen ? in6addr_any : in6addr_loopback, port);
  in_addr ip{};
  ip.s_addr = htonl(for_listen ? INADDR_ANY : INADDR_LOOPBACK);
  // "tcp" listens dual-stack on [::] (the socket is made with IPV6_V6ONLY off).
  if (n == Network::kTcp && for_listen) return make_v6(in6addr_any, port);
  return make_v4(ip, port);
}

// Go's net.JoinHostPort. Built with append: GCC 12's -Wrestrict misfires on chains of
// operator+ over temporaries.
std::string join_host_port(const char* host, std::uint16_t port, bool bracket) {
  std::string out;
  if (bracket) out.push_back('[');
  out.append(host);
  if (bracket) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

}  // namespace

Network parse_network(std::string_view network) {
  if (network == "tcp") return Network::kTcp;
  if (network == "tcp4") return Network::kTcp4;
  if (network == "tcp6") return Network::kTcp6;
  if (network == "unix") return Network::kUnix;
  throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                          "unknown network " + std::string(network));
}

const char* network_name(Network n) noexcept {
  switch (n) {
    case Network::kTcp:
      return "tcp";
    case Network::kTcp4:
      return "tcp4";
    case Network::kTcp6:
      return "tcp6";
    case Network::kUnix:
      return "unix";
  }
  return "?";
}

SockAddr resolve(Network n, std::string_view address, bool for_listen) {
  if (n == Network::kUnix) return resolve_unix(address);
  const HostPort hp = split_host_port(address);
  if (hp.host.empty()) return resolve_empty_host(n, hp.port, for_listen);
  if (hp.host == "localhost") {
    if (n == Network::kTcp6) return make_v6(in6addr_loopback, hp.port);
    in_addr ip{};
    ip.s_addr = htonl(INADDR_LOOPBACK);
    return make_v4(ip, hp.port);
  }
  in_addr ip4{};
  if (inet_pton(AF_INET, hp.host.c_str(), &ip4) == 1) {
    if (n == Network::kTcp6) bad_address(address, "no suitable address found");
    return make_v4(ip4, hp.port);
  }
  in6_addr ip6{};
  if (inet_pton(AF_INET6, hp.host.c_str(), &ip6) == 1) {
    if (n == Network::kTcp4) bad_address(address, "no suitable address found");
    return make_v6(ip6, hp.port);
  }
  bad_address(address, "not a numeric address (gort::net does not resolve names)");
}

std::string format(const SockAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (a.family()) {
    case AF_INET: {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&a.storage);
      inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
      return join_host_port(buf, ntohs(sin->sin_port), false);
    }
    case AF_INET6: {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
      const std::uint16_t port = ntohs(sin6->sin6_port);
      if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
        inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf, sizeof buf);
        return join_host_port(buf, port, false);
      }
      inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
      return join_host_port(buf, port, true);
    }
    case AF_UNIX: {
      const auto* sun = reinterpret_cast<const sockaddr_un*>(&a.storage);
      const std::size_t n =
          a.len > offsetof(sockaddr_un, sun_path) ? a.len - offsetof(sockaddr_un, sun_path) : 0;
      if (n == 0) return "";
      if (sun->sun_path[0] == '\0') {
        std::string name(1, '@');
        name.append(sun->sun_path + 1, n - 1);
        return name;
      }
      return std::string(sun->sun_path, strnlen(sun->sun_path, n));
    }
    default:
      return "";
  }
}

}  // namespace gort::net::detail
