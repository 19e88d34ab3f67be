// ListKeys against an in-memory tree, checked against S3's rules computed by brute force over
// the sorted list of every key: order, prefixes, delimiters, pages and markers.
#include "gateway/s3_listing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace sluice::gateway {
namespace {

// A tree of files given by their keys; directories are implied.
class Tree {
 public:
  explicit Tree(std::vector<std::string> keys) : keys_(std::move(keys)) { std::sort(keys_.begin(), keys_.end()); }

  ListDirFn Fn() {
    return [this](const std::string& dir) -> Result<std::vector<ListedEntry>> {
      ++lists_;
      std::set<std::pair<std::string, bool>> children;  // name, is_dir: "a" may be both
      for (const auto& k : keys_) {
        if (k.compare(0, dir.size(), dir) != 0) continue;
        std::string rest = k.substr(dir.size());
        size_t slash = rest.find('/');
        if (slash == std::string::npos) {
          children.emplace(rest, false);
        } else {
          children.emplace(rest.substr(0, slash), true);
        }
      }
      if (children.empty() && !dir.empty()) return Status(StatusCode::kNotFound, dir + " does not exist");
      std::vector<ListedEntry> out;
      for (const auto& [name, is_dir] : children) out.push_back(ListedEntry{name, is_dir, 1, 0, "\"e\""});
      std::reverse(out.begin(), out.end());  // any order: ListKeys sorts
      return out;
    };
  }

  // S3's answer, by brute force.
  ListPage Expected(const ListQuery& q) const {
    ListPage page;
    std::set<std::string> seen_prefixes;
    for (const auto& k : keys_) {
      if (k.compare(0, q.prefix.size(), q.prefix) != 0) continue;
      std::string item = k;
      bool rolled = false;
      if (!q.delimiter.empty()) {
        size_t at = k.find(q.delimiter, q.prefix.size());
        if (at != std::string::npos) {
          item = k.substr(0, at + q.delimiter.size());
          rolled = true;
        }
      }
      if (item <= q.after) continue;
      if (rolled && seen_prefixes.count(item)) continue;
      if (page.objects.size() + page.common_prefixes.size() >= q.max_keys) {
        page.truncated = true;
        break;
      }
      if (rolled) {
        seen_prefixes.insert(item);
        page.common_prefixes.push_back(item);
      } else {
        page.objects.push_back(ListedObject{k, 1, 0, "\"e\""});
      }
      page.last = item;
    }
    return page;
  }

  int lists_ = 0;

 private:
  std::vector<std::string> keys_;
};

std::vector<std::string> Keys(const ListPage& p) {
  std::vector<std::string> out;
  for (const auto& o : p.objects) out.push_back(o.key);
  return out;
}

void ExpectSame(Tree& tree, const ListQuery& q) {
  auto got = ListKeys(q, tree.Fn());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ListPage want = tree.Expected(q);
  const std::string what = "prefix '" + q.prefix + "' delimiter '" + q.delimiter + "' after '" + q.after +
                           "' max " + std::to_string(q.max_keys);
  EXPECT_EQ(Keys(*got), Keys(want)) << what;
  EXPECT_EQ(got->common_prefixes, want.common_prefixes) << what;
  EXPECT_EQ(got->truncated, want.truncated) << what;
  if (want.truncated) {
    EXPECT_EQ(got->last, want.last) << what;
  }
}

const std::vector<std::string> kOddTree = {
    "a",         "a-b",        "a/b",      "a/b/c",       "a/b-c",     "a/c/d/e",     "a.txt",       "b/x",
    "b/y/z",     "b0",         "c/ d",     "c/+plus",     "c/%20",     "c/\xc3\xa9t\xc3\xa9", "c/~tilde", "d/e/f/g/h",
    "d/e/f/g/i", "dir/a",      "dir-x",    "dir.y/z",     "z",
};

TEST(S3ListingTest, MatchesS3OrderForEveryPrefixDelimiterAndPageSize) {
  // "a" is a file and "a/" a directory at once, as S3 allows and as an S3 under-store shows.
  Tree tree(kOddTree);
  std::vector<std::string> prefixes = {"", "a", "a/", "a/b", "a/b/", "b", "c/", "d/e/f", "di", "dir", "nope/", "zz"};
  for (const auto& prefix : prefixes) {
    for (const std::string delimiter : {"", "/", "-", "b"}) {
      for (size_t max_keys : {1, 2, 3, 1000}) {
        ListQuery q{prefix, delimiter, "", max_keys};
        ExpectSame(tree, q);
      }
    }
  }
}

TEST(S3ListingTest, PagingByTheLastItemVisitsEveryKeyOnce) {
  Tree tree(kOddTree);
  for (const std::string delimiter : {"", "/"}) {
    for (size_t max_keys : {1, 2, 5}) {
      ListQuery q{"", delimiter, "", max_keys};
      std::vector<std::string> all;
      for (int pages = 0; pages < 100; ++pages) {
        auto page = ListKeys(q, tree.Fn());
        ASSERT_TRUE(page.ok());
        for (const auto& o : page->objects) all.push_back(o.key);
        for (const auto& p : page->common_prefixes) all.push_back(p);
        if (!page->truncated) break;
        q.after = page->last;
      }
      q.after.clear();
      q.max_keys = 1000;
      ListPage whole = tree.Expected(q);
      std::vector<std::string> want = Keys(whole);
      want.insert(want.end(), whole.common_prefixes.begin(), whole.common_prefixes.end());
      std::sort(want.begin(), want.end());
      std::sort(all.begin(), all.end());
      EXPECT_EQ(all, want) << "delimiter '" << delimiter << "' max " << max_keys;
    }
  }
}

TEST(S3ListingTest, MarkersInsideAndBetweenDirectoriesAndUnknownMarkers) {
  Tree tree(kOddTree);
  for (const std::string after : {"a", "a/", "a/b", "a/b/c", "a/c/d/e", "b/", "b/y", "c/%", "dir", "dir/a", "y", "zz",
                                  "\xff"}) {
    for (const std::string delimiter : {"", "/"}) {
      ExpectSame(tree, ListQuery{"", delimiter, after, 3});
      ExpectSame(tree, ListQuery{"a", delimiter, after, 1000});
    }
  }
}

TEST(S3ListingTest, SubtreesBeforeTheMarkerAreNotRead) {
  std::vector<std::string> keys;
  for (int d = 0; d < 50; ++d) {
    for (int f = 0; f < 20; ++f) keys.push_back("d" + std::to_string(100 + d) + "/f" + std::to_string(100 + f));
  }
  Tree tree(keys);
  auto page = ListKeys(ListQuery{"", "", "d140/f110", 5}, tree.Fn());
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"d140/f111", "d140/f112", "d140/f113", "d140/f114", "d140/f115"}));
  EXPECT_TRUE(page->truncated);
  EXPECT_LE(tree.lists_, 3) << "directories before the marker were listed";  // the top, d140, (no more)
  // With "/", directories are rolled up without being read at all.
  tree.lists_ = 0;
  page = ListKeys(ListQuery{"", "/", "", 1000}, tree.Fn());
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->common_prefixes.size(), 50u);
  EXPECT_EQ(tree.lists_, 1);
}

TEST(S3ListingTest, ZeroMaxKeysAndMissingDirectories) {
  Tree tree(kOddTree);
  auto page = ListKeys(ListQuery{"", "", "", 0}, tree.Fn());
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->objects.empty());
  EXPECT_FALSE(page->truncated);
  page = ListKeys(ListQuery{"nope/deeper/", "/", "", 10}, tree.Fn());
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->objects.empty());
  // Any other error of the tree is the listing's error.
  auto failing = [](const std::string&) -> Result<std::vector<ListedEntry>> {
    return Status(StatusCode::kUnavailable, "the store is down");
  };
  EXPECT_EQ(ListKeys(ListQuery{}, failing).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace sluice::gateway
