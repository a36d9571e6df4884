// The "heap" and "allocs" profiles (Go's runtime/pprof writeHeap) from the collector's
// sampled allocation records (src/gc/heapprof.cpp).
//
// profile.proto form: sample types alloc_objects/count, alloc_space/bytes,
// inuse_objects/count, inuse_space/bytes; period type space/bytes, period = the sampling
// rate; "heap" shows inuse_space by default, "allocs" alloc_space (the only difference, as
// in Go). Each record is de-biased as Go's scaleHeapSample does: a sample of average size
// s stands for 1 / (1 - exp(-s / rate)) allocations. In-use values are as of now (Go's are
// as of the last completed cycle). Text form (debug=1), Go's:
//   heap profile: <inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @ heap/<2*rate>
//   <inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @ 0x... 0x...
//   #  0x...  function+0x..
//   ...
//   # runtime.MemStats (the gort::gc::stats() subset)
#include <cmath>
#include <ostream>

#include "gc/heapprof.hpp"
#include "gort/gc.hpp"
#include "gort/pprof.hpp"
#include "pprof/heap_profile.hpp"
#include "pprof/profile_builder.hpp"

namespace gort::pprof {

int set_memprofile_rate(int rate) {
  return static_cast<int>(gc::detail::g_memprofile_rate.exchange(rate < 0 ? 0 : rate));
}

namespace detail {

namespace {

struct Scaled {
  std::int64_t alloc_objects, alloc_bytes, inuse_objects, inuse_bytes;
};

// Go's scaleHeapSample.
std::pair<std::int64_t, std::int64_t> scale(std::int64_t count, std::int64_t bytes,
                                            std::int64_t rate) {
  if (count == 0 || bytes == 0) return {0, 0};
  if (rate <= 1) return {count, bytes};
  const double avg = static_cast<double>(bytes) / static_cast<double>(count);
  const double s = 1 / (1 - std::exp(-avg / static_cast<double>(rate)));
  return {static_cast<std::int64_t>(static_cast<double>(count) * s),
          static_cast<std::int64_t>(static_cast<double>(bytes) * s)};
}

Scaled scaled(const gc::detail::HeapRecord& r, std::int64_t rate) {
  const auto [ao, ab] = scale(r.allocs, r.alloc_bytes, rate);
  const auto [io, ib] = scale(r.allocs - r.frees, r.alloc_bytes - r.free_bytes, rate);
  return Scaled{ao, ab, io, ib};
}

void write_text(const std::vector<gc::detail::HeapRecord>& records, std::int64_t rate,
                std::ostream& out) {
  Scaled total{0, 0, 0, 0};
  for (const auto& r : records) {
    const Scaled s = scaled(r, rate);
    total.alloc_objects += s.alloc_objects;
    total.alloc_bytes += s.alloc_bytes;
    total.inuse_objects += s.inuse_objects;
    total.inuse_bytes += s.inuse_bytes;
  }
  out << "heap profile: " << total.inuse_objects << ": " << total.inuse_bytes << " ["
      << total.alloc_objects << ": " << total.alloc_bytes << "] @ heap/" << 2 * rate << "\n";
  for (const auto& r : records) {
    const Scaled s = scaled(r, rate);
    out << s.inuse_objects << ": " << s.inuse_bytes << " [" << s.alloc_objects << ": "
        << s.alloc_bytes << "] @";
    for (std::uintptr_t pc : r.stack) out << " 0x" << std::hex << pc << std::dec;
    out << "\n";
    write_text_frames(r.stack, out);
    out << "\n";
  }
  const gc::Stats st = gc::stats();
  out << "\n# runtime.MemStats\n# Alloc = " << st.heap_alloc
      << "\n# TotalAlloc = " << st.total_alloc << "\n# Sys = " << st.heap_sys
      << "\n# Mallocs = " << st.mallocs << "\n# Frees = " << st.frees
      << "\n# HeapAlloc = " << st.heap_alloc << "\n# HeapSys = " << st.heap_sys
      << "\n# HeapInuse = " << st.heap_inuse << "\n# HeapReleased = " << st.heap_released
      << "\n# HeapObjects = " << st.heap_objects << "\n# NextGC = " << st.next_gc
      << "\n# PauseTotalNs = " << st.pause_total_ns << "\n# NumGC = " << st.num_gc
      << "\n# NumForcedGC = " << st.num_forced_gc << "\n";
}

}  // namespace

void write_heap_profile(bool allocs, std::ostream& out, int debug) {
  const std::vector<gc::detail::HeapRecord> records = gc::detail::heap_records();
  const std::int64_t rate = gc::detail::g_memprofile_rate.load(std::memory_order_relaxed);
  if (debug > 0) return write_text(records, rate, out);
  ProfileBuilder b({{"alloc_objects", "count"},
                    {"alloc_space", "bytes"},
                    {"inuse_objects", "count"},
                    {"inuse_space", "bytes"}},
                   {"space", "bytes"}, rate);
  if (allocs) b.set_default_sample_type("alloc_space");
  for (const auto& r : records) {
    const Scaled s = scaled(r, rate);
    const std::int64_t values[4] = {s.alloc_objects, s.alloc_bytes, s.inuse_objects, s.inuse_bytes};
    b.add(r.stack, values, nullptr, /*leaf_exact=*/false);
  }
  const std::string gz = gzip(b.encode(0, 0));
  out.write(gz.data(), static_cast<std::streamsize>(gz.size()));
}

std::int64_t heap_profile_count() {
  return static_cast<std::int64_t>(gc::detail::heap_records().size());
}

}  // namespace detail

}  // namespace gort::pprof
