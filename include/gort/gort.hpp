// The umbrella header: everything public in gort.
#pragma once

#include "gort/chan.hpp"
#include "gort/runtime.hpp"
#include "gort/select.hpp"
#include "gort/sync.hpp"
