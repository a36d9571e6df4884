// Symbolizer: program counter -> function name, from the ELF symbol tables of the
// executable and every loaded shared object (.symtab, else .dynsym), plus source file,
// line and inlined functions from DWARF when the module has debug information (-g).
//
// Why not dladdr: it sees only exported dynamic symbols, so functions of an executable
// (unless linked with -rdynamic) and every static or anonymous-namespace function come out
// as "?". Names come from our own ELF reader (cheap, always present); DWARF (line tables,
// inlined subroutines) from elfutils' libdw, the library eu-addr2line is built on: its
// DWARF 5 and split-debug support is far more than a hand-written reader would be worth.
// Built without libdw (cross builds), symbols carry names only.
//
// Context: any thread, not a signal handler (it allocates and takes a lock on first use
// of each module). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gort::symbolize {

// A function inlined at a pc, and where in it the pc is.
struct InlinedFrame {
  std::string function;  // demangled
  std::string file;      // empty if unknown
  int line = 0;          // 0 if unknown
};

struct Symbol {
  std::string function;                // demangled; empty if unknown
  std::string module;                  // path of the executable or shared object
  std::uintptr_t module_offset = 0;    // pc relative to the module's load address
  std::uintptr_t function_offset = 0;  // pc relative to the function's start
  // Source position in `function` (for inlined code, the line that made the outermost
  // inlined call); empty and 0 without DWARF.
  std::string file;
  int line = 0;
  // Functions inlined at pc, innermost first: inlined[0] holds the pc's own line, and
  // each one was called from the next, the last from `function` at file:line.
  std::vector<InlinedFrame> inlined;
};

// Looks up pc. Returns false if pc is in no loaded module.
bool lookup(std::uintptr_t pc, Symbol* out);

// abi::__cxa_demangle, or the name itself if it is not a mangled C++ name.
std::string demangle(const char* name);

}  // namespace gort::symbolize
