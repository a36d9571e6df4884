# GORT_SANITIZE=address,undefined or thread: instrument every target of this build tree.
# The runtime annotates its fiber switches for both (src/runtime/sanitizer_fiber.hpp), so
# reports are real bugs in goroutine code.
if(GORT_SANITIZE)
  set(_gort_san_flags -fsanitize=${GORT_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${_gort_san_flags})
  add_link_options(${_gort_san_flags})
  if(GORT_SANITIZE MATCHES "thread")
    add_compile_definitions(GORT_RACE_MODE_DEFAULT=1)
  endif()
endif()
