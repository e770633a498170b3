#pragma once

// transform.secrets for commands the runner runs itself (local runners; in
// pods the kubelet or podman provides them): the file KEY of directory NAME
// under the runner's --secrets-dir, set as env_var, and NAME's directory
// mounted read-only at mount_path in the sandbox.
//
// Thread safety: pure, but reads files.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/pps.pb.h"
#include "runner/sandbox.h"

namespace tusk::runner {

// Adds the secrets of `t` to `spec` (read-only binds; `sandboxed`: bubblewrap
// runs the command, without it a mount_path cannot be honoured) and to `env`
// (NAME=VALUE). FailedPrecondition naming the secret when `secrets_dir` is
// not set, a file is missing, or a mount cannot be made.
absl::Status AddSecrets(const pps::v1::Transform& t, const std::string& secrets_dir, bool sandboxed,
                        AttemptSpec* spec, std::vector<std::string>* env);

}  // namespace tusk::runner
