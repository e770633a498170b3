#pragma once

// Spec files (sources now, pipelines later): JSON or YAML text parsed into
// protobuf messages, with Pachyderm-style field names.
//
// YAML is turned into JSON first and then parsed by protobuf's JSON parser,
// so both formats accept exactly the same fields and a field the message
// lacks is an error that names it. In YAML, plain (unquoted) scalars follow
// the YAML 1.2 core schema: `true`/`false`, `null`/`~`, integers and floats
// become JSON booleans, nulls and numbers; everything else (and every quoted
// scalar) is a string. A file may hold several documents (YAML `---`).
//
// Thread-safe: these are pure functions.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace tusk::cli {

// The documents of a spec file's text, each as JSON. Text whose first
// non-blank character is '{' or '[' is JSON: one object, several objects one
// after another, or arrays of objects (as pachctl takes them); anything else
// is YAML (documents separated by ---). `name` (the file name) prefixes error messages, which carry
// the line and column for YAML syntax errors. An empty text is InvalidArgument.
absl::StatusOr<std::vector<std::string>> SpecDocuments(absl::string_view text,
                                                       const std::string& name);

// Parses one JSON document into `msg` (cleared first). Unknown fields are
// errors (InvalidArgument naming the field and `name`).
absl::Status ParseSpecJson(const std::string& json, const std::string& name,
                           google::protobuf::Message* msg);

// The text of the spec file at `path` ("-" for stdin); NotFound if unreadable.
absl::StatusOr<std::string> ReadSpecText(const std::string& path);

}  // namespace tusk::cli
