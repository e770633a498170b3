#pragma once

namespace tusk {

// The version of every tusk binary and of the API they speak.
inline constexpr char kTuskVersion[] = "0.1.0";

}  // namespace tusk
