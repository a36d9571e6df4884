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
#include <vector>

namespace gort::symbolize {

namespace {

struct FunctionSym {
  std::uintptr_t start;  // module-relative (st_value)
  std::uintptr_t size;
  std::string name;  // mangled
};

struct Module {
  std::string path;
  std::uintptr_t bias = 0;  // dlpi_addr: runtime address = st_value + bias
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;  // runtime [lo, hi)
  bool loaded = false;
  std::vector<FunctionSym> functions;  // sorted by start
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
    Module* m = find(pc);
    if (m == nullptr) {
      refresh();  // a library may have been loaded since
      m = find(pc);
      if (m == nullptr) return false;
    }
    if (!m->loaded) {
      m->functions = read_functions(m->path);
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
    return true;
  }

 private:
  Module* find(std::uintptr_t pc) {
    for (auto& m : modules_)
      for (auto [lo, hi] : m->ranges)
        if (pc >= lo && pc < hi) return m.get();
    return nullptr;
  }

  void refresh() {
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
  }

  static std::string exe_path() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("/proc/self/exe");
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Module>> modules_;
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
