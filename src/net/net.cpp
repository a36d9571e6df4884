// gort::net's public classes over detail::Socket (see include/gort/net.hpp): listen, dial,
// Conn and Listener, and Go's dial-with-context.
//
// Dial with a context. The connect waits in the netpoller like a write; the context's
// deadline becomes the socket's write deadline for the duration of the connect, and a
// cancellable context gets a watcher goroutine that, on cancellation, expires that
// deadline so the connect wakes at once (Go's net.sysDialer does the same with
// SetWriteDeadline(aLongTimeAgo)). The dialer waits for the watcher to finish before it
// returns, so the watcher never outlives the socket. The error then reports the context's
// reason: operation_canceled or timed_out.
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <variant>

#include "gort/net.hpp"
#include "gort/runtime.hpp"
#include "gort/select.hpp"
#include "net/socket.hpp"

namespace gort::net {

namespace {

using detail::Network;
using detail::Socket;

std::int64_t to_nanotime(Time t) noexcept {
  if (t == Time{}) return 0;
  const std::int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return ns <= 0 ? 1 : ns;  // a real time at or before the clock's origin: already passed
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

void set_int_option(int fd, int level, int name, int value) {
  ::setsockopt(fd, level, name, &value, sizeof value);
}

// The file a Unix listener removes when closed, as Go's does (none for abstract names). An
// existing file at the path makes bind fail with EADDRINUSE, as in Go.
std::string unix_path_to_remove(std::string_view address) {
  if (address.empty() || address.front() == '@') return "";
  return std::string(address);
}

std::error_code context_error_code(const Context& ctx) {
  const std::error_code e = ctx.err();
  if (e == ContextError::deadline_exceeded) return std::make_error_code(std::errc::timed_out);
  return std::make_error_code(std::errc::operation_canceled);
}

// Watches ctx while a connect runs; expires the socket's write deadline on cancellation.
class CancelWatcher {
 public:
  CancelWatcher(const Context& ctx, Socket& s) {
    if (!ctx.done() || gort::goid() == 0) return;  // never cancelled, or not a goroutine
    stop_ = make_chan<std::monostate>(0);
    finished_ = make_chan<std::monostate>(0);
    gort::go([done = ctx.done(), stop = stop_, finished = finished_, &s] {
      gort::select(on_recv(done, [&](auto) { s.set_deadline(1, false, true); }),
                   on_recv(stop, [](auto) {}));
      finished.close();
    });
  }
  ~CancelWatcher() {
    if (!stop_) return;
    stop_.close();
    finished_.recv();
  }
  CancelWatcher(const CancelWatcher&) = delete;
  CancelWatcher& operator=(const CancelWatcher&) = delete;

 private:
  Chan<std::monostate> stop_, finished_;
};

}  // namespace

// ---- Conn ---------------------------------------------------------------------------

Conn::Conn() noexcept = default;
Conn::Conn(std::unique_ptr<detail::Socket> s) noexcept : sock_(std::move(s)) {}
Conn::Conn(Conn&&) noexcept = default;
Conn& Conn::operator=(Conn&&) noexcept = default;
Conn::~Conn() = default;

namespace {
detail::Socket& usable(const std::unique_ptr<detail::Socket>& s, const char* op) {
  if (!s) {
    throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor),
                            std::string(op) + ": use of closed network connection");
  }
  return *s;
}
}  // namespace

std::size_t Conn::read(std::span<std::byte> buf) {
  return usable(sock_, "read").read(buf.data(), buf.size());
}
void Conn::write(std::span<const std::byte> buf) {
  usable(sock_, "write").write(buf.data(), buf.size());
}
void Conn::close_write() {
  usable(sock_, "close").close_write();
}
void Conn::close() noexcept {
  if (sock_) sock_->close();
}
void Conn::set_deadline(Time t) {
  usable(sock_, "set deadline").set_deadline(to_nanotime(t), true, true);
}
void Conn::set_read_deadline(Time t) {
  usable(sock_, "set deadline").set_deadline(to_nanotime(t), true, false);
}
void Conn::set_write_deadline(Time t) {
  usable(sock_, "set deadline").set_deadline(to_nanotime(t), false, true);
}
std::string Conn::local_addr() const {
  return sock_ ? sock_->local_addr() : "";
}
std::string Conn::remote_addr() const {
  return sock_ ? sock_->remote_addr() : "";
}
int Conn::fd() const noexcept {
  return sock_ ? sock_->fd() : -1;
}

// ---- Listener -----------------------------------------------------------------------

Listener::Listener() noexcept = default;
Listener::Listener(std::unique_ptr<detail::Socket> s, std::string unix_path) noexcept
    : sock_(std::move(s)), unix_path_(std::move(unix_path)) {}
Listener::Listener(Listener&&) noexcept = default;
Listener& Listener::operator=(Listener&& o) noexcept {
  if (this != &o) {
    close();
    sock_ = std::move(o.sock_);
    unix_path_ = std::move(o.unix_path_);
  }
  return *this;
}
Listener::~Listener() {
  close();
}

Conn Listener::accept() {
  return Conn(usable(sock_, "accept").accept());
}

void Listener::close() noexcept {
  if (!sock_ || sock_->closed()) return;
  sock_->close();
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

std::string Listener::addr() const {
  if (!sock_) return "";
  if (sock_->network() == Network::kUnix && !unix_path_.empty()) return unix_path_;
  return sock_->local_addr();
}

int Listener::fd() const noexcept {
  return sock_ ? sock_->fd() : -1;
}

// ---- listen and dial ----------------------------------------------------------------

Listener listen(std::string_view network, std::string_view address) {
  const Network n = detail::parse_network(network);
  const detail::SockAddr a = detail::resolve(n, address, true);
  const std::string what = "listen " + std::string(network) + " " + std::string(address);
  auto s = Socket::create(a.family(), n, "listen");
  const int fd = s->fd();
  if (n != Network::kUnix) set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (a.family() == AF_INET6) set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, n == Network::kTcp6);
  if (::bind(fd, a.get(), a.len) != 0) throw_errno(errno, what + ": bind");
  if (::listen(fd, SOMAXCONN) != 0) throw_errno(errno, what + ": listen");
  return Listener(std::move(s), n == Network::kUnix ? unix_path_to_remove(address) : "");
}

Conn dial(const Context& ctx, std::string_view network, std::string_view address) {
  const Network n = detail::parse_network(network);
  const detail::SockAddr a = detail::resolve(n, address, false);
  const std::string what = "dial " + std::string(network) + " " + std::string(address);
  if (ctx.err()) throw std::system_error(context_error_code(ctx), what);
  auto s = Socket::create(a.family(), n, "dial");
  if (const auto d = ctx.deadline()) s->set_deadline(to_nanotime(*d), false, true);
  try {
    {
      CancelWatcher watch(ctx, *s);
      s->connect(a);
    }
    if (ctx.err()) throw std::system_error(context_error_code(ctx), what);
  } catch (const std::system_error& e) {
    if (ctx.err()) throw std::system_error(context_error_code(ctx), what);
    throw std::system_error(e.code(), what + ": connect");
  }
  s->set_deadline(0, false, true);
  return Conn(std::move(s));
}

Conn dial(std::string_view network, std::string_view address) {
  return dial(background(), network, address);
}

Conn dial_timeout(std::string_view network, std::string_view address,
                  std::chrono::nanoseconds timeout) {
  auto [ctx, cancel] = with_timeout(background(), timeout);
  return dial(ctx, network, address);
}

bool is_timeout(const std::system_error& e) noexcept {
  return e.code() == std::errc::timed_out;
}

bool is_closed(const std::system_error& e) noexcept {
  return e.code() == std::errc::bad_file_descriptor;
}

}  // namespace gort::net
