// Tests for the XML reader on real S3 response shapes and malformed input.
#include "ufs/xml.h"

#include <gtest/gtest.h>

namespace sluice::ufs {
namespace {

TEST(XmlTest, ListObjectsV2Response) {
  auto doc = ParseXml(R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix>dir/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>dir/a &amp; b.txt</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size></Contents>
  <Contents><Key>dir/&#x1F600;&#233;</Key><Size>0</Size></Contents>
  <CommonPrefixes><Prefix>dir/sub/</Prefix></CommonPrefixes>
</ListBucketResult>)");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "ListBucketResult");
  EXPECT_EQ(doc->ChildText("IsTruncated"), "true");
  auto contents = doc->Children("Contents");
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(contents[0]->ChildText("Key"), "dir/a & b.txt");
  EXPECT_EQ(contents[0]->ChildText("ETag"), "\"fba9dede5f27731c9771645a39863328\"");
  EXPECT_EQ(contents[1]->ChildText("Key"), "dir/\xF0\x9F\x98\x80\xC3\xA9");
  EXPECT_EQ(doc->Child("CommonPrefixes")->ChildText("Prefix"), "dir/sub/");
  EXPECT_EQ(doc->ChildText("Missing"), "");
}

TEST(XmlTest, ErrorDocumentCdataAndPrefixes) {
  auto doc = ParseXml("<s3:Error a='1' b=\"x>y\"><Code>NoSuchKey</Code><Message><![CDATA[a <b>]]></Message>"
                      "<!-- note --><Empty/></s3:Error>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "Error");
  EXPECT_EQ(doc->ChildText("Code"), "NoSuchKey");
  EXPECT_EQ(doc->ChildText("Message"), "a <b>");
  EXPECT_NE(doc->Child("Empty"), nullptr);
}

TEST(XmlTest, RejectsMalformed) {
  for (const char* bad : {"", "text", "<a>", "<a></b>", "<a><b></a></b>", "<a>&bogus;</a>", "<a>&#xZZ;</a>",
                          "<a></a><b></b>", "<a x=1></a>", "<a>&#x110000;</a>"}) {
    auto doc = ParseXml(bad);
    EXPECT_FALSE(doc.ok()) << bad;
    if (!doc.ok()) {
      EXPECT_EQ(doc.status().code(), StatusCode::kCorruption);
    }
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<a>";
  EXPECT_FALSE(ParseXml(deep).ok());
}

// Found by fuzz/xml_fuzzer: a '/' inside a start tag that does not end it made the attribute
// loop spin forever, so a malformed listing hung the reader.
TEST(XmlTest, StrayCharactersInAStartTagAreErrorsNotHangs) {
  for (const char* bad : {"<a/b></a>", "<a / ></a>", "<a x=\"1\"/y></a>", "<a =\"1\"></a>", "<r><a/b></a></r>"}) {
    auto doc = ParseXml(bad);
    EXPECT_FALSE(doc.ok()) << bad;
    if (!doc.ok()) {
      EXPECT_EQ(doc.status().code(), StatusCode::kCorruption);
      EXPECT_NE(doc.status().message().find("bad attribute in <a>"), std::string::npos) << doc.status().message();
    }
  }
  EXPECT_TRUE(ParseXml("<a x=\"1\" />").ok());
}

// Found by fuzz/xml_fuzzer: a prefix without a local name gave an element named "".
TEST(XmlTest, PrefixWithoutLocalNameIsRefused) {
  for (const char* bad : {"<s3:></s3:>", "<r><:/></r>", "<r><p: a='1'/></r>"}) {
    auto doc = ParseXml(bad);
    EXPECT_FALSE(doc.ok()) << bad;
    if (!doc.ok()) {
      EXPECT_NE(doc.status().message().find("without a name"), std::string::npos) << bad;
    }
  }
}

TEST(XmlTest, Escape) { EXPECT_EQ(XmlEscape("\"a\"&<b>'"), "&quot;a&quot;&amp;&lt;b&gt;&apos;"); }

}  // namespace
}  // namespace sluice::ufs
