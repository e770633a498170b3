#pragma once

// Small JSON helpers shared by the components that write JSON by hand.

#include <string>

#include "absl/strings/string_view.h"

namespace tusk {

// Appends `s` as a JSON string literal (quotes included). Control characters
// and '"' and '\\' are escaped; other bytes are copied as they are, so valid
// UTF-8 stays valid UTF-8.
void AppendJsonString(absl::string_view s, std::string* out);

}  // namespace tusk
