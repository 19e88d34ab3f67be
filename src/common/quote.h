// Names from a store, made safe to print on a terminal. An object or file name may hold a
// newline or a terminal escape sequence; printed raw, it forges lines or drives the terminal.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// `name` quoted as GNU `ls --quoting-style=shell-escape` does: unchanged when nothing in it
// needs quoting ("a.bin"); else in single quotes ('sub dir', 'it'\''s'), or double quotes
// when a single quote is its only special character ("it's"); control characters, bytes that
// are not UTF-8 and C1 controls as $'...' escapes: "a\nb" -> 'a'$'\n''b', ESC -> $'\033'.
// Printable UTF-8 passes through. The result is one line, and pasted into a shell it is `name`.
std::string ShellEscape(std::string_view name);

}  // namespace sluice
