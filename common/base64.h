// Base64 (RFC 4648): kubeconfig *-data fields, JWT-like tokens, continue tokens.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ashiato {

// Standard alphabet with '=' padding, or the URL alphabet without padding.
std::string Base64Encode(std::string_view in, bool url = false);

// Accepts both alphabets, skips whitespace and stops at the first '='.
// Returns nullopt on any other character.
std::optional<std::string> Base64Decode(std::string_view in);

}  // namespace ashiato
