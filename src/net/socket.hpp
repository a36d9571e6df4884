// A socket registered with the netpoller: the layer under gort::net's Conn and Listener
// (Go's internal/poll.FD). socket.cpp explains the design.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "net/addr.hpp"
#include "runtime/netpoll.hpp"

namespace gort::net::detail {

class Socket {
 public:
  // Makes a non-blocking, close-on-exec stream socket. Throws std::system_error.
  static std::unique_ptr<Socket> create(int family, Network net, const char* op);
  // Adopts fd (already non-blocking), e.g. one returned by accept.
  Socket(int fd, Network net, const char* op);
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  std::size_t read(std::byte* buf, std::size_t n);
  void write(const std::byte* buf, std::size_t n);
  std::unique_ptr<Socket> accept();
  // Connects to a; the wait honours the write deadline.
  void connect(const SockAddr& a);
  void close_write();
  void close() noexcept;

  // Absolute os::nanotime() deadlines, 0 for none.
  void set_deadline(std::int64_t when, bool read, bool write);

  int fd() const noexcept { return closed_.load(std::memory_order_acquire) ? -1 : fd_; }
  Network network() const noexcept { return net_; }
  std::string local_addr() const;
  std::string remote_addr() const;
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

 private:
  class Use;  // an in-flight operation (keeps the fd open while it runs)
  std::int64_t deadline(runtime::PollMode mode) const noexcept;  // 0: none
  void wait(runtime::PollMode mode, const char* op);
  void check_usable(runtime::PollMode mode, const char* op);
  void wait_thread(runtime::PollMode mode, const char* op);
  [[noreturn]] void fail(const char* op, int err) const;
  void finish_close() noexcept;

  int fd_ = -1;
  Network net_;
  runtime::PollDesc* pd_ = nullptr;  // null when made outside a running runtime
  std::atomic<std::int64_t> read_deadline_{0}, write_deadline_{0};
  std::atomic<bool> close_started_{false};
  std::atomic<bool> closed_{false};
  std::atomic<bool> fd_closed_{false};
  std::atomic<std::uint32_t> uses_{0};
  std::atomic<std::uint32_t> thread_waiters_{0};
};

}  // namespace gort::net::detail
