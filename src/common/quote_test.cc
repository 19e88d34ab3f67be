// ShellEscape: the expected strings are what GNU ls 9.1 prints with --quoting-style=shell-escape
// in a UTF-8 locale for files of these names.
#include "common/quote.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(ShellEscapeTest, PlainNamesAreUnchanged) {
  for (const char* name : {"plain.txt", "a#b", "a~", "a{", "shard-0001.tar", "x,y:z@w+%_]", "é", "日本語.txt"}) {
    EXPECT_EQ(ShellEscape(name), name);
  }
}

TEST(ShellEscapeTest, ControlCharactersAreEscaped) {
  EXPECT_EQ(ShellEscape("a\nb"), "'a'$'\\n''b'");
  EXPECT_EQ(ShellEscape("\n"), "''$'\\n'");
  EXPECT_EQ(ShellEscape("\x1b[31mred"), "''$'\\033''[31mred'");
  EXPECT_EQ(ShellEscape("t\tab"), "'t'$'\\t''ab'");
  EXPECT_EQ(ShellEscape("é\n"), "'é'$'\\n'");
  EXPECT_EQ(ShellEscape("del\x7f"), "'del'$'\\177'");
  EXPECT_EQ(ShellEscape("\r\a\b\f\v\x01"), "''$'\\r\\a\\b\\f\\v\\001'");
}

TEST(ShellEscapeTest, BytesThatAreNotPrintableUtf8AreEscaped) {
  EXPECT_EQ(ShellEscape("\xff"), "''$'\\377'");
  EXPECT_EQ(ShellEscape("\xc2\x9b"), "''$'\\302\\233'");  // U+009B, the C1 control sequence introducer
  EXPECT_EQ(ShellEscape("a\xe6\x97"), "'a'$'\\346\\227'");  // cut short
  EXPECT_EQ(ShellEscape("\xc0\xaf"), "''$'\\300\\257'");  // overlong '/'
}

TEST(ShellEscapeTest, ShellSpecialCharactersAreQuoted) {
  EXPECT_EQ(ShellEscape("sub dir"), "'sub dir'");
  EXPECT_EQ(ShellEscape("x$y"), "'x$y'");
  EXPECT_EQ(ShellEscape("a=b"), "'a=b'");
  EXPECT_EQ(ShellEscape("#h"), "'#h'");
  EXPECT_EQ(ShellEscape("~x"), "'~x'");
  EXPECT_EQ(ShellEscape("{"), "'{'");
  EXPECT_EQ(ShellEscape(""), "''");
}

TEST(ShellEscapeTest, SingleQuotes) {
  EXPECT_EQ(ShellEscape("a'b"), "\"a'b\"");
  EXPECT_EQ(ShellEscape("''"), "\"''\"");
  EXPECT_EQ(ShellEscape("#'x"), "\"#'x\"");
  EXPECT_EQ(ShellEscape("é'x"), "\"é'x\"");
  EXPECT_EQ(ShellEscape("a b'c"), "\"a b'c\"");
  EXPECT_EQ(ShellEscape("it's $x"), "'it'\\''s $x'");
  EXPECT_EQ(ShellEscape("a~'b"), "'a~'\\''b'");
  EXPECT_EQ(ShellEscape("a?'b"), "'a?'\\''b'");
  EXPECT_EQ(ShellEscape("a'\nb"), "'a'\\'''$'\\n''b'");
  EXPECT_EQ(ShellEscape("\n'"), "''$'\\n'\\'''");
}

}  // namespace
}  // namespace sluice
