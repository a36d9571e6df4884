// Networking: Go's net package for TCP (IPv4 and IPv6) and Unix stream sockets.
//
// Every socket is non-blocking and registered with the runtime's netpoller (epoll, see
// src/runtime/netpoll.cpp): a read or write that would block parks the goroutine, never the
// thread, and the scheduler makes it runnable again when the socket is ready. Outside
// goroutines (a plain thread) the same calls block the thread.
//
// Errors are std::system_error carrying the errno (std::generic_category()), with Go-like
// messages ("read tcp 127.0.0.1:8080->127.0.0.1:51234: connection reset by peer"):
//   * a deadline that passes fails the blocked and all later calls with
//     std::errc::timed_out (is_timeout() tells, like Go's os.ErrDeadlineExceeded) until the
//     deadline is moved;
//   * any call on a closed Conn or Listener, including one blocked when close() runs, fails
//     with std::errc::bad_file_descriptor and "use of closed network connection"
//     (is_closed() tells, like Go's net.ErrClosed);
//   * running out of file descriptors in accept() is EMFILE/ENFILE: the listener stays
//     usable, so an accept loop can back off and go on, as Go's http.Server does.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "gort/context.hpp"
#include "gort/time.hpp"

namespace gort::net {

namespace detail {
class Socket;  // an fd registered with the netpoller (src/net/socket.hpp)
}

// A connected stream socket. Movable, not copyable; the destructor closes it. A Conn may be
// used by two goroutines at once, one reading and one writing (as in Go).
class Conn {
 public:
  Conn() noexcept;
  Conn(Conn&&) noexcept;
  Conn& operator=(Conn&&) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  // Reads up to buf.size() bytes; returns 0 only at end of stream (or for an empty buf).
  std::size_t read(std::span<std::byte> buf);
  // Writes all of buf (looping over short writes) or throws.
  void write(std::span<const std::byte> buf);
  void write(std::string_view s) { write(std::as_bytes(std::span(s.data(), s.size()))); }
  // Shuts down the write half (TCP FIN): the peer's reads return 0; we can still read.
  void close_write();
  // Closes the socket and wakes any goroutine blocked on it. Idempotent.
  void close() noexcept;

  // Deadlines as in Go: an absolute time after which blocked and future calls fail with a
  // timeout. Time{} (the epoch) means no deadline. Setting one in the past fails pending
  // calls at once.
  void set_deadline(Time t);
  void set_read_deadline(Time t);
  void set_write_deadline(Time t);

  // "host:port" ("[::1]:80" for IPv6); the socket path for Unix sockets.
  std::string local_addr() const;
  std::string remote_addr() const;
  // The underlying fd (-1 when closed), for setsockopt and the like. Do not close it.
  int fd() const noexcept;
  explicit operator bool() const noexcept { return static_cast<bool>(sock_); }

 private:
  friend class Listener;
  friend Conn dial(const Context&, std::string_view, std::string_view);
  explicit Conn(std::unique_ptr<detail::Socket> s) noexcept;
  std::unique_ptr<detail::Socket> sock_;
};

// A listening socket.
class Listener {
 public:
  Listener() noexcept;
  Listener(Listener&&) noexcept;
  Listener& operator=(Listener&&) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();

  // Waits for and returns the next connection.
  Conn accept();
  // Closes the socket; a goroutine blocked in accept() fails with is_closed(). Unix
  // listeners remove their socket file. Idempotent.
  void close() noexcept;
  // The bound address as "host:port" (with the real port when listening on port 0), or
  // the socket path.
  std::string addr() const;
  int fd() const noexcept;
  explicit operator bool() const noexcept { return static_cast<bool>(sock_); }

 private:
  friend Listener listen(std::string_view, std::string_view);
  explicit Listener(std::unique_ptr<detail::Socket> s, std::string unix_path) noexcept;
  std::unique_ptr<detail::Socket> sock_;
  std::string unix_path_;
};

// net.Listen. network: "tcp", "tcp4", "tcp6" or "unix". address: "host:port", ":port",
// "[v6addr]:port"; the host is a numeric address or "localhost" (no DNS); port 0 picks a
// free port. Throws std::system_error (std::errc::invalid_argument for a bad address).
Listener listen(std::string_view network, std::string_view address);

// net.Dial / DialContext / DialTimeout. The connect waits in the netpoller; cancelling ctx
// or passing the timeout fails it (std::errc::operation_canceled / timed_out).
Conn dial(std::string_view network, std::string_view address);
Conn dial(const Context& ctx, std::string_view network, std::string_view address);
Conn dial_timeout(std::string_view network, std::string_view address,
                  std::chrono::nanoseconds timeout);

// Go's os.IsTimeout / errors.Is(err, os.ErrDeadlineExceeded).
bool is_timeout(const std::system_error& e) noexcept;
// errors.Is(err, net.ErrClosed).
bool is_closed(const std::system_error& e) noexcept;

}  // namespace gort::net
