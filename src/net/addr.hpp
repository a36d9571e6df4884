// Socket addresses: parsing Go-style address strings ("host:port", "[v6]:port", ":port",
// a Unix path) into sockaddrs, and formatting them back as Go prints them.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace gort::net::detail {

enum class Network { kTcp, kTcp4, kTcp6, kUnix };

// "tcp", "tcp4", "tcp6", "unix". Throws std::system_error(invalid_argument) otherwise.
Network parse_network(std::string_view network);
const char* network_name(Network n) noexcept;

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family() const noexcept { return storage.ss_family; }
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
};

// Resolves address for network. Hosts are numeric IPs or "localhost" (no DNS). An empty
// host means every interface for listen (dual-stack for "tcp") and the local host for
// dial. Throws std::system_error(invalid_argument) with Go's wording on bad input.
SockAddr resolve(Network n, std::string_view address, bool for_listen);

// "1.2.3.4:80", "[::1]:80" (v4-mapped v6 addresses print as IPv4, as in Go), or the Unix
// path ("@name" for the abstract namespace). Empty for an unnamed socket.
std::string format(const SockAddr& a);

}  // namespace gort::net::detail
