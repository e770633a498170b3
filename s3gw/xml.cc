#include "s3gw/xml.h"

#include <expat.h>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "http/sigv4_verify.h"

namespace tusk::s3gw {
namespace {

constexpr size_t kMaxBody = 2 << 20;  // DeleteObjects: 1000 keys of up to 1 KiB
constexpr int kMaxDepth = 16;
constexpr size_t kMaxElements = 20000;

absl::Status Malformed(const std::string& what) {
  absl::Status st = absl::InvalidArgumentError(
      absl::StrCat("the XML you provided was not well-formed or did not validate: ", what));
  st.SetPayload(http::kS3ErrorCodePayload, absl::Cord("MalformedXML"));
  return st;
}

struct ParseState {
  XML_Parser parser = nullptr;
  std::unique_ptr<XmlElement> root;
  std::vector<XmlElement*> stack;
  size_t elements = 0;
  std::string error;
};

void Stop(ParseState* st, std::string error) {
  if (st->error.empty()) st->error = std::move(error);
  XML_StopParser(st->parser, XML_FALSE);
}

void OnStart(void* data, const XML_Char* name, const XML_Char** /*attrs*/) {
  auto* st = static_cast<ParseState*>(data);
  if (++st->elements > kMaxElements) return Stop(st, "too many elements");
  if (static_cast<int>(st->stack.size()) >= kMaxDepth) return Stop(st, "nested too deep");
  auto el = std::make_unique<XmlElement>();
  absl::string_view n = name;
  // Namespace-aware parsing reports "URI|local": keep the local name.
  size_t sep = n.rfind('|');
  el->name = std::string(sep == absl::string_view::npos ? n : n.substr(sep + 1));
  XmlElement* raw = el.get();
  if (st->stack.empty()) {
    if (st->root) return Stop(st, "more than one root element");
    st->root = std::move(el);
  } else {
    st->stack.back()->children.push_back(std::move(el));
  }
  st->stack.push_back(raw);
}

void OnEnd(void* data, const XML_Char* /*name*/) {
  auto* st = static_cast<ParseState*>(data);
  if (!st->stack.empty()) st->stack.pop_back();
}

void OnText(void* data, const XML_Char* s, int len) {
  auto* st = static_cast<ParseState*>(data);
  if (!st->stack.empty()) st->stack.back()->text.append(s, static_cast<size_t>(len));
}

void OnDoctype(void* data, const XML_Char*, const XML_Char*, const XML_Char*, int) {
  Stop(static_cast<ParseState*>(data), "a DOCTYPE is not allowed");
}

}  // namespace

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const XmlElement* XmlElement::Child(absl::string_view n) const {
  for (const auto& c : children) {
    if (c->name == n) return c.get();
  }
  return nullptr;
}

std::string XmlElement::ChildText(absl::string_view n) const {
  const XmlElement* c = Child(n);
  return c ? c->text : "";
}

absl::StatusOr<std::unique_ptr<XmlElement>> ParseXml(absl::string_view body) {
  if (body.size() > kMaxBody) return Malformed("the document is larger than 2 MiB");
  ParseState st;
  st.parser = XML_ParserCreateNS(nullptr, '|');
  if (st.parser == nullptr) return absl::ResourceExhaustedError("cannot make an XML parser");
  XML_SetUserData(st.parser, &st);
  XML_SetElementHandler(st.parser, &OnStart, &OnEnd);
  XML_SetCharacterDataHandler(st.parser, &OnText);
  XML_SetStartDoctypeDeclHandler(st.parser, &OnDoctype);
  XML_Status ok = XML_Parse(st.parser, body.data(), static_cast<int>(body.size()), XML_TRUE);
  std::string error = st.error;
  if (ok != XML_STATUS_OK && error.empty()) {
    error = absl::StrCat(XML_ErrorString(XML_GetErrorCode(st.parser)), " at line ",
                         XML_GetCurrentLineNumber(st.parser));
  }
  XML_ParserFree(st.parser);
  if (!error.empty()) return Malformed(error);
  if (!st.root) return Malformed("no root element");
  return std::move(st.root);
}

}  // namespace tusk::s3gw
