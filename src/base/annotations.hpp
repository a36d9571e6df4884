// Clang thread-safety annotations (-Wthread-safety), prefixed so they never clash with a
// user's. With GCC they expand to nothing; the clang build checks the lock discipline.
#pragma once

#if defined(__clang__)
#define GORT_TSA(x) __attribute__((x))
#else
#define GORT_TSA(x)
#endif

#define GORT_CAPABILITY(x) GORT_TSA(capability(x))
#define GORT_GUARDED_BY(x) GORT_TSA(guarded_by(x))
#define GORT_PT_GUARDED_BY(x) GORT_TSA(pt_guarded_by(x))
#define GORT_REQUIRES(...) GORT_TSA(requires_capability(__VA_ARGS__))
#define GORT_ACQUIRE(...) GORT_TSA(acquire_capability(__VA_ARGS__))
#define GORT_RELEASE(...) GORT_TSA(release_capability(__VA_ARGS__))
#define GORT_TRY_ACQUIRE(...) GORT_TSA(try_acquire_capability(__VA_ARGS__))
#define GORT_EXCLUDES(...) GORT_TSA(locks_excluded(__VA_ARGS__))
#define GORT_SCOPED_CAPABILITY GORT_TSA(scoped_lockable)
#define GORT_NO_THREAD_SAFETY_ANALYSIS GORT_TSA(no_thread_safety_analysis)
