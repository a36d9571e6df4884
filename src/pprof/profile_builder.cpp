// Profile building and encoding (see profile_builder.hpp).
//
// Locations are per address and functions per (name, file); a location carries one line
// entry per function inlined at its address, innermost first, then the function they were
// inlined into, each with file and line when the module has DWARF (else line is 0).
// Samples with the same stack and label set are merged (values added), as pprof would.
// Mappings come from /proc/self/maps (executable segments with a file) and build ids from
// the PT_NOTE segments of the loaded objects (dl_iterate_phdr).
#include "pprof/profile_builder.hpp"

#include <elf.h>
#include <link.h>
#include <unistd.h>
#if GORT_HAVE_ZLIB
#include <zlib.h>
#endif

#include <cstdio>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "pprof/proto.hpp"
#include "symbolize/symbolizer.hpp"

namespace gort::pprof::detail {

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

std::string self_exe() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// GNU build ids of the loaded objects, by path.
std::unordered_map<std::string, std::string> build_ids() {
  std::unordered_map<std::string, std::string> ids;
  struct Ctx {
    std::unordered_map<std::string, std::string>* ids;
    std::string exe;
  } ctx{&ids, self_exe()};
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* arg) -> int {
        auto* c = static_cast<Ctx*>(arg);
        const std::string path =
            info->dlpi_name != nullptr && info->dlpi_name[0] != '\0' ? info->dlpi_name : c->exe;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
          const unsigned char* end = p + ph.p_memsz;
          while (p + sizeof(ElfW(Nhdr)) <= end) {
            const auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(p);
            const unsigned char* name = p + sizeof(ElfW(Nhdr));
            const unsigned char* desc = name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                std::memcmp(name, "GNU", 4) == 0 && desc + nh->n_descsz <= end) {
              (*c->ids)[path] = hex(desc, nh->n_descsz);
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
          }
        }
        return 0;
      },
      &ctx);
  return ids;
}

void value_type(ProtoWriter& w, int field, std::int64_t type, std::int64_t unit) {
  ProtoWriter vt;
  vt.int64(1, type);
  vt.int64(2, unit);
  w.message(field, vt);
}

}  // namespace

ProfileBuilder::ProfileBuilder(std::vector<ValueType> sample_types, ValueType period_type,
                               std::int64_t period)
    : sample_types_(std::move(sample_types)),
      period_type_(std::move(period_type)),
      period_(period) {
  load_mappings();
}

void ProfileBuilder::load_mappings() {
  const auto ids = build_ids();
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode;
    std::getline(in >> std::ws, path);
    if (perms.size() < 3 || perms[2] != 'x' || path.empty()) continue;
    Mapping m{};
    m.id = mappings_.size() + 1;
    std::sscanf(range.c_str(), "%lx-%lx", &m.start, &m.limit);
    m.offset = std::stoull(offset, nullptr, 16);
    m.file = path;
    if (const auto it = ids.find(path); it != ids.end()) m.build_id = it->second;
    mappings_.push_back(std::move(m));
  }
}

const ProfileBuilder::Mapping* ProfileBuilder::mapping_for(std::uintptr_t addr) const {
  for (const Mapping& m : mappings_)
    if (addr >= m.start && addr < m.limit) return &m;
  return nullptr;
}

std::int64_t ProfileBuilder::str(std::string_view s) {
  const auto [it, inserted] =
      string_index_.try_emplace(std::string(s), static_cast<std::int64_t>(strings_.size()));
  if (inserted) strings_.emplace_back(s);
  return it->second;
}

std::uint64_t ProfileBuilder::function_for(const std::string& name, const std::string& file) {
  const std::string key = name + '\0' + file;
  if (const auto it = function_ids_.find(key); it != function_ids_.end()) return it->second;
  const std::uint64_t id = encoded_functions_.size() + 1;
  ProtoWriter f;
  f.uint64(1, id);
  f.int64(2, str(name));
  f.int64(3, str(name));
  f.int64(4, str(file));
  encoded_functions_.push_back(f.bytes());
  function_ids_.emplace(key, id);
  return id;
}

std::uint64_t ProfileBuilder::location_for(std::uintptr_t addr) {
  if (const auto it = location_ids_.find(addr); it != location_ids_.end()) return it->second;
  const std::uint64_t id = encoded_locations_.size() + 1;
  ProtoWriter loc;
  loc.uint64(1, id);
  if (const Mapping* m = mapping_for(addr)) loc.uint64(2, m->id);
  loc.uint64(3, addr);
  symbolize::Symbol sym;
  if (symbolize::lookup(addr, &sym) && !sym.function.empty()) {
    // Inlined functions first, the function they were inlined into last (profile.proto).
    for (const symbolize::InlinedFrame& f : sym.inlined) add_line(loc, f.function, f.file, f.line);
    add_line(loc, sym.function, sym.file, sym.line);
  }
  encoded_locations_.push_back(loc.bytes());
  location_ids_.emplace(addr, id);
  return id;
}

void ProfileBuilder::add_line(ProtoWriter& location, const std::string& function,
                              const std::string& file, int line) {
  ProtoWriter entry;
  entry.uint64(1, function_for(function, file));
  if (line > 0) entry.int64(2, line);
  location.message(4, entry);
}

std::uint64_t ProfileBuilder::synthetic_location(std::string_view function) {
  const std::string name(function);
  if (const auto it = synthetic_ids_.find(name); it != synthetic_ids_.end()) return it->second;
  const std::uint64_t id = encoded_locations_.size() + 1;
  ProtoWriter loc;
  loc.uint64(1, id);
  ProtoWriter line;
  line.uint64(1, function_for(name, ""));
  loc.message(4, line);
  encoded_locations_.push_back(loc.bytes());
  synthetic_ids_.emplace(name, id);
  return id;
}

void ProfileBuilder::add(std::span<const std::uintptr_t> stack,
                         std::span<const std::int64_t> values, const LabelList* labels,
                         bool leaf_exact) {
  std::vector<std::uint64_t> locs;
  locs.reserve(stack.size() + 1);
  for (std::size_t i = 0; i < stack.size(); ++i) {
    const bool is_call = i > 0 || !leaf_exact;
    locs.push_back(location_for(is_call && stack[i] > 0 ? stack[i] - 1 : stack[i]));
  }
  merge_sample(std::move(locs), values, labels);
}

void ProfileBuilder::add_synthetic(std::string_view function, std::span<const std::int64_t> values,
                                   const LabelList* labels) {
  merge_sample({synthetic_location(function)}, values, labels);
}

void ProfileBuilder::merge_sample(std::vector<std::uint64_t> locations,
                                  std::span<const std::int64_t> values, const LabelList* labels) {
  std::vector<std::uint64_t> key = locations;
  key.push_back(reinterpret_cast<std::uintptr_t>(labels));
  const auto [it, inserted] = sample_index_.try_emplace(std::move(key), samples_.size());
  if (inserted) {
    samples_.push_back(Sample{std::move(locations),
                              std::vector<std::int64_t>(values.begin(), values.end()), labels});
    return;
  }
  Sample& s = samples_[it->second];
  for (std::size_t i = 0; i < values.size() && i < s.values.size(); ++i) s.values[i] += values[i];
}

std::string ProfileBuilder::encode(std::int64_t time_nanos, std::int64_t duration_nanos) {
  ProtoWriter p;
  for (const ValueType& vt : sample_types_) value_type(p, 1, str(vt.type), str(vt.unit));
  for (const Sample& s : samples_) {
    ProtoWriter sw;
    sw.packed<std::uint64_t>(1, s.locations);
    sw.packed<std::int64_t>(2, s.values);
    if (s.labels != nullptr) {
      for (const auto& [k, v] : *s.labels) {
        ProtoWriter lw;
        lw.int64(1, str(k));
        lw.int64(2, str(v));
        sw.message(3, lw);
      }
    }
    p.message(2, sw);
  }
  for (const Mapping& m : mappings_) {
    ProtoWriter mw;
    mw.uint64(1, m.id);
    mw.uint64(2, m.start);
    mw.uint64(3, m.limit);
    mw.uint64(4, m.offset);
    mw.int64(5, str(m.file));
    mw.int64(6, str(m.build_id));
    mw.boolean(7, true);  // has_functions: every location we could name is named
    p.message(3, mw);
  }
  for (const std::string& loc : encoded_locations_) p.string(4, loc);
  for (const std::string& fn : encoded_functions_) p.string(5, fn);
  const std::int64_t period_type = str(period_type_.type);
  const std::int64_t period_unit = str(period_type_.unit);
  const std::int64_t default_type = default_sample_type_.empty() ? 0 : str(default_sample_type_);
  for (const std::string& s : strings_) p.string(6, s);
  p.int64(9, time_nanos);
  p.int64(10, duration_nanos);
  value_type(p, 11, period_type, period_unit);
  p.int64(12, period_);
  if (default_type != 0) p.int64(14, default_type);
  return p.bytes();
}

namespace {
// Go's "\tfile:line\n" after a frame (without DWARF, nothing: the frame ends the line).
void write_text_position(const std::string& file, int line, std::ostream& out) {
  if (!file.empty()) out << "\t" << file << ':' << line;
}
}  // namespace

void write_text_frames(std::span<const std::uintptr_t> stack, std::ostream& out) {
  for (std::uintptr_t pc : stack) {
    symbolize::Symbol sym;
    const bool known = symbolize::lookup(pc - 1, &sym) && !sym.function.empty();
    for (const symbolize::InlinedFrame& f : sym.inlined) {
      out << "#\t0x" << std::hex << pc - 1 << std::dec << "\t" << f.function << "+0x0";
      write_text_position(f.file, f.line, out);
      out << "\n";
    }
    out << "#\t0x" << std::hex << pc - 1 << std::dec << "\t"
        << (known ? sym.function : std::string("?"));
    if (known) {
      out << "+0x" << std::hex << sym.function_offset << std::dec;
      write_text_position(sym.file, sym.line, out);
    }
    out << "\n";
  }
}

#if !GORT_HAVE_ZLIB
std::string gzip(std::string_view) {
  throw std::runtime_error("gort was built without zlib: profiles cannot be written");
}
#else
std::string gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("pprof: zlib deflateInit2 failed");
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("pprof: zlib deflate failed");
  out.resize(zs.total_out);
  return out;
}
#endif

}  // namespace gort::pprof::detail
