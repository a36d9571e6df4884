// URL decoding shared by the router and the server (Go's url.PathUnescape/QueryUnescape).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gort::http::detail {

// Decodes %XX escapes (and '+' as a space if plus_is_space); nullopt for a malformed
// escape.
std::optional<std::string> unescape(std::string_view s, bool plus_is_space);

}  // namespace gort::http::detail
