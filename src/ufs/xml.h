// A small XML reader for S3 responses (ListObjectsV2, errors, multipart). It builds a tree of
// elements with their text; attributes, namespaces' prefixes and processing instructions are
// skipped; entities (&amp; &#x41; ...) and CDATA are decoded. Not a validating parser: it
// rejects malformed nesting with a Corruption status. Thread-compatible values.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::ufs {

struct XmlElement {
  std::string name;  // local name, without any "prefix:"
  std::string text;  // concatenated character data directly inside this element
  std::vector<XmlElement> children;

  // First child named `name`, or nullptr.
  const XmlElement* Child(std::string_view child_name) const;
  // Text of the first child named `name`, or "" when absent.
  std::string ChildText(std::string_view child_name) const;
  // Every child named `name`, in document order.
  std::vector<const XmlElement*> Children(std::string_view child_name) const;
};

// Parses a document and returns its root element.
Result<XmlElement> ParseXml(std::string_view document);

// Escapes & < > " ' for element text.
std::string XmlEscape(std::string_view text);

}  // namespace sluice::ufs
