// The symbolizer on this test's own code (compiled with -g, see tests/CMakeLists.txt):
// function names from ELF symbols, file:line and inlined frames from DWARF.
#include "symbolize/symbolizer.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <string>

namespace {

int inner_line = 0;
int outer_line = 0;

[[gnu::noinline]] std::uintptr_t return_address() {
  auto ret = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");  // keep the call a call, not a tail call
  return ret;
}

[[gnu::always_inline]] inline std::uintptr_t inlined_leaf() {
  inner_line = __LINE__ + 1;
  return return_address();
}

[[gnu::noinline]] std::uintptr_t physical_caller() {
  outer_line = __LINE__ + 1;
  std::uintptr_t pc = inlined_leaf();
  asm volatile("" ::: "memory");
  return pc;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

TEST(Symbolize, NamesFileLineAndInlinedFrames) {
  const std::uintptr_t ret = physical_caller();
  gort::symbolize::Symbol sym;
  ASSERT_TRUE(gort::symbolize::lookup(ret - 1, &sym));  // pc - 1: inside the call
  EXPECT_NE(sym.function.find("physical_caller"), std::string::npos) << sym.function;
#if GORT_HAVE_LIBDW
  ASSERT_EQ(sym.inlined.size(), 1u) << "inlined_leaf was not seen as inlined";
  EXPECT_NE(sym.inlined[0].function.find("inlined_leaf"), std::string::npos)
      << sym.inlined[0].function;
  EXPECT_TRUE(ends_with(sym.inlined[0].file, "symbolize_test.cpp")) << sym.inlined[0].file;
  EXPECT_EQ(sym.inlined[0].line, inner_line);
  EXPECT_TRUE(ends_with(sym.file, "symbolize_test.cpp")) << sym.file;
  EXPECT_EQ(sym.line, outer_line);
#else
  EXPECT_TRUE(sym.file.empty());
  EXPECT_TRUE(sym.inlined.empty());
#endif
}

TEST(Symbolize, CodeWithoutDebugInfoHasNamesOnly) {
  // libc has symbols but (without its -dbg package) no DWARF.
  gort::symbolize::Symbol sym;
  ASSERT_TRUE(gort::symbolize::lookup(reinterpret_cast<std::uintptr_t>(&::getpid) + 1, &sym));
  EXPECT_FALSE(sym.module.empty());
  EXPECT_TRUE(sym.inlined.empty());
}

TEST(Symbolize, UnknownAddressIsReportedNotGuessed) {
  gort::symbolize::Symbol sym;
  EXPECT_FALSE(gort::symbolize::lookup(16, &sym));
}
