#include "symbolize/symbolizer.hpp"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#if GORT_HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#endif

namespace gort::symbolize {

namespace {

struct FunctionSym {
  std::uintptr_t start;  // module-relative (st_value)
  std::uintptr_t size;
  std::string name;  // mangled
};

#if GORT_HAVE_LIBDW
// One module's DWARF, opened with libdw at its load address (so lookups take runtime pcs).
class DwarfModule {
 public:
  DwarfModule(const std::string& path, std::uintptr_t bias) {
    static const Dwfl_Callbacks callbacks = {
        .find_elf = nullptr,                             // dwfl_report_elf names the file
        .find_debuginfo = dwfl_standard_find_debuginfo,  // .debug files by build id too
        .section_address = dwfl_offline_section_address,
        .debuginfo_path = nullptr,
    };
    dwfl_ = dwfl_begin(&callbacks);
    if (dwfl_ == nullptr) return;
    dwfl_report_begin(dwfl_);
    module_ = dwfl_report_elf(dwfl_, path.c_str(), path.c_str(), -1, bias, false);
    dwfl_report_end(dwfl_, nullptr, nullptr);
  }
  ~DwarfModule() {
    if (dwfl_ != nullptr) dwfl_end(dwfl_);
  }
  DwarfModule(const DwarfModule&) = delete;
  DwarfModule& operator=(const DwarfModule&) = delete;

  // Fills sym's file, line and inlined frames for pc; leaves them empty without DWARF.
  void lookup(std::uintptr_t pc, Symbol* sym) {
    if (module_ == nullptr) return;
    Dwfl_Line* row = dwfl_module_getsrc(module_, pc);
    if (row == nullptr) return;
    int line = 0;
    const char* file = dwfl_lineinfo(row, nullptr, &line, nullptr, nullptr, nullptr);
    sym->file = file != nullptr ? file : "";
    sym->line = line;
    Dwarf_Addr bias = 0;
    Dwarf_Die* cu = dwfl_module_addrdie(module_, pc, &bias);
    if (cu == nullptr) return;
    Dwarf_Die* scopes = nullptr;
    const int n = dwarf_getscopes(cu, pc - bias, &scopes);
    // The innermost function instance holding pc. (Past it, dwarf_getscopes lists the
    // scopes of the abstract definition, not the code's nesting.)
    int innermost = 0;
    while (innermost < n && !is_function(&scopes[innermost])) ++innermost;
    if (innermost < n) add_inlined_chain(cu, &scopes[innermost], sym);
    std::free(scopes);
  }

 private:
  static bool is_function(Dwarf_Die* die) {
    const int tag = dwarf_tag(die);
    return tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram;
  }

  // Walks from the innermost function instance out through the instances it was inlined
  // into: each inlined one runs at the current file:line and was called from its
  // DW_AT_call_file:DW_AT_call_line, which becomes the position in its caller. The walk
  // stops at the out-of-line function (the ELF symbol's), which keeps the last position.
  void add_inlined_chain(Dwarf_Die* cu, Dwarf_Die* innermost, Symbol* sym) {
    Dwarf_Die* chain = nullptr;
    const int n = dwarf_getscopes_die(innermost, &chain);
    for (int i = 0; i < n && dwarf_tag(&chain[i]) != DW_TAG_subprogram; ++i) {
      if (dwarf_tag(&chain[i]) != DW_TAG_inlined_subroutine) continue;
      sym->inlined.push_back({function_name(&chain[i]), sym->file, sym->line});
      sym->file = call_file(cu, &chain[i]);
      sym->line = static_cast<int>(attr_udata(&chain[i], DW_AT_call_line));
    }
    std::free(chain);
  }

  static Dwarf_Word attr_udata(Dwarf_Die* die, int name) {
    Dwarf_Attribute attr;
    Dwarf_Word value = 0;
    if (dwarf_formudata(dwarf_attr(die, name, &attr), &value) != 0) return 0;
    return value;
  }

  static std::string call_file(Dwarf_Die* cu, Dwarf_Die* inlined) {
    Dwarf_Attribute attr;
    Dwarf_Word index = 0;
    if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &index) != 0) return "";
    Dwarf_Files* files = nullptr;
    std::size_t count = 0;
    if (dwarf_getsrcfiles(cu, &files, &count) != 0 || index >= count) return "";
    const char* name = dwarf_filesrc(files, index, nullptr, nullptr);
    return name != nullptr ? name : "";
  }

  // The demangled linkage name (qualified, with parameters, as the ELF symbols give it),
  // following DW_AT_abstract_origin and DW_AT_specification; else the plain name.
  static std::string function_name(Dwarf_Die* die) {
    Dwarf_Attribute attr;
    for (int name : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
      if (const char* mangled = dwarf_formstring(dwarf_attr_integrate(die, name, &attr)))
        return demangle(mangled);
    }
    const char* plain = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
    return plain != nullptr ? plain : "?";
  }

  Dwfl* dwfl_ = nullptr;
  Dwfl_Module* module_ = nullptr;
};
#endif

struct Module {
  std::string path;
  std::uintptr_t bias = 0;  // dlpi_addr: runtime address = st_value + bias
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;  // runtime [lo, hi)
  bool loaded = false;
  std::vector<FunctionSym> functions;  // sorted by start
#if GORT_HAVE_LIBDW
  std::unique_ptr<DwarfModule> dwarf;  // opened with the symbols
#endif
};

// Reads STT_FUNC symbols of one ELF64 file. Malformed files yield no symbols, never a crash:
// every offset is bounds-checked against the file size.
std::vector<FunctionSym> read_functions(const std::string& path) {
  std::vector<FunctionSym> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    ::close(fd);
    return out;
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return out;
  const auto* base = static_cast<const unsigned char*>(map);
  auto in_file = [&](std::uint64_t off, std::uint64_t len) {
    return off <= size && len <= size - off;
  };
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shentsize != sizeof(Elf64_Shdr) ||
      !in_file(eh->e_shoff, std::uint64_t{eh->e_shnum} * sizeof(Elf64_Shdr))) {
    munmap(map, size);
    return out;
  }
  const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
  for (Elf64_Word want : {SHT_SYMTAB, SHT_DYNSYM}) {
    for (unsigned i = 0; i < eh->e_shnum; ++i) {
      const Elf64_Shdr& s = sh[i];
      if (s.sh_type != want || s.sh_link >= eh->e_shnum || s.sh_entsize != sizeof(Elf64_Sym))
        continue;
      const Elf64_Shdr& strs = sh[s.sh_link];
      if (!in_file(s.sh_offset, s.sh_size) || !in_file(strs.sh_offset, strs.sh_size)) continue;
      const auto* syms = reinterpret_cast<const Elf64_Sym*>(base + s.sh_offset);
      const char* names = reinterpret_cast<const char*>(base + strs.sh_offset);
      const std::size_t n = s.sh_size / sizeof(Elf64_Sym);
      for (std::size_t k = 0; k < n; ++k) {
        const Elf64_Sym& sym = syms[k];
        if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value == 0) continue;
        if (sym.st_name >= strs.sh_size) continue;
        const char* name = names + sym.st_name;
        const std::size_t max = strs.sh_size - sym.st_name;
        out.push_back({sym.st_value, sym.st_size, std::string(name, strnlen(name, max))});
      }
    }
    if (!out.empty()) break;  // .symtab found: .dynsym adds nothing
  }
  munmap(map, size);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
  return out;
}

class Registry {
 public:
  bool lookup(std::uintptr_t pc, Symbol* sym) {
    std::lock_guard<std::mutex> l(mu_);
    // DWARF lookups walk a compilation unit's DIEs (up to milliseconds each), and dumps
    // and profiles ask for the same pcs again and again. A program has finitely many pcs.
    if (const auto it = cache_.find(pc); it != cache_.end()) {
      *sym = it->second;
      return true;
    }
    if (!lookup_uncached(pc, sym)) return false;
    cache_.emplace(pc, *sym);
    return true;
  }

 private:
  bool lookup_uncached(std::uintptr_t pc, Symbol* sym) {
    Module* m = find(pc);
    if (m == nullptr) {
      refresh();  // a library may have been loaded since
      m = find(pc);
      if (m == nullptr) return false;
    }
    if (!m->loaded) {
      m->functions = read_functions(m->path);
#if GORT_HAVE_LIBDW
      m->dwarf = std::make_unique<DwarfModule>(m->path, m->bias);
#endif
      m->loaded = true;
    }
    sym->module = m->path;
    sym->module_offset = pc - m->bias;
    sym->function.clear();
    sym->function_offset = 0;
    const std::uintptr_t rel = pc - m->bias;
    auto it = std::upper_bound(m->functions.begin(), m->functions.end(), rel,
                               [](std::uintptr_t v, const FunctionSym& f) { return v < f.start; });
    if (it != m->functions.begin()) {
      --it;
      if (rel < it->start + std::max<std::uintptr_t>(it->size, 1)) {
        sym->function = demangle(it->name.c_str());
        sym->function_offset = rel - it->start;
      }
    }
    sym->file.clear();
    sym->line = 0;
    sym->inlined.clear();
#if GORT_HAVE_LIBDW
    m->dwarf->lookup(pc, sym);
#endif
    return true;
  }

  Module* find(std::uintptr_t pc) {
    for (auto& m : modules_)
      for (auto [lo, hi] : m->ranges)
        if (pc >= lo && pc < hi) return m.get();
    return nullptr;
  }

  // Re-reads the loaded modules if any was loaded or unloaded since the last look
  // (dlpi_adds/dlpi_subs), keeping what was read of those still mapped at the same place.
  void refresh() {
    unsigned long long changes = 0;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* out) {
          *static_cast<unsigned long long*>(out) = info->dlpi_adds + info->dlpi_subs;
          return 1;
        },
        &changes);
    if (changes == changes_seen_ && !modules_.empty()) return;
    changes_seen_ = changes;
    cache_.clear();  // a module may have been unloaded, another loaded at its addresses
    std::vector<std::unique_ptr<Module>> old = std::move(modules_);
    modules_.clear();
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* self) {
          auto mod = std::make_unique<Module>();
          mod->path = info->dlpi_name != nullptr && info->dlpi_name[0] != '\0' ? info->dlpi_name
                                                                               : exe_path();
          mod->bias = info->dlpi_addr;
          for (int i = 0; i < info->dlpi_phnum; ++i) {
            const auto& ph = info->dlpi_phdr[i];
            if (ph.p_type != PT_LOAD) continue;
            mod->ranges.emplace_back(info->dlpi_addr + ph.p_vaddr,
                                     info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
          }
          static_cast<Registry*>(self)->modules_.push_back(std::move(mod));
          return 0;
        },
        this);
    for (auto& m : modules_) {
      for (auto& o : old) {
        if (o != nullptr && o->path == m->path && o->bias == m->bias) m = std::move(o);
      }
    }
  }

  static std::string exe_path() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("/proc/self/exe");
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Module>> modules_;
  std::unordered_map<std::uintptr_t, Symbol> cache_;
  unsigned long long changes_seen_ = 0;  // dlpi_adds + dlpi_subs at the last refresh
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: usable from exit paths
  return *r;
}

}  // namespace

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || d == nullptr) return name;
  std::string out(d);
  std::free(d);
  return out;
}

bool lookup(std::uintptr_t pc, Symbol* out) {
  return registry().lookup(pc, out);
}

}  // namespace gort::symbolize
