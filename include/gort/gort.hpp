// The umbrella header: everything public in gort.
#pragma once

#include "gort/runtime.hpp"
#include "gort/sync.hpp"
