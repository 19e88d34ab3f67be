// Shell-escape quoting, after gnulib's quotearg (shell_escape_quoting_style), for UTF-8 names.
#include "common/quote.h"

#include <cstdint>
#include <cstdio>

namespace sluice {
namespace {

// Length of the well-formed UTF-8 sequence at s[i] when it encodes a printable character
// (U+00A0 and up; U+0080..U+009F are C1 controls), else 0.
size_t PrintableUtf8Length(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp < 0xA0) return 0;
  return n;
}

// The $'...' escape of one byte: \n, \t... or three octal digits.
std::string EscapeByte(unsigned char c) {
  switch (c) {
    case '\a': return "\\a";
    case '\b': return "\\b";
    case '\t': return "\\t";
    case '\n': return "\\n";
    case '\v': return "\\v";
    case '\f': return "\\f";
    case '\r': return "\\r";
    default: {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\%03o", c);
      return buf;
    }
  }
}

// One piece of a name: a printable character (one byte or a UTF-8 sequence), or a byte that
// must be escaped.
struct Piece {
  size_t length;
  bool escape;
};

Piece PieceAt(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c >= 0x20 && c < 0x7F) return {1, false};
  if (c >= 0x80) {
    if (size_t n = PrintableUtf8Length(s, i)) return {n, false};
  }
  return {1, true};
}

}  // namespace

std::string ShellEscape(std::string_view name) {
  if (name.empty()) return "''";
  bool quote = false;          // something in it means something to a shell, or must be escaped
  bool single_quote = false;   // it holds a '
  bool double_quotable = true;  // every character reads the same inside "..."
  for (size_t i = 0; i < name.size();) {
    const Piece p = PieceAt(name, i);
    const char c = name[i];
    bool compatible = false;  // with double quotes
    if (p.escape) {
      quote = true;
    } else if (p.length > 1) {
      compatible = true;
    } else {
      switch (c) {
        case '{':
        case '}':
          if (name.size() == 1) quote = compatible = true;
          break;
        case '#':
        case '~':
          if (i == 0) quote = compatible = true;
          break;
        case ' ':
          quote = compatible = true;
          break;
        case '\'':
          quote = compatible = single_quote = true;
          break;
        case '!': case '"': case '$': case '&': case '(': case ')': case '*': case ';': case '<': case '=':
        case '>': case '?': case '[': case '\\': case '^': case '`': case '|':
          quote = true;
          break;
        default:  // letters, digits and % + , - . / : @ ] _
          compatible = true;
      }
    }
    double_quotable = double_quotable && compatible;
    i += p.length;
  }
  if (!quote) return std::string(name);
  if (single_quote && double_quotable) return "\"" + std::string(name) + "\"";
  std::string out = "'";
  bool in_escape = false;  // inside $'...'
  for (size_t i = 0; i < name.size();) {
    const Piece p = PieceAt(name, i);
    if (p.escape) {
      if (!in_escape) out += "'$'";
      in_escape = true;
      out += EscapeByte(static_cast<unsigned char>(name[i]));
    } else {
      if (name[i] == '\'') {
        out += "'\\''";  // closes the quote open (plain or $'...'), then \', then reopens
      } else {
        if (in_escape) out += "''";
        out.append(name.substr(i, p.length));
      }
      in_escape = false;
    }
    i += p.length;
  }
  out += "'";
  return out;
}

}  // namespace sluice
