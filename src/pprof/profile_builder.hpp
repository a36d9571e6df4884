// Builds pprof's profile.proto (github.com/google/pprof/proto/profile.proto) from stacks of
// program counters: symbolizes them when the profile is written (ELF symbols of the
// executable and every shared object, via src/symbolize), and records the process's
// executable mappings with their GNU build ids so pprof can also symbolize from the
// binaries. Every profile gort writes (CPU, heap, block, mutex, goroutine) goes through it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gort::pprof::detail {

class ProtoWriter;
using LabelList = std::vector<std::pair<std::string, std::string>>;

class ProfileBuilder {
 public:
  struct ValueType {
    std::string type, unit;
  };

  ProfileBuilder(std::vector<ValueType> sample_types, ValueType period_type, std::int64_t period);

  // One sample. stack is leaf first; stack[0] is the exact pc where the thread was (if
  // leaf_exact) and the rest are return addresses (symbolized at pc - 1, the call).
  void add(std::span<const std::uintptr_t> stack, std::span<const std::int64_t> values,
           const LabelList* labels, bool leaf_exact = true);
  // A sample attributed to a made-up frame (Go's "_System", "_GC", ...), for samples
  // taken where the stack cannot be walked.
  void add_synthetic(std::string_view function, std::span<const std::int64_t> values,
                     const LabelList* labels);

  // The sample type pprof shows by default (otherwise the last one), e.g. "alloc_space".
  void set_default_sample_type(std::string type) { default_sample_type_ = std::move(type); }
  // The encoded profile (not compressed).
  std::string encode(std::int64_t time_nanos, std::int64_t duration_nanos);

 private:
  struct Mapping {
    std::uint64_t id, start, limit, offset;
    std::string file, build_id;
  };
  struct Sample {
    std::vector<std::uint64_t> locations;
    std::vector<std::int64_t> values;
    const LabelList* labels;
  };

  // Adds values to the sample with these locations and labels, creating it if new.
  void merge_sample(std::vector<std::uint64_t> locations, std::span<const std::int64_t> values,
                    const LabelList* labels);
  std::int64_t str(std::string_view s);
  std::uint64_t location_for(std::uintptr_t addr);
  std::uint64_t function_for(const std::string& name, const std::string& file);
  void add_line(ProtoWriter& location, const std::string& function, const std::string& file,
                int line);
  std::uint64_t synthetic_location(std::string_view function);
  const Mapping* mapping_for(std::uintptr_t addr) const;
  void load_mappings();

  std::vector<ValueType> sample_types_;
  ValueType period_type_;
  std::int64_t period_;
  std::string default_sample_type_;
  std::vector<std::string> strings_{""};
  std::unordered_map<std::string, std::int64_t> string_index_{{"", 0}};
  std::vector<Mapping> mappings_;
  std::map<std::vector<std::uint64_t>, std::size_t> sample_index_;  // locations -> sample
  std::vector<Sample> samples_;
  std::unordered_map<std::uintptr_t, std::uint64_t> location_ids_;
  std::vector<std::string> encoded_locations_;
  std::unordered_map<std::string, std::uint64_t> function_ids_;
  std::vector<std::string> encoded_functions_;
  std::unordered_map<std::string, std::uint64_t> synthetic_ids_;
};

// The "#\t0x<pc>\t<function>+0x<offset>" lines Go's text profiles print under each record,
// one per return address of stack (symbolized at pc - 1, the call).
void write_text_frames(std::span<const std::uintptr_t> stack, std::ostream& out);

// gzip (RFC 1952) of data, as pprof expects.
std::string gzip(std::string_view data);

}  // namespace gort::pprof::detail
