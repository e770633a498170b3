#pragma once

// XML for the S3 gateway: escaping for the documents it writes, and a small
// element tree for the request bodies it reads (DeleteObjects,
// CompleteMultipartUpload), parsed by expat with limits on size, depth and
// element count. DOCTYPEs are refused, so no entity is ever expanded.
// Thread-safe (pure functions).

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tusk::s3gw {

// Text with & < > " ' escaped.
std::string XmlEscape(absl::string_view text);

struct XmlElement {
  std::string name;  // local name (any namespace prefix dropped)
  std::string text;  // the character data directly inside
  std::vector<std::unique_ptr<XmlElement>> children;

  // The first child named `name`, or null.
  const XmlElement* Child(absl::string_view name) const;
  // The text of the first child named `name`, or "".
  std::string ChildText(absl::string_view name) const;
};

// Parses `body`. InvalidArgument with S3's code MalformedXML for anything
// that is not well-formed XML within the limits.
absl::StatusOr<std::unique_ptr<XmlElement>> ParseXml(absl::string_view body);

}  // namespace tusk::s3gw
