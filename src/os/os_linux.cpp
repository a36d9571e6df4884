// Linux backend of os.hpp.
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "base/fatal.hpp"
#include "base/keep_errno.hpp"
#include "os/os.hpp"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // linux/mman.h since 6.13
#endif

namespace gort::os {

static_assert(sizeof(stack_t) <= 32, "AltStack::previous_ too small");

std::int64_t nanotime() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t coarse_nanotime() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t coarse_nanotime_lag() noexcept {
  static const std::int64_t lag = [] {
    timespec res{};
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0) return std::int64_t{1'000'000'000};
    return 2 * (static_cast<std::int64_t>(res.tv_sec) * 1'000'000'000 + res.tv_nsec);
  }();
  return lag;
}

void thread_yield() noexcept {
  base::KeepErrno keep;
  sched_yield();
}

void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                std::int64_t timeout_ns) noexcept {
  base::KeepErrno keep;
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1'000'000'000;
    ts.tv_nsec = timeout_ns % 1'000'000'000;
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE, expected, tsp,
          nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>* addr, int n) noexcept {
  base::KeepErrno keep;
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAKE_PRIVATE, n, nullptr,
          nullptr, 0);
}

// Note protocol: key 0 = not signalled, 1 = signalled. wakeup stores 1 (release, pairs
// with the acquire load in sleep) and then wakes the futex; sleep waits while key is 0.
void Note::wakeup() noexcept {
  if (key_.exchange(1, std::memory_order_release) == 0) futex_wake(&key_, 1);
}

void Note::sleep() noexcept {
  while (key_.load(std::memory_order_acquire) == 0) futex_wait(&key_, 0);
}

bool Note::sleep_for(std::int64_t ns) noexcept {
  const std::int64_t deadline = nanotime() + ns;
  while (key_.load(std::memory_order_acquire) == 0) {
    const std::int64_t left = deadline - nanotime();
    if (left <= 0) return false;
    futex_wait(&key_, 0, left);
  }
  return true;
}

// Registration is per process and survives run(): done once. Under qemu-user or a seccomp
// filter the syscall may be missing (ENOSYS, EPERM): then the caller goes without.
bool process_barrier_init() noexcept {
  static const bool ok = [] {
    base::KeepErrno keep;
    const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  return ok;
}

bool process_barrier() noexcept {
  base::KeepErrno keep;
  return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

int thread_id() noexcept {
  return static_cast<int>(syscall(SYS_gettid));
}

void current_thread_stack(const void** bottom, std::size_t* size) noexcept {
  *bottom = nullptr;
  *size = 0;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* addr = nullptr;
  std::size_t sz = 0;
  if (pthread_attr_getstack(&attr, &addr, &sz) == 0) {
    *bottom = addr;
    *size = sz;
  }
  pthread_attr_destroy(&attr);
}

int usable_cpus() noexcept {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

void* reserve_lazy(std::size_t size) noexcept {
  const int saved_errno = errno;  // kept on success, set on failure
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // Stacks touch one or two pages each: a transparent huge page would commit 2 MiB.
  madvise(p, size, MADV_NOHUGEPAGE);  // may fail (no THP support): harmless
  errno = saved_errno;
  return p;
}

void* map_huge_buffer() noexcept {
  const int saved_errno = errno;
  // Twice the size, then trim to an aligned window: THP needs 2 MiB alignment.
  const std::size_t n = kHugeBufferSize;
  void* raw = mmap(nullptr, 2 * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + n - 1) & ~(n - 1);
  if (aligned > start) munmap(raw, aligned - start);
  if (aligned + n < start + 2 * n)
    munmap(reinterpret_cast<void*>(aligned + n), start + n - aligned);
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, n, MADV_HUGEPAGE);  // may fail (no THP support): then 4 KiB pages
  errno = saved_errno;
  return p;
}

void release(void* p, std::size_t size) noexcept {
  base::KeepErrno keep;
  munmap(p, size);
}

void decommit(void* p, std::size_t size) noexcept {
  base::KeepErrno keep;
  madvise(p, size, MADV_DONTNEED);
}

namespace {
// -1 unknown, 0 mprotect, 1 MADV_GUARD_INSTALL. Probed once; kernels do not change.
// GORT_STACK_GUARD=mprotect forces the fallback: for tests, and for emulators such as
// qemu-user 7.2 that answer success to madvise advice they do not implement.
std::atomic<int> g_guard_mode{-1};

int initial_guard_mode() {
  const char* env = std::getenv("GORT_STACK_GUARD");
  return env != nullptr && std::strcmp(env, "mprotect") == 0 ? 0 : -1;
}
}  // namespace

bool install_guard(void* p, std::size_t size) noexcept {
  static const bool forced = [] {
    if (initial_guard_mode() == 0) g_guard_mode.store(0, std::memory_order_relaxed);
    return true;
  }();
  (void)forced;
  int mode = g_guard_mode.load(std::memory_order_relaxed);
  const int saved_errno = errno;  // restored on success (see base::KeepErrno); set on failure
  if (mode != 0) {
    if (madvise(p, size, MADV_GUARD_INSTALL) == 0) {
      g_guard_mode.store(1, std::memory_order_relaxed);
      return true;
    }
    if (errno != EINVAL || mode == 1) return false;
    g_guard_mode.store(0, std::memory_order_relaxed);  // kernel older than 6.13
  }
  if (mprotect(p, size, PROT_NONE) != 0) return false;
  errno = saved_errno;
  return true;
}

GuardKind guard_kind() noexcept {
  return g_guard_mode.load(std::memory_order_relaxed) == 0 ? GuardKind::kMprotect
                                                           : GuardKind::kGuardInstall;
}

namespace {
FaultHandler g_fault_handler = nullptr;
struct sigaction g_prev_segv, g_prev_bus;

void chain(int sig, siginfo_t* info, void* uctx) {
  const struct sigaction& prev = sig == SIGSEGV ? g_prev_segv : g_prev_bus;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) {
      prev.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Default action: restore it and return, so the faulting instruction faults again.
  signal(sig, SIG_DFL);
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
  const int saved = errno;
  if (g_fault_handler != nullptr && g_fault_handler(info->si_addr)) {
    errno = saved;
    return;
  }
  chain(sig, info, uctx);
  errno = saved;
}
}  // namespace

void install_fault_handler(FaultHandler handler) noexcept {
  if (g_fault_handler != nullptr) {
    g_fault_handler = handler;
    return;
  }
  g_fault_handler = handler;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_prev_segv);
  sigaction(SIGBUS, &sa, &g_prev_bus);
}

int stop_signal() noexcept {
  return SIGURG;
}

void install_stop_handler(StopHandler handler) noexcept {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(handler);
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGURG, &sa, nullptr);
}

int interrupted_registers(const void* ucontext, std::uintptr_t* regs, int max,
                          std::uintptr_t* stack_low) noexcept {
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
  int n = 0;
#if defined(__x86_64__)
  for (int i = 0; i < NGREG && n < max; ++i)
    regs[n++] = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[i]);
  *stack_low = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]) - 128;  // red zone
#elif defined(__aarch64__)
  for (int i = 0; i < 31 && n < max; ++i) regs[n++] = uc->uc_mcontext.regs[i];
  *stack_low = uc->uc_mcontext.sp;
#else
#error "interrupted_registers: unsupported architecture"
#endif
  return n;
}

bool signal_thread(int tid) noexcept {
  base::KeepErrno keep;
  return syscall(SYS_tgkill, getpid(), tid, SIGURG) == 0;
}

namespace {
QuitHandler g_quit_handler = nullptr;
struct sigaction g_prev_quit;

void on_quit(int /*sig*/) {
  const int saved = errno;
  if (g_quit_handler != nullptr) g_quit_handler();
  errno = saved;
}
}  // namespace

void install_quit_handler(QuitHandler handler) noexcept {
  g_quit_handler = handler;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_quit;
  sa.sa_flags = SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGQUIT, &sa, &g_prev_quit);
}

void restore_quit_handler() noexcept {
  sigaction(SIGQUIT, &g_prev_quit, nullptr);
  g_quit_handler = nullptr;
}

AltStack::AltStack() noexcept {
  // 64 KiB: the fault reporter is small, but sanitizer runtimes run their own handlers
  // on this stack too and need more than SIGSTKSZ.
  size_ = 64 * 1024;
  mem_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem_ == MAP_FAILED) {
    mem_ = nullptr;
    return;
  }
  stack_t ss;
  ss.ss_sp = mem_;
  ss.ss_size = size_;
  ss.ss_flags = 0;
  stack_t* prev = reinterpret_cast<stack_t*>(previous_);
  had_previous_ = sigaltstack(&ss, prev) == 0 && !(prev->ss_flags & SS_DISABLE);
}

AltStack::~AltStack() {
  if (mem_ == nullptr) return;
  if (had_previous_) {
    sigaltstack(reinterpret_cast<stack_t*>(previous_), nullptr);
  } else {
    stack_t ss;
    std::memset(&ss, 0, sizeof ss);
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
  }
  munmap(mem_, size_);
}

}  // namespace gort::os

// ---- Poller -------------------------------------------------------------------------

namespace gort::os {

namespace {

// epoll_pwait2 (Linux 5.11) takes a timespec; older kernels (and qemu-user) answer ENOSYS
// and we fall back to epoll_wait's milliseconds, rounded up so a timer is never run early.
int epoll_wait_ns(int epfd, epoll_event* evs, int max, std::int64_t timeout_ns) noexcept {
  static std::atomic<bool> no_pwait2{false};
  if (timeout_ns > 0 && !no_pwait2.load(std::memory_order_relaxed)) {
    timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
                static_cast<long>(timeout_ns % 1'000'000'000)};
#ifdef SYS_epoll_pwait2
    const long n = syscall(SYS_epoll_pwait2, epfd, evs, max, &ts, nullptr, 0);
    if (n >= 0 || errno != ENOSYS) return static_cast<int>(n);
#endif
    no_pwait2.store(true, std::memory_order_relaxed);
  }
  int ms = -1;
  if (timeout_ns == 0) ms = 0;
  if (timeout_ns > 0)
    ms = static_cast<int>(std::min<std::int64_t>((timeout_ns + 999'999) / 1'000'000, INT_MAX));
  return epoll_wait(epfd, evs, max, ms);
}

}  // namespace

Poller::~Poller() {
  if (epfd_ >= 0) close(epfd_);
  if (wakefd_ >= 0) close(wakefd_);
}

bool Poller::open() noexcept {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return false;
  wakefd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakefd_ < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) == 0;
}

int Poller::add(int fd, void* tag) noexcept {
  base::KeepErrno keep;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = tag;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

int Poller::remove(int fd) noexcept {
  base::KeepErrno keep;
  epoll_event ev{};
  return epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev) == 0 ? 0 : errno;
}

int Poller::wait(std::int64_t timeout_ns, PollEvent* out, int max) noexcept {
  base::KeepErrno keep;
  constexpr int kBatch = 128;
  epoll_event evs[kBatch];
  const int n = epoll_wait_ns(epfd_, evs, std::min(max, kBatch), timeout_ns);
  int k = 0;
  for (int i = 0; i < n; ++i) {
    if (evs[i].data.ptr == nullptr) {  // our eventfd: consume the wake
      std::uint64_t v = 0;
      [[maybe_unused]] const ssize_t r = read(wakefd_, &v, sizeof v);
      wake_pending_.store(false, std::memory_order_release);
      continue;
    }
    const std::uint32_t e = evs[i].events;
    const bool hup_or_err = (e & (EPOLLHUP | EPOLLERR)) != 0;
    out[k].tag = evs[i].data.ptr;
    out[k].readable = hup_or_err || (e & (EPOLLIN | EPOLLRDHUP)) != 0;
    out[k].writable = hup_or_err || (e & EPOLLOUT) != 0;
    ++k;
  }
  return k;
}

void Poller::wake() noexcept {
  // One write per wait is enough (Go's netpollWakeSig): later wakes see the pending one.
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  base::KeepErrno keep;
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t r = write(wakefd_, &one, sizeof one);
}

}  // namespace gort::os
