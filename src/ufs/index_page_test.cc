// Tests for index-page link scanning on the pages real servers send.
#include "ufs/index_page.h"

#include <gtest/gtest.h>

namespace sluice::ufs {
namespace {

using Links = std::vector<std::string>;

TEST(IndexPageTest, PythonHttpServer) {
  // `python3 -m http.server` (3.11): quoted with urllib.parse.quote, escaped with html.escape.
  const char* page = R"(<!DOCTYPE HTML>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Directory listing for /data/</title>
</head>
<body>
<h1>Directory listing for /data/</h1>
<hr>
<ul>
<li><a href="a%20b.bin">a b.bin</a></li>
<li><a href="shard-00001.tar">shard-00001.tar</a></li>
<li><a href="sub/">sub/</a></li>
<li><a href="caf%C3%A9.txt">café.txt</a></li>
</ul>
<hr>
</body>
</html>
)";
  EXPECT_EQ(IndexLinks(page), (Links{"a b.bin", "shard-00001.tar", "sub/", "caf\xC3\xA9.txt"}));
}

TEST(IndexPageTest, NginxAutoindex) {
  const char* page = R"(<html>
<head><title>Index of /data/</title></head>
<body>
<h1>Index of /data/</h1><hr><pre><a href="../">../</a>
<a href="sub/">sub/</a>                                               26-Nov-2026 08:12                   -
<a href="a%26b.bin">a&amp;b.bin</a>                                          26-Nov-2026 08:12                4096
<a href="x.bin?C=M;O=A">sort</a>
<a href="https://elsewhere.example/y.bin">elsewhere</a>
<a href="/data/abs.bin">abs</a>
<a href="#top">top</a>
<a href='./single.bin'>single</a>
<a href="sub/">again</a>
</pre><hr></body>
</html>
)";
  EXPECT_EQ(IndexLinks(page), (Links{"sub/", "a&b.bin", "single.bin"}));
}

TEST(IndexPageTest, NoDotSegmentsOrDeeperLinks) {
  // Encoded dot segments would make a recursive listing climb back up (and loop); "a/b" is
  // not a direct child; a NUL cannot be in a name.
  EXPECT_EQ(IndexLinks(R"(<a href="%2e%2e/">x</a><a href=".%2E">x</a><a href="%2E/">x</a><a href="%2e">x</a>
<a href="a%2Fb">x</a><a href="a/b">x</a><a href="n%00ul">x</a><a href="ok">x</a>)"),
            (Links{"ok"}));
}

TEST(IndexPageTest, MalformedPagesGiveWhatIsThere) {
  EXPECT_EQ(IndexLinks(""), Links{});
  EXPECT_EQ(IndexLinks("href="), Links{});
  EXPECT_EQ(IndexLinks("href=x href=\"a\""), (Links{"a"}));
  EXPECT_EQ(IndexLinks("href=\"unterminated"), Links{});
}

}  // namespace
}  // namespace sluice::ufs
