#include "common/json_patch.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace tusk {
namespace {

using nlohmann::json;

absl::StatusOr<json> Parse(const std::string& what, const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, " is not JSON"));
  return j;
}

}  // namespace

absl::Status CheckJsonPatch(const std::string& patch) {
  auto p = Parse("pod_patch", patch);
  if (!p.ok()) return p.status();
  if (!p->is_array()) {
    return absl::InvalidArgumentError(
        "pod_patch is not a JSON array of operations (RFC 6902), such as "
        "[{\"op\": \"add\", \"path\": \"/hostname\", \"value\": \"x\"}]");
  }
  for (size_t i = 0; i < p->size(); ++i) {
    const json& op = (*p)[i];
    const std::string where = absl::StrCat("pod_patch[", i, "]");
    if (!op.is_object() || !op.contains("op") || !op["op"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has no \"op\""));
    }
    const std::string name = op["op"].get<std::string>();
    if (name != "add" && name != "remove" && name != "replace" && name != "move" &&
        name != "copy" && name != "test") {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": op '", name, "' is not one of add, remove, replace, move, copy, test"));
    }
    for (const char* key : {"path", "from"}) {
      if (std::string(key) == "from" && name != "move" && name != "copy") continue;
      if (!op.contains(key) || !op[key].is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(where, " has no \"", key, "\""));
      }
      const std::string path = op[key].get<std::string>();
      if (!path.empty() && path[0] != '/') {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": \"", key, "\" '", path, "' is not a JSON pointer (/a/b)"));
      }
    }
    if ((name == "add" || name == "replace" || name == "test") && !op.contains("value")) {
      return absl::InvalidArgumentError(absl::StrCat(where, " (", name, ") has no \"value\""));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ApplyJsonPatch(const std::string& doc, const std::string& patch) {
  if (auto st = CheckJsonPatch(patch); !st.ok()) return st;
  auto d = Parse("the document", doc);
  if (!d.ok()) return d.status();
  auto p = Parse("pod_patch", patch);
  if (!p.ok()) return p.status();
  // nlohmann reports an operation that does not apply by throwing; this is
  // the one place its exceptions are caught and made a status.
  try {
    return d->patch(*p).dump();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("pod_patch does not apply: ", e.what()));
  }
}

absl::Status CheckMergePatch(const std::string& patch) {
  auto p = Parse("pod_spec", patch);
  if (!p.ok()) return p.status();
  if (!p->is_object()) {
    return absl::InvalidArgumentError(
        "pod_spec is not a JSON object to merge into the pod spec, such as "
        "{\"hostNetwork\": false}");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ApplyMergePatch(const std::string& doc, const std::string& patch) {
  if (auto st = CheckMergePatch(patch); !st.ok()) return st;
  auto d = Parse("the document", doc);
  if (!d.ok()) return d.status();
  auto p = Parse("pod_spec", patch);
  if (!p.ok()) return p.status();
  d->merge_patch(*p);
  return d->dump();
}

}  // namespace tusk
