# Warnings applied to gort's own targets (not exported to users).
add_library(gort_warnings INTERFACE)
target_compile_options(gort_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wnull-dereference
  $<$<CXX_COMPILER_ID:Clang>:-Wthread-safety>
  $<$<BOOL:${GORT_WERROR}>:-Werror>)
