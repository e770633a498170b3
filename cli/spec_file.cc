#include "cli/spec_file.h"

#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "common/status.h"
#include "google/protobuf/util/json_util.h"
#include "yaml-cpp/yaml.h"

namespace tusk::cli {
namespace {

// YAML 1.2 core schema, for plain scalars only.
bool IsNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}
bool IsBool(const std::string& s, bool* v) {
  if (s == "true" || s == "True" || s == "TRUE") return *v = true, true;
  if (s == "false" || s == "False" || s == "FALSE") return *v = false, true;
  return false;
}
bool IsNumber(const std::string& s) {
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  return std::regex_match(s, kInt) || std::regex_match(s, kFloat);
}

std::string Where(const YAML::Mark& m) {
  return absl::StrCat("line ", m.line + 1, ", column ", m.column + 1);
}

// Bounds on what a spec may expand to: aliases let a tiny YAML file stand for
// an exponential document (a "billion laughs"), and nesting costs stack.
constexpr size_t kMaxExpandedBytes = 4 << 20;
constexpr int kMaxDepth = 64;

absl::Status ToJson(const YAML::Node& node, const std::string& name, std::string* out,
                    int depth = 0) {
  if (out->size() > kMaxExpandedBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": ", Where(node.Mark()), ": the spec expands to more than ", kMaxExpandedBytes,
        " bytes (aliases that repeat anchors, a 'billion laughs'?)"));
  }
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": ", Where(node.Mark()), ": the spec nests deeper than ", kMaxDepth, " levels"));
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out->append("null");
      return absl::OkStatus();
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      // Tag "!" marks a quoted scalar; "?" a plain one.
      if (node.Tag() == "?") {
        bool b;
        if (IsNull(s)) {
          out->append("null");
          return absl::OkStatus();
        }
        if (IsBool(s, &b)) {
          out->append(b ? "true" : "false");
          return absl::OkStatus();
        }
        if (IsNumber(s)) {
          // JSON has no leading '+' and no bare '.5' or '5.'.
          std::string n = s[0] == '+' ? s.substr(1) : s;
          if (n[0] == '.' || (n[0] == '-' && n.size() > 1 && n[1] == '.')) {
            n.insert(n[0] == '-' ? 1 : 0, "0");
          }
          if (size_t dot = n.find('.'); dot != std::string::npos &&
                                        (dot + 1 == n.size() || !absl::ascii_isdigit(n[dot + 1]))) {
            n.insert(dot + 1, "0");
          }
          out->append(n);
          return absl::OkStatus();
        }
      }
      AppendJsonString(s, out);
      return absl::OkStatus();
    }
    case YAML::NodeType::Sequence: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : node) {
        if (!first) out->push_back(',');
        first = false;
        if (auto st = ToJson(item, name, out, depth + 1); !st.ok()) return st;
      }
      out->push_back(']');
      return absl::OkStatus();
    }
    case YAML::NodeType::Map: {
      out->push_back('{');
      std::set<std::string> seen;
      bool first = true;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": ", Where(kv.first.Mark()), ": a key must be a plain string"));
        }
        const std::string& key = kv.first.Scalar();
        if (!seen.insert(key).second) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": ", Where(kv.first.Mark()), ": key '", key, "' appears twice"));
        }
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(key, out);
        out->push_back(':');
        if (auto st = ToJson(kv.second, name, out, depth + 1); !st.ok()) return st;
      }
      out->push_back('}');
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown YAML node type");
}

// The top-level values of JSON text that holds one or more of them one
// after another (`{...} {...}`, as pachctl accepts), each as its text.
// Strings are skipped whole, so braces in them do not count; a value left
// open at the end is InvalidArgument.
absl::StatusOr<std::vector<std::string>> SplitJsonValues(absl::string_view text,
                                                         const std::string& name) {
  std::vector<std::string> out;
  int depth = 0;
  bool in_string = false, escaped = false;
  size_t start = 0, line = 1;
  for (size_t i = 0; i < text.size(); i++) {
    const char c = text[i];
    if (c == '\n') line++;
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (depth++ == 0) start = i;
    } else if (c == '}' || c == ']') {
      if (--depth < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": line ", line, ": '", std::string(1, c), "' closes nothing"));
      }
      if (depth == 0) out.emplace_back(text.substr(start, i + 1 - start));
    } else if (depth == 0 && !absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": line ", line, ": '", std::string(1, c), "' outside of a JSON object"));
    }
  }
  if (depth != 0 || in_string) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": the JSON ends inside a value"));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SpecDocuments(absl::string_view text,
                                                       const std::string& name) {
  absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(text);
  if (trimmed.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": the spec is empty"));
  std::vector<std::string> out;
  auto add = [&](const YAML::Node& doc) -> absl::Status {
    if (doc.IsNull()) return absl::OkStatus();  // an empty document (a trailing ---)
    if (!doc.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": ", Where(doc.Mark()), ": a spec must be a mapping of fields"));
    }
    std::string json;
    RETURN_IF_ERROR(ToJson(doc, name, &json));
    out.push_back(std::move(json));
    return absl::OkStatus();
  };
  // yaml-cpp reports errors by exception; they stop here.
  try {
    if (trimmed[0] == '{' || trimmed[0] == '[') {
      // JSON: one object, several one after another, or arrays of them.
      ASSIGN_OR_RETURN(std::vector<std::string> values, SplitJsonValues(text, name));
      for (auto& v : values) {
        if (v[0] == '{') {
          out.push_back(std::move(v));
          continue;
        }
        // An array: its elements as YAML reads them (JSON is YAML).
        for (const auto& doc : YAML::Load(v)) RETURN_IF_ERROR(add(doc));
      }
    } else {
      for (const auto& doc : YAML::LoadAll(std::string(text))) RETURN_IF_ERROR(add(doc));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", Where(e.mark), ": ", e.msg));
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": the spec is empty"));
  return out;
}

absl::Status ParseSpecJson(const std::string& json, const std::string& name,
                           google::protobuf::Message* msg) {
  msg->Clear();
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(json, msg, opts);
  if (!st.ok())
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", std::string(st.message())));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSpecText(const std::string& path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read spec file ", path));
    text << in.rdbuf();
  }
  return text.str();
}

}  // namespace tusk::cli
