// The execution tracer: Go's runtime/trace, writing Chrome Trace Event JSON.
//
// Problem. The scheduler makes millions of decisions a second on every thread; a tracer
// must record them without serialising those threads or slowing them much, and must cost
// nothing measurable when off.
//
// Design.
//   * Hooks (hooks.hpp) are inline: a relaxed load of g_enabled and a [[unlikely]] call.
//   * Each thread that emits owns a Writer: a chain of 64 KiB chunks of binary Records
//     (json's input, trace_internal.hpp). Only that thread appends (single producer); the
//     trace's writer thread reads (single consumer). The producer writes a record, then
//     publishes it with a release store of the chunk's `used`; when a chunk is full it
//     links a new one with a release store of `next`, after its last `used` store. The
//     consumer reads `next` (acquire) before `used` (acquire): if `next` is set, `used`
//     is final and the chunk can be freed once read. No locks, no RMW on the hot path.
//   * A writer thread (a plain std::thread, never an M) wakes every kFlushPeriod, copies
//     the committed records of every Writer, sorts the batch by timestamp (threads'
//     records interleave in time, and a record may change another M's state: json.cpp;
//     the last 50 ms wait for the next round, in case a record is published late),
//     converts it to JSON and writes it to the user's stream. Formatting never happens on
//     a goroutine's thread.
//   * Timestamps are os::nanotime() (CLOCK_MONOTONIC through the vDSO, ~20 ns): the same
//     clock on every thread, so the merge needs no calibration. rdtsc would save ~10 ns per
//     event but needs a calibration and an invariant TSC; measured cost in
//     docs/benchmarks.md.
//
// Stop protocol. stop() must not free a chunk that a producer is still writing. Each
// Writer has an `emitting` word: a producer stores 1 (seq_cst), re-checks g_enabled
// (seq_cst), appends, and stores 0 (release). stop() clears g_enabled (seq_cst) and then
// waits for every Writer's `emitting` to read 0. This is Dekker's pattern: either the
// producer sees the flag cleared and appends nothing, or stop() sees it emitting and
// waits. After that no producer touches any chunk until the next start(), and the last
// drain and the reset run alone. The seq_cst store costs ~20 cycles per event while
// tracing, nothing when off.
//
// Writers are never freed: a producer may still hold its thread's Writer pointer (taken
// from a thread_local) across a stop() and a start(). A thread's Writer is marked an
// orphan when the thread exits and reused by the next thread that emits, so the list
// grows with the number of threads alive at once, not with every thread ever traced.
//
// Invariants.
//   * A Writer's chunk chain is appended to only by the thread that owns the Writer
//     (orphan == false), and only while `emitting` is 1.
//   * Only the writer thread, or stop() once every producer is quiescent, reads chunks,
//     frees them, or resets a Writer.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <new>
#include <ostream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gort/trace.hpp"
#include "os/os.hpp"
#include "runtime/sched.hpp"
#include "trace/trace_internal.hpp"

namespace gort::trace::detail {

std::atomic<bool> g_enabled{false};

namespace {

constexpr std::uint32_t kChunkBytes = 64 * 1024 - 64;  // a Chunk is 64 KiB
constexpr std::int64_t kFlushPeriodNs = 20'000'000;
// Records younger than this wait for the next flush (see Session::drain_all).
constexpr std::int64_t kHoldBackNs = 50'000'000;

struct Chunk {
  // Bytes of data holding complete records (producer: release; consumer: acquire).
  std::atomic<std::uint32_t> used{0};
  // The next chunk, set once this one is full (producer: release; consumer: acquire).
  std::atomic<Chunk*> next{nullptr};
  alignas(64) unsigned char data[kChunkBytes];
};

// The padding is the point: the consumer fields get a cache line of their own.
struct alignas(64) Writer {                // NOLINT(clang-analyzer-optin.performance.Padding)
  std::atomic<std::uint32_t> emitting{0};  // the stop protocol (top of file)
  std::atomic<bool> orphan{false};         // its thread exited; free for another thread
  int serial = 0;                          // names the track of a thread that is no M
  Writer* next_writer = nullptr;           // the global list; immutable once pushed
  // Producer side.
  Chunk* tail = nullptr;
  // Consumer side, on its own cache line: the producer writes `emitting` on every event.
  // head is set by the producer only when it starts a chain (head null).
  alignas(64) std::atomic<Chunk*> head{nullptr};
  std::uint32_t read_pos = 0;
};

// Chunk memory. Chunks are carved from 2 MiB slabs mapped with transparent huge pages
// (os::map_huge_buffer), so a producer that needs fresh memory faults once per 32 chunks
// instead of once per 4 KiB page (a first touch costs 15-30 us on the VMs gort is measured
// on, more than the ~1,300 events a chunk holds cost to record). Chunks the writer thread
// has drained go back to a free list, so in steady state producers reuse memory. Slabs are
// unmapped at stop(). If the writer falls kMaxSlabs behind, producers drop events (counted,
// and reported in the trace) rather than grow without bound. Producers take the lock once
// per chunk.
static_assert(sizeof(Chunk) == 64 * 1024, "32 chunks per slab");
constexpr std::size_t kChunksPerSlab = os::kHugeBufferSize / sizeof(Chunk);
constexpr std::size_t kMaxSlabs = 128;  // 256 MiB of unconverted events at most
constexpr std::size_t kPrefillSlabs = 2;
std::mutex g_pool_mu;
std::vector<Chunk*> g_pool;  // guarded by g_pool_mu
std::vector<void*> g_slabs;  // guarded by g_pool_mu

bool add_slab_locked() {
  if (g_slabs.size() >= kMaxSlabs) return false;
  void* slab = os::map_huge_buffer();
  if (slab == nullptr) return false;
  g_slabs.push_back(slab);
  auto* chunks = static_cast<Chunk*>(slab);
  for (std::size_t i = kChunksPerSlab; i-- > 0;) g_pool.push_back(::new (&chunks[i]) Chunk);
  return true;
}

Chunk* get_chunk() {
  Chunk* c = nullptr;
  {
    std::lock_guard<std::mutex> l(g_pool_mu);
    if (g_pool.empty() && !add_slab_locked()) return nullptr;
    c = g_pool.back();
    g_pool.pop_back();
  }
  c->used.store(0, std::memory_order_relaxed);  // published by the store that links c
  c->next.store(nullptr, std::memory_order_relaxed);
  return c;
}

void put_chunk(Chunk* c) {
  if (c == nullptr) return;
  std::lock_guard<std::mutex> l(g_pool_mu);
  g_pool.push_back(c);
}

// Context: start(). Maps and touches the first slabs, so the first events do not fault.
void prefill_pool() {
  std::lock_guard<std::mutex> l(g_pool_mu);
  for (std::size_t i = 0; i < kPrefillSlabs && add_slab_locked(); ++i) {
    std::memset(g_slabs.back(), 0, os::kHugeBufferSize);
  }
}

// Context: stop(), producers quiescent, every chunk drained back. Unmaps the slabs.
void drain_pool() {
  std::lock_guard<std::mutex> l(g_pool_mu);
  for (void* slab : g_slabs) os::release(slab, os::kHugeBufferSize);
  g_slabs.clear();
  g_pool.clear();
}

std::atomic<Writer*> g_writers{nullptr};  // pushed with CAS, never popped
std::atomic<int> g_writer_serial{0};
// Events lost (the writer too far behind, or no memory) in this session.
std::atomic<std::uint64_t> g_dropped{0};
std::atomic<std::uint64_t> g_task_ids{0};

Writer* claim_orphan() {
  for (Writer* w = g_writers.load(std::memory_order_acquire); w != nullptr; w = w->next_writer) {
    bool expect = true;
    // Acquire: pairs with the release in ~Holder, so the previous owner's appends happen
    // before ours.
    if (w->orphan.load(std::memory_order_relaxed) &&
        w->orphan.compare_exchange_strong(expect, false, std::memory_order_acquire))
      return w;
  }
  return nullptr;
}

Writer* new_writer() {
  if (Writer* w = claim_orphan()) return w;
  auto* w = new (std::nothrow) Writer();
  if (w == nullptr) return nullptr;
  w->serial = g_writer_serial.fetch_add(1, std::memory_order_relaxed);
  Writer* head = g_writers.load(std::memory_order_relaxed);
  do {
    w->next_writer = head;
    // Release: the writer thread walking the list sees an initialised Writer.
  } while (!g_writers.compare_exchange_weak(head, w, std::memory_order_release,
                                            std::memory_order_relaxed));
  return w;
}

struct Holder {
  Writer* w = nullptr;
  ~Holder() {
    if (w != nullptr) w->orphan.store(true, std::memory_order_release);
  }
};

// The calling thread's Writer. Out of line and only called from emit paths, which never
// switch goroutines, so the thread_local is read on the thread that uses it.
__attribute__((noinline)) Writer* this_writer() {
  thread_local Holder holder;
  if (holder.w == nullptr) holder.w = new_writer();
  return holder.w;
}

// Appends one record (and text) to w's chain. Context: w's thread, emitting == 1.
void append(Writer* w, const Record& r, std::string_view text) {
  const std::uint32_t size = sizeof(Record) + ((r.text_len + 7u) & ~7u);
  Chunk* c = w->tail;
  std::uint32_t used = c != nullptr ? c->used.load(std::memory_order_relaxed) : 0;
  if (c == nullptr || used + size > kChunkBytes) {
    Chunk* n = get_chunk();
    if (n == nullptr) {
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (c == nullptr) {
      w->head.store(n, std::memory_order_release);  // pairs with drain's acquire
    } else {
      c->next.store(n, std::memory_order_release);  // after c's final `used`: see the top
    }
    w->tail = c = n;
    used = 0;
  }
  std::memcpy(c->data + used, &r, sizeof r);
  if (r.text_len != 0) std::memcpy(c->data + used + sizeof r, text.data(), r.text_len);
  c->used.store(used + size, std::memory_order_release);  // publishes the record
}

void emit_record(Ev ev, int p, std::uint64_t a, std::uint64_t b, std::string_view text) {
  Writer* w = this_writer();
  if (w == nullptr) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  w->emitting.store(1, std::memory_order_seq_cst);
  if (g_enabled.load(std::memory_order_seq_cst)) {
    Record r;
    r.ts = os::nanotime();
    runtime::M* m = runtime::current_m();
    r.m = m != nullptr ? m->id : kThreadTrackBase + w->serial;
    r.goid = m != nullptr && m->curg != nullptr ? m->curg->id : 0;
    // -2: the caller's P, if any. Read without a runtime section: only the id is used, and
    // Ps live as long as the runtime.
    r.p = p != -2 ? p : (m != nullptr && m->p != nullptr ? m->p->id : -1);
    r.ev = ev;
    r.a = a;
    r.b = b;
    r.text_len = static_cast<std::uint16_t>(std::min(text.size(), kMaxText));
    append(w, r, text);
  }
  // Release: pairs with stop()'s seq_cst load, which then sees our appends complete.
  w->emitting.store(0, std::memory_order_release);
}

// ---- The session and its writer thread -------------------------------------------

struct Pending {
  Record r;
  std::uint32_t text_at = 0;  // offset in Session::texts_
};

class Session {
 public:
  explicit Session(std::ostream& out) : out_(out), conv_(os::nanotime()) {
    conv_.header();
    write_out();
  }
  void run_writer() {
    thread_ = std::thread([this] { loop(); });
  }
  // Context: stop(), after every producer is quiescent.
  void finish() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
    drain_all(/*final=*/true);
    conv_.finish(os::nanotime(), g_dropped.load(std::memory_order_relaxed));
    write_out();
    out_.flush();
    reset_writers();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stopping_) {
      cv_.wait_for(l, std::chrono::nanoseconds(kFlushPeriodNs));
      if (stopping_) break;
      l.unlock();
      drain_all();
      write_out();
      l.lock();
    }
  }

  // Copies w's committed records into batch_, freeing the chunks it finished.
  void drain(Writer* w) {
    Chunk* c = w->head.load(std::memory_order_acquire);
    while (c != nullptr) {
      Chunk* next = c->next.load(std::memory_order_acquire);  // before `used`: see the top
      const std::uint32_t used = c->used.load(std::memory_order_acquire);
      std::uint32_t pos = w->read_pos;
      while (pos < used) {
        Pending e;
        std::memcpy(&e.r, c->data + pos, sizeof(Record));
        e.text_at = static_cast<std::uint32_t>(texts_.size());
        texts_.append(reinterpret_cast<const char*>(c->data + pos + sizeof(Record)), e.r.text_len);
        pos += sizeof(Record) + ((e.r.text_len + 7u) & ~7u);
        batch_.push_back(e);
      }
      w->read_pos = pos;
      if (next == nullptr) return;
      w->head.store(next, std::memory_order_relaxed);
      w->read_pos = 0;
      put_chunk(c);
      c = next;
    }
  }

  // Converts the committed records older than kHoldBackNs (all of them once `final`), in
  // timestamp order, and keeps the younger ones for the next round: a thread can lose its
  // CPU between taking a record's timestamp and publishing it, and a record converted
  // after younger ones would break the converter's state (a goroutine starting before the
  // unblock that readied it). Held back, such a record still sorts into place.
  void drain_all(bool final = false) {
    const std::int64_t cutoff = final ? INT64_MAX : os::nanotime() - kHoldBackNs;
    for (Writer* w = g_writers.load(std::memory_order_acquire); w != nullptr; w = w->next_writer)
      drain(w);
    std::stable_sort(batch_.begin(), batch_.end(),
                     [](const Pending& x, const Pending& y) { return x.r.ts < y.r.ts; });
    const auto young = std::find_if(batch_.begin(), batch_.end(),
                                    [cutoff](const Pending& e) { return e.r.ts >= cutoff; });
    for (auto it = batch_.begin(); it != young; ++it)
      conv_.add(it->r, std::string_view(texts_).substr(it->text_at, it->r.text_len));
    std::vector<Pending> kept;
    std::string kept_texts;
    for (auto it = young; it != batch_.end(); ++it) {
      Pending k = *it;
      k.text_at = static_cast<std::uint32_t>(kept_texts.size());
      kept_texts.append(texts_, it->text_at, it->r.text_len);
      kept.push_back(k);
    }
    batch_ = std::move(kept);
    texts_ = std::move(kept_texts);
  }

  void write_out() {
    std::string& s = conv_.out();
    out_.write(s.data(), static_cast<std::streamsize>(s.size()));
    s.clear();
  }

  // Context: stop(), producers quiescent, everything drained: frees the last chunks.
  static void reset_writers() {
    for (Writer* w = g_writers.load(std::memory_order_acquire); w != nullptr; w = w->next_writer) {
      put_chunk(w->head.load(std::memory_order_relaxed));
      w->head.store(nullptr, std::memory_order_relaxed);
      w->tail = nullptr;
      w->read_pos = 0;
    }
  }

  std::ostream& out_;
  JsonConverter conv_;
  std::vector<Pending> batch_;
  std::string texts_;  // the batch's texts
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
};

std::mutex g_session_mu;       // serialises start() and stop()
Session* g_session = nullptr;  // guarded by g_session_mu

void wait_quiescent() {
  for (Writer* w = g_writers.load(std::memory_order_acquire); w != nullptr; w = w->next_writer)
    while (w->emitting.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

}  // namespace

void emit(Ev ev, int p, std::uint64_t a, std::uint64_t b) noexcept {
  emit_record(ev, p, a, b, {});
}

void emit_text(Ev ev, std::uint64_t a, std::uint64_t b, std::string_view text) noexcept {
  emit_record(ev, -2, a, b, text);
}

}  // namespace gort::trace::detail

namespace gort::trace {

using detail::Ev;

void start(std::ostream& out) {
  std::lock_guard<std::mutex> l(detail::g_session_mu);
  if (detail::g_session != nullptr) throw std::logic_error("gort::trace::start: already tracing");
  detail::prefill_pool();
  detail::g_dropped.store(0, std::memory_order_relaxed);
  detail::g_session = new detail::Session(out);
  detail::g_session->run_writer();
  detail::g_enabled.store(true, std::memory_order_seq_cst);
}

void stop() {
  std::lock_guard<std::mutex> l(detail::g_session_mu);
  if (detail::g_session == nullptr) return;
  detail::g_enabled.store(false, std::memory_order_seq_cst);
  detail::wait_quiescent();
  detail::g_session->finish();
  delete detail::g_session;
  detail::g_session = nullptr;
  detail::drain_pool();
}

bool is_enabled() noexcept {
  return detail::on();
}

Task new_task(std::string_view type, const Task* parent) {
  if (!detail::on()) return Task();
  const std::uint64_t id = detail::g_task_ids.fetch_add(1, std::memory_order_relaxed) + 1;
  detail::emit_text(Ev::kTaskBegin, id, parent != nullptr ? parent->id() : 0, type);
  return Task(id);
}

void Task::end() noexcept {
  if (id_ == 0) return;
  if (detail::on()) detail::emit_text(Ev::kTaskEnd, id_, 0, {});
  id_ = 0;
}

Region::Region(std::string_view name, const Task* task) : task_(task != nullptr ? task->id() : 0) {
  if (!detail::on()) return;
  open_ = true;
  name_ = name;
  detail::emit_text(Ev::kRegionBegin, task_, 0, name_);
}

void Region::end() noexcept {
  if (!open_) return;
  open_ = false;
  if (detail::on()) detail::emit_text(Ev::kRegionEnd, task_, 0, name_);
}

void log(std::string_view category, std::string_view message, const Task* task) {
  if (!detail::on()) return;
  std::string text;
  text.reserve(category.size() + message.size());
  text.append(category).append(message);
  detail::emit_text(Ev::kLog, task != nullptr ? task->id() : 0, category.size(), text);
}

}  // namespace gort::trace
