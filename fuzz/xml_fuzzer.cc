// Fuzzes the S3 XML reader (ufs/xml.h) with whole documents. Beyond not crashing: errors are
// kCorruption; a parsed tree respects the depth limit, its lookups agree with its children, and
// each element's text survives XmlEscape and a second parse (the entity decoder and the escaper
// are inverses).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "ufs/xml.h"

namespace {

using sluice::ufs::ParseXml;
using sluice::ufs::XmlElement;
using sluice::ufs::XmlEscape;

size_t Walk(const XmlElement& el, int depth, size_t* budget) {
  FUZZ_CHECK(depth <= 65, "tree deeper than the parser's limit");
  FUZZ_CHECK(!el.name.empty(), "element without a name");
  size_t count = 1;
  if (*budget > 0) {  // the text round trip costs a parse per element: bound it per input
    --*budget;
    auto again = ParseXml("<t>" + XmlEscape(el.text) + "</t>");
    FUZZ_CHECK(again.ok() && again->text == el.text && again->children.empty(), "text of <%s> does not round-trip",
               el.name.c_str());
  }
  for (const auto& child : el.children) {
    const XmlElement* first = el.Child(child.name);
    FUZZ_CHECK(first != nullptr && first->name == child.name, "Child('%s') misses a child", child.name.c_str());
    FUZZ_CHECK(el.ChildText(child.name) == first->text, "ChildText disagrees with Child");
    bool listed = false;
    for (const XmlElement* c : el.Children(child.name)) listed = listed || c == &child;
    FUZZ_CHECK(listed, "Children('%s') misses a child", child.name.c_str());
    count += Walk(child, depth + 1, budget);
  }
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view doc(reinterpret_cast<const char*>(data), size);
  auto root = ParseXml(doc);
  if (!root.ok()) {
    FUZZ_CHECK(root.status().code() == sluice::StatusCode::kCorruption, "unexpected error code");
    return 0;
  }
  size_t budget = 64;
  size_t elements = Walk(*root, 0, &budget);
  FUZZ_CHECK(elements <= size, "more elements than bytes");
  // What S3Store reads from a ListObjectsV2 page, as it reads it.
  for (const XmlElement* c : root->Children("Contents")) (void)c->ChildText("Key"), (void)c->ChildText("Size");
  for (const XmlElement* p : root->Children("CommonPrefixes")) (void)p->ChildText("Prefix");
  return 0;
}
