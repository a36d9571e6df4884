// The umbrella header: everything public in gort.
#pragma once

#include "gort/chan.hpp"
#include "gort/context.hpp"
#include "gort/debug.hpp"
#include "gort/errgroup.hpp"
#include "gort/gc.hpp"
#include "gort/http.hpp"
#include "gort/net.hpp"
#include "gort/pprof.hpp"
#include "gort/runtime.hpp"
#include "gort/select.hpp"
#include "gort/semaphore.hpp"
#include "gort/sync.hpp"
#include "gort/time.hpp"
#include "gort/trace.hpp"
