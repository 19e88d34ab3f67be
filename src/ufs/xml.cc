// Recursive-descent XML reader, enough for the documents S3 servers send.
#include "ufs/xml.h"

#include <cstdint>

namespace sluice::ufs {
namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view doc) : doc_(doc) {}

  Result<XmlElement> ParseDocument() {
    SkipMisc();
    if (pos_ >= doc_.size() || doc_[pos_] != '<') return Error("no root element");
    XmlElement root;
    SLUICE_RETURN_IF_ERROR(ParseElement(&root, 0));
    SkipMisc();
    if (pos_ != doc_.size()) return Error("content after the root element");
    return root;
  }

 private:
  Status Error(const std::string& what) const {
    return Corruption("malformed XML at byte " + std::to_string(pos_) + ": " + what);
  }

  bool StartsWith(std::string_view s) const { return doc_.substr(pos_, s.size()) == s; }

  bool SkipPast(std::string_view end) {
    size_t p = doc_.find(end, pos_);
    if (p == std::string_view::npos) return false;
    pos_ = p + end.size();
    return true;
  }

  // Skips whitespace, <?...?>, <!--...-->, <!DOCTYPE ...>.
  void SkipMisc() {
    while (pos_ < doc_.size()) {
      char c = doc_[pos_];
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        ++pos_;
      } else if (StartsWith("<?")) {
        if (!SkipPast("?>")) pos_ = doc_.size();
      } else if (StartsWith("<!--")) {
        if (!SkipPast("-->")) pos_ = doc_.size();
      } else if (StartsWith("<!DOCTYPE")) {
        if (!SkipPast(">")) pos_ = doc_.size();
      } else {
        break;
      }
    }
  }

  static std::string LocalName(std::string_view qname) {
    size_t colon = qname.find(':');
    return std::string(colon == std::string_view::npos ? qname : qname.substr(colon + 1));
  }

  std::string_view ReadName() {
    size_t start = pos_;
    while (pos_ < doc_.size()) {
      char c = doc_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '>' || c == '/' || c == '=') break;
      ++pos_;
    }
    return doc_.substr(start, pos_ - start);
  }

  Status ParseElement(XmlElement* el, int depth) {
    if (depth > kMaxDepth) return Error("elements nested too deeply");
    ++pos_;  // '<'
    std::string_view qname = ReadName();
    el->name = LocalName(qname);
    if (el->name.empty()) return Error("element without a name");  // also "<s3:>" (fuzz/xml_fuzzer)
    // Attributes: skipped, but quoted values may hold '>' so walk them properly.
    while (true) {
      while (pos_ < doc_.size() && std::isspace(static_cast<unsigned char>(doc_[pos_]))) ++pos_;
      if (pos_ >= doc_.size()) return Error("unterminated start tag <" + el->name + ">");
      if (StartsWith("/>")) {
        pos_ += 2;
        return Status::Ok();
      }
      if (doc_[pos_] == '>') {
        ++pos_;
        break;
      }
      // No name here means a '/' not followed by '>', or '=' without a name: without this
      // check the loop would make no progress (found by fuzz/xml_fuzzer).
      if (ReadName().empty()) return Error("bad attribute in <" + el->name + ">");
      if (pos_ < doc_.size() && doc_[pos_] == '=') {
        ++pos_;
        if (pos_ >= doc_.size() || (doc_[pos_] != '"' && doc_[pos_] != '\'')) return Error("unquoted attribute");
        char quote = doc_[pos_++];
        size_t end = doc_.find(quote, pos_);
        if (end == std::string_view::npos) return Error("unterminated attribute");
        pos_ = end + 1;
      } else if (pos_ < doc_.size() && doc_[pos_] != '>' && doc_[pos_] != '/' &&
                 !std::isspace(static_cast<unsigned char>(doc_[pos_]))) {
        return Error("bad attribute in <" + el->name + ">");
      }
    }
    // Content.
    while (true) {
      if (pos_ >= doc_.size()) return Error("element <" + el->name + "> is not closed");
      if (StartsWith("</")) {
        pos_ += 2;
        std::string_view end_name = ReadName();
        if (LocalName(end_name) != el->name) {
          return Error("</" + std::string(end_name) + "> closes <" + el->name + ">");
        }
        while (pos_ < doc_.size() && std::isspace(static_cast<unsigned char>(doc_[pos_]))) ++pos_;
        if (pos_ >= doc_.size() || doc_[pos_] != '>') return Error("unterminated end tag");
        ++pos_;
        return Status::Ok();
      }
      if (StartsWith("<![CDATA[")) {
        pos_ += 9;
        size_t end = doc_.find("]]>", pos_);
        if (end == std::string_view::npos) return Error("unterminated CDATA");
        el->text.append(doc_.substr(pos_, end - pos_));
        pos_ = end + 3;
      } else if (StartsWith("<!--") || StartsWith("<?")) {
        SkipMisc();
      } else if (doc_[pos_] == '<') {
        el->children.emplace_back();
        SLUICE_RETURN_IF_ERROR(ParseElement(&el->children.back(), depth + 1));
      } else {
        size_t end = doc_.find('<', pos_);
        if (end == std::string_view::npos) end = doc_.size();
        SLUICE_RETURN_IF_ERROR(DecodeText(doc_.substr(pos_, end - pos_), &el->text));
        pos_ = end;
      }
    }
  }

  Status DecodeText(std::string_view raw, std::string* out) {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out->push_back(raw[i]);
        continue;
      }
      size_t semi = raw.find(';', i);
      if (semi == std::string_view::npos || semi - i > 10) return Error("bad entity reference");
      std::string_view ent = raw.substr(i + 1, semi - i - 1);
      if (ent == "amp") out->push_back('&');
      else if (ent == "lt") out->push_back('<');
      else if (ent == "gt") out->push_back('>');
      else if (ent == "quot") out->push_back('"');
      else if (ent == "apos") out->push_back('\'');
      else if (!ent.empty() && ent[0] == '#') {
        uint32_t cp = 0;
        bool hex = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X');
        std::string_view digits = ent.substr(hex ? 2 : 1);
        if (digits.empty()) return Error("empty character reference");
        for (char c : digits) {
          int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                  : (hex && std::isxdigit(static_cast<unsigned char>(c))) ? (std::tolower(c) - 'a' + 10)
                                                                          : -1;
          if (d < 0) return Error("bad character reference &" + std::string(ent) + ";");
          cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
          if (cp > 0x10FFFF) return Error("character reference out of range");
        }
        AppendUtf8(cp, out);
      } else {
        return Error("unknown entity &" + std::string(ent) + ";");
      }
      i = semi;
    }
    return Status::Ok();
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::string_view doc_;
  size_t pos_ = 0;
};

}  // namespace

const XmlElement* XmlElement::Child(std::string_view child_name) const {
  for (const auto& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::string XmlElement::ChildText(std::string_view child_name) const {
  const XmlElement* c = Child(child_name);
  return c ? c->text : std::string();
}

std::vector<const XmlElement*> XmlElement::Children(std::string_view child_name) const {
  std::vector<const XmlElement*> out;
  for (const auto& c : children) {
    if (c.name == child_name) out.push_back(&c);
  }
  return out;
}

Result<XmlElement> ParseXml(std::string_view document) { return Parser(document).ParseDocument(); }

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace sluice::ufs
