// Symbolizer: program counter -> function name, from the ELF symbol tables of the
// executable and every loaded shared object (.symtab, else .dynsym).
//
// Why not dladdr: it sees only exported dynamic symbols, so functions of an executable
// (unless linked with -rdynamic) and every static or anonymous-namespace function come out
// as "?". Why not libbacktrace/libdw: not needed for names; DWARF line tables come with the
// profiler (issue: profiling), which will extend this class.
//
// Context: any thread, not a signal handler (it allocates and takes a lock on first use
// of each module). Thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace gort::symbolize {

struct Symbol {
  std::string function;                // demangled; empty if unknown
  std::string module;                  // path of the executable or shared object
  std::uintptr_t module_offset = 0;    // pc relative to the module's load address
  std::uintptr_t function_offset = 0;  // pc relative to the function's start
};

// Looks up pc. Returns false if pc is in no loaded module.
bool lookup(std::uintptr_t pc, Symbol* out);

// abi::__cxa_demangle, or the name itself if it is not a mangled C++ name.
std::string demangle(const char* name);

}  // namespace gort::symbolize
