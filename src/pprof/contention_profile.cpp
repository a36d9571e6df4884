// The "block" and "mutex" profiles (Go's runtime/pprof writeBlock and writeMutex) from the
// runtime's contention records (src/runtime/mprof.cpp).
//
// profile.proto form: sample types contentions/count and delay/nanoseconds, period 1; the
// mutex profile's values are scaled by its sampling fraction (Go's scaleMutexProfile),
// block events were already de-biased when recorded. Text form (debug=1), Go's:
//   --- contention:
//   cycles/second=1000000000        (gort measures delays in nanoseconds)
//   <delay> <count> @ 0x... 0x...
//   #  0x...  function+0x..
#include <algorithm>
#include <map>
#include <ostream>
#include <stdexcept>

#include "gort/pprof.hpp"
#include "pprof/contention_profile.hpp"
#include "pprof/profile_builder.hpp"
#include "runtime/mprof.hpp"

namespace gort::pprof {

void set_block_profile_rate(int rate) {
  runtime::g_block_profile_rate.store(rate < 0 ? 0 : rate, std::memory_order_relaxed);
}

int set_mutex_profile_fraction(int rate) {
  if (rate < 0) return static_cast<int>(runtime::g_mutex_profile_fraction.load());
  return static_cast<int>(runtime::g_mutex_profile_fraction.exchange(rate));
}

namespace detail {

namespace {

void write_text(const std::vector<runtime::ContentionRecord>& records, std::int64_t scale,
                std::ostream& out) {
  out << "--- contention:\ncycles/second=1000000000\n";
  if (scale > 1) out << "sampling period=" << scale << "\n";
  for (const auto& r : records) {
    out << r.delay_ns * scale << " "
        << static_cast<std::int64_t>(r.count * static_cast<double>(scale)) << " @";
    for (std::uintptr_t pc : r.stack) out << " 0x" << std::hex << pc << std::dec;
    out << "\n";
    write_text_frames(r.stack, out);
    out << "\n";
  }
}

std::int64_t scale_of(bool mutex) {
  return mutex ? std::max<std::int64_t>(runtime::g_mutex_profile_fraction.load(), 1) : 1;
}

}  // namespace

void write_proto(const std::vector<runtime::ContentionRecord>& records, std::int64_t scale,
                 std::ostream& out) {
  ProfileBuilder b({{"contentions", "count"}, {"delay", "nanoseconds"}}, {"contentions", "count"},
                   1);
  for (const auto& r : records) {
    const std::int64_t values[2] = {
        static_cast<std::int64_t>(r.count * static_cast<double>(scale) + 0.5), r.delay_ns * scale};
    b.add(r.stack, values, nullptr, /*leaf_exact=*/false);
  }
  const std::string gz = gzip(b.encode(0, 0));
  out.write(gz.data(), static_cast<std::streamsize>(gz.size()));
}

void write_contention_profile(bool mutex, std::ostream& out, int debug) {
  const auto kind = mutex ? runtime::ContentionKind::kMutex : runtime::ContentionKind::kBlock;
  const std::vector<runtime::ContentionRecord> records = runtime::contention_records(kind);
  const std::int64_t scale = scale_of(mutex);
  if (debug > 0) {
    write_text(records, scale, out);
    return;
  }
  write_proto(records, scale, out);
}

std::int64_t contention_profile_count(bool mutex) {
  return static_cast<std::int64_t>(
      runtime::contention_records(mutex ? runtime::ContentionKind::kMutex
                                        : runtime::ContentionKind::kBlock)
          .size());
}

}  // namespace detail

namespace detail {
struct SnapshotData {
  bool mutex = false;
  std::vector<runtime::ContentionRecord> records;
};
}  // namespace detail

ProfileSnapshot snapshot_profile(std::string_view name) {
  if (name != "block" && name != "mutex")
    throw std::invalid_argument("gort::pprof: profile \"" + std::string(name) +
                                "\" has no delta form (block and mutex do)");
  auto d = std::make_shared<detail::SnapshotData>();
  d->mutex = name == "mutex";
  d->records = runtime::contention_records(d->mutex ? runtime::ContentionKind::kMutex
                                                    : runtime::ContentionKind::kBlock);
  return ProfileSnapshot{std::string(name), std::move(d)};
}

// Records are cumulative per stack, so the delta of a stack is now minus then; stacks
// with nothing new are left out (Go's profile.Merge with the base scaled by -1, then
// compacted).
void write_profile_delta(const ProfileSnapshot& since, std::ostream& out) {
  if (since.data == nullptr) throw std::invalid_argument("gort::pprof: empty profile snapshot");
  std::map<std::vector<std::uintptr_t>, const runtime::ContentionRecord*> base;
  for (const auto& r : since.data->records) base[r.stack] = &r;
  std::vector<runtime::ContentionRecord> delta;
  for (auto& r : runtime::contention_records(since.data->mutex ? runtime::ContentionKind::kMutex
                                                               : runtime::ContentionKind::kBlock)) {
    if (auto it = base.find(r.stack); it != base.end()) {
      r.count -= it->second->count;
      r.delay_ns -= it->second->delay_ns;
    }
    if (r.count > 0 || r.delay_ns > 0) delta.push_back(std::move(r));
  }
  detail::write_proto(delta, detail::scale_of(since.data->mutex), out);
}

}  // namespace gort::pprof
