#pragma once

#include "absl/strings/string_view.h"

namespace tusk {

// True if `s` is well-formed UTF-8: no overlong forms, no surrogates, nothing
// past U+10FFFF, no truncated sequence. Protobuf strings must be.
bool IsValidUtf8(absl::string_view s);

}  // namespace tusk
