#include "runner/secrets.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "common/fs.h"

namespace tusk::runner {

absl::Status AddSecrets(const pps::v1::Transform& t, const std::string& secrets_dir, bool sandboxed,
                        AttemptSpec* spec, std::vector<std::string>* env) {
  for (int i = 0; i < t.secrets_size(); ++i) {
    const pps::v1::SecretMount& s = t.secrets(i);
    if (secrets_dir.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "transform.secrets: secret ", s.name(),
          " is asked for, but tuskd has no --secrets-dir (the directory of NAME/KEY files local "
          "runners read secrets from)"));
    }
    const std::string dir = absl::StrCat(secrets_dir, "/", s.name());
    if (!s.env_var().empty()) {
      auto value = ReadSmallFile(absl::StrCat(dir, "/", s.key()), 1 << 20);
      if (!value.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("transform.secrets: key ", s.key(),
                                                          " of secret ", s.name(), ": ",
                                                          value.status().message()));
      }
      env->push_back(absl::StrCat(s.env_var(), "=", *value));
    }
    if (!s.mount_path().empty()) {
      struct stat st;
      if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return absl::FailedPreconditionError(absl::StrCat("transform.secrets: secret ", s.name(),
                                                          " is not a directory of "
                                                          "--secrets-dir"));
      }
      if (!sandboxed) {
        return absl::FailedPreconditionError(absl::StrCat(
            "transform.secrets: secret ", s.name(), " at ", s.mount_path(),
            ": mounting needs the bubblewrap sandbox (this runner runs with --sandbox none)"));
      }
      spec->ro_binds.push_back({dir, s.mount_path()});
    }
  }
  return absl::OkStatus();
}

}  // namespace tusk::runner
