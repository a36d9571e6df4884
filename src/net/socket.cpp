// Socket: a non-blocking fd driven by the netpoller (Go's internal/poll.FD).
//
// Every operation tries its system call first and waits only on EAGAIN: in a goroutine
// it parks in runtime::poll_wait (the thread runs other goroutines); on a plain thread,
// or for a socket made while no runtime ran, it blocks the thread in poll(2). Readiness
// is edge-triggered and only a hint, so after every wait the call is simply retried.
//
// Closing. close() may run while other goroutines are blocked on the socket (Go's
// semantics: they fail with "use of closed network connection"), so the fd cannot be
// closed at once: a concurrent operation could then read a reused fd number. Every
// operation holds a Use (a count of operations in flight, Go's fdMutex reference); close()
// marks the socket closed, wakes the waiters (poll_unblock; shutdown(2) for waiting
// threads) and the last operation to leave closes the fd. The Use count and the closed
// flag form a Dekker pair (seq_cst store, then load of the other), so exactly the last of
// them sees both and closes; fd_closed_ makes the close happen once. closed_ is set only
// after the waiters were woken and the poller told the descriptor is closing (an
// operation leaving in between would otherwise close it under close()'s feet);
// close_started_ makes close() itself run once.
//
// The Socket object itself must outlive every operation on it (as any C++ object must):
// destroy a Conn only after the goroutines using it returned.
#include "net/socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "os/os.hpp"
#include "runtime/sched.hpp"

namespace gort::net::detail {

namespace {

constexpr std::int64_t kThreadPollSliceNs = 50'000'000;  // re-read deadlines this often

bool in_goroutine() noexcept {
  return runtime::current_g() != nullptr;
}

bool is_tcp(Network n) noexcept {
  return n != Network::kUnix;
}

void set_nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // Go's default
}

}  // namespace

class Socket::Use {
 public:
  Use(Socket& s, const char* op) : s_(s) {
    s_.uses_.fetch_add(1, std::memory_order_seq_cst);
    if (s_.closed_.load(std::memory_order_seq_cst)) {
      release();
      s_.fail(op, EBADF);
    }
  }
  ~Use() { release(); }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

 private:
  void release() noexcept {
    if (s_.uses_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        s_.closed_.load(std::memory_order_seq_cst))
      s_.finish_close();
  }
  Socket& s_;
};

std::unique_ptr<Socket> Socket::create(int family, Network net, const char* op) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    throw std::system_error(err, std::generic_category(),
                            std::string(op) + " " + network_name(net) + ": socket");
  }
  return std::make_unique<Socket>(fd, net, op);
}

Socket::Socket(int fd, Network net, const char* op) : fd_(fd), net_(net) {
  int err = 0;
  pd_ = runtime::poll_open(fd, &err);
  if (pd_ == nullptr && err != 0) {
    ::close(fd);
    fd_closed_.store(true, std::memory_order_relaxed);
    close_started_.store(true, std::memory_order_relaxed);
    closed_.store(true, std::memory_order_relaxed);
    throw std::system_error(err, std::generic_category(),
                            std::string(op) + " " + network_name(net) + ": epoll_ctl");
  }
}

Socket::~Socket() {
  close();
}

void Socket::fail(const char* op, int err) const {
  std::string what = std::string(op) + " " + network_name(net_);
  if (err == EBADF && closed_.load(std::memory_order_acquire)) {
    throw std::system_error(err, std::generic_category(),
                            what + ": use of closed network connection");
  }
  const std::string local = local_addr();
  const std::string remote = remote_addr();
  if (!local.empty()) what += " " + local;
  if (!remote.empty()) what += (local.empty() ? " " : "->") + remote;
  if (err == ETIMEDOUT) what += ": i/o timeout";
  throw std::system_error(err, std::generic_category(), what);
}

std::int64_t Socket::deadline(runtime::PollMode mode) const noexcept {
  return (mode == runtime::PollMode::kRead ? read_deadline_ : write_deadline_)
      .load(std::memory_order_acquire);
}

void Socket::check_usable(runtime::PollMode mode, const char* op) {
  if (closed_.load(std::memory_order_acquire)) fail(op, EBADF);
  const std::int64_t d = deadline(mode);
  const bool expired =
      pd_ != nullptr ? runtime::poll_expired(pd_, mode) : (d != 0 && d <= os::nanotime());
  if (expired) fail(op, ETIMEDOUT);
}

void Socket::wait(runtime::PollMode mode, const char* op) {
  if (pd_ == nullptr || !in_goroutine()) {
    wait_thread(mode, op);
    return;
  }
  switch (runtime::poll_wait(pd_, mode)) {
    case runtime::PollResult::kReady:
      return;
    case runtime::PollResult::kClosing:
      fail(op, EBADF);
    case runtime::PollResult::kTimeout:
      fail(op, ETIMEDOUT);
  }
}

void Socket::wait_thread(runtime::PollMode mode, const char* op) {
  const std::int64_t d = deadline(mode);
  std::int64_t slice = kThreadPollSliceNs;
  if (d != 0) slice = std::min(slice, std::max<std::int64_t>(d - os::nanotime(), 0));
  pollfd p{fd_, static_cast<short>(mode == runtime::PollMode::kRead ? POLLIN : POLLOUT), 0};
  thread_waiters_.fetch_add(1, std::memory_order_seq_cst);
  ::poll(&p, 1, static_cast<int>((slice + 999'999) / 1'000'000));
  thread_waiters_.fetch_sub(1, std::memory_order_seq_cst);
  check_usable(mode, op);
}

std::size_t Socket::read(std::byte* buf, std::size_t n) {
  if (n == 0) return 0;
  Use use(*this, "read");
  check_usable(runtime::PollMode::kRead, "read");
  for (;;) {
    const ssize_t r = ::read(fd_, buf, n);
    if (r >= 0) return static_cast<std::size_t>(r);
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EAGAIN) fail("read", err);
    wait(runtime::PollMode::kRead, "read");
  }
}

void Socket::write(const std::byte* buf, std::size_t n) {
  Use use(*this, "write");
  check_usable(runtime::PollMode::kWrite, "write");
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::send(fd_, buf + done, n - done, MSG_NOSIGNAL);
    if (r >= 0) {
      done += static_cast<std::size_t>(r);
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EAGAIN) fail("write", err);
    wait(runtime::PollMode::kWrite, "write");
  }
}

std::unique_ptr<Socket> Socket::accept() {
  Use use(*this, "accept");
  check_usable(runtime::PollMode::kRead, "accept");
  for (;;) {
    const int nfd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (nfd >= 0) {
      if (is_tcp(net_)) set_nodelay(nfd);
      return std::make_unique<Socket>(nfd, net_, "accept");
    }
    const int err = errno;
    if (err == EINTR || err == ECONNABORTED) continue;  // Go retries these too
    if (err != EAGAIN) fail("accept", err);             // EMFILE etc.: the listener stays usable
    wait(runtime::PollMode::kRead, "accept");
  }
}

void Socket::connect(const SockAddr& a) {
  Use use(*this, "dial");
  check_usable(runtime::PollMode::kWrite, "dial");
  if (::connect(fd_, a.get(), a.len) == 0) return;
  int err = errno;
  if (err != EINPROGRESS && err != EINTR && err != EALREADY) fail("dial", err);
  for (;;) {
    wait(runtime::PollMode::kWrite, "dial");
    socklen_t len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) break;
    if (err != EINPROGRESS && err != EALREADY && err != EINTR) fail("dial", err);
  }
  if (is_tcp(net_)) set_nodelay(fd_);
}

void Socket::close_write() {
  Use use(*this, "close");
  if (::shutdown(fd_, SHUT_WR) != 0) fail("close", errno);
}

void Socket::close() noexcept {
  if (close_started_.exchange(true, std::memory_order_acq_rel)) return;
  // The poller must know the descriptor is closing before closed_ is set: from then on the
  // last operation to leave may close it (finish_close), and poll_close requires it.
  if (pd_ != nullptr) runtime::poll_unblock(pd_);
  closed_.store(true, std::memory_order_seq_cst);
  if (thread_waiters_.load(std::memory_order_seq_cst) > 0) ::shutdown(fd_, SHUT_RDWR);
  if (uses_.load(std::memory_order_seq_cst) == 0) finish_close();
}

void Socket::finish_close() noexcept {
  if (fd_closed_.exchange(true, std::memory_order_acq_rel)) return;
  if (pd_ != nullptr) runtime::poll_close(pd_);
  ::close(fd_);
}

void Socket::set_deadline(std::int64_t when, bool read, bool write) {
  Use use(*this, "set deadline");
  if (read) {
    read_deadline_.store(when, std::memory_order_release);
    if (pd_ != nullptr) runtime::poll_set_deadline(pd_, when, runtime::PollMode::kRead);
  }
  if (write) {
    write_deadline_.store(when, std::memory_order_release);
    if (pd_ != nullptr) runtime::poll_set_deadline(pd_, when, runtime::PollMode::kWrite);
  }
}

std::string Socket::local_addr() const {
  if (fd_closed_.load(std::memory_order_acquire)) return "";
  SockAddr a;
  a.len = sizeof a.storage;
  if (::getsockname(fd_, a.get(), &a.len) != 0) return "";
  return format(a);
}

std::string Socket::remote_addr() const {
  if (fd_closed_.load(std::memory_order_acquire)) return "";
  SockAddr a;
  a.len = sizeof a.storage;
  if (::getpeername(fd_, a.get(), &a.len) != 0) return "";
  return format(a);
}

}  // namespace gort::net::detail
