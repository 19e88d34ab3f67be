// Write-back journal entries and the store view that shows them before they are uploaded.
#include "worker/write_journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "common/path.h"
#include "common/unique_fd.h"

namespace sluice::worker {
namespace {

Status Fsync(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return IoError("cannot sync " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

// The key of `key`'s directory: "a/b/c" -> "a/b"; "c" -> "".
std::string ParentKey(const std::string& key) {
  const size_t slash = key.rfind('/');
  return slash == std::string::npos ? "" : key.substr(0, slash);
}

bool IsBelow(const std::string& key, const std::string& dir) {
  return dir.empty() || key.compare(0, dir.size() + 1, dir + "/") == 0;
}

}  // namespace

ufs::ObjectInfo JournalEntry::Info() const {
  ufs::ObjectInfo info;
  info.path = key;
  info.size = size;
  info.mtime_ns = mtime_ns;
  info.identity = "journal-" + std::to_string(id);
  return info;
}

Status JournalEntry::Save(const std::string& journal_dir) const {
  const std::string path = journal_dir + "/" + std::to_string(id) + ".entry";
  const std::string tmp = path + ".tmp";
  std::ostringstream text;
  text << mount_path << '\t' << key << '\t' << size << '\t' << mtime_ns << '\n';
  const std::string bytes = text.str();
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0 || ::write(fd.get(), bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()) ||
        ::fsync(fd.get()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      std::string msg = "cannot write the journal entry " + tmp + ": " + std::strerror(err);
      if (err == ENOSPC) return Status(StatusCode::kResourceExhausted, msg + " (the cache disk is full)");
      return IoError(msg);
    }
  }
  SLUICE_RETURN_IF_ERROR(Fsync(data_path, O_RDONLY));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return IoError("cannot write " + path + ": " + std::strerror(errno));
  return Fsync(journal_dir, O_RDONLY | O_DIRECTORY);
}

std::vector<JournalEntry> JournalEntry::LoadAll(const std::string& journal_dir, std::vector<std::string>* bad) {
  std::vector<JournalEntry> out;
  DIR* d = ::opendir(journal_dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 7 || name.compare(name.size() - 6, 6, ".entry") != 0) continue;
    JournalEntry entry;
    entry.id = std::strtoull(name.c_str(), nullptr, 10);
    entry.data_path = journal_dir + "/" + std::to_string(entry.id) + ".data";
    std::string text;
    {
      UniqueFd fd(::open((journal_dir + "/" + name).c_str(), O_RDONLY | O_CLOEXEC));
      char buf[8192];
      ssize_t n = fd.get() < 0 ? -1 : ::read(fd.get(), buf, sizeof buf);
      if (n > 0) text.assign(buf, static_cast<size_t>(n));
    }
    std::istringstream in(text);
    std::string size, mtime;
    if (!std::getline(in, entry.mount_path, '\t') || !std::getline(in, entry.key, '\t') ||
        !std::getline(in, size, '\t') || !std::getline(in, mtime) || ::access(entry.data_path.c_str(), R_OK) != 0) {
      bad->push_back(journal_dir + "/" + name);
      continue;
    }
    entry.size = std::strtoull(size.c_str(), nullptr, 10);
    entry.mtime_ns = std::strtoll(mtime.c_str(), nullptr, 10);
    out.push_back(std::move(entry));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const JournalEntry& a, const JournalEntry& b) { return a.id < b.id; });
  return out;
}

void JournalEntry::Remove(const std::string& journal_dir) const {
  ::unlink((journal_dir + "/" + std::to_string(id) + ".entry").c_str());
  ::unlink(data_path.c_str());
}

void PendingStore::Add(const JournalEntry& entry) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = pending_[entry.key];
  if (slot.id <= entry.id) slot = entry;
}

void PendingStore::Drop(const std::string& key, uint64_t id, const std::string& uploaded_version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(key);
  if (it == pending_.end() || it->second.id != id) return;
  if (!uploaded_version.empty()) {
    const std::string journal_version = it->second.Info().Version();
    uploaded_[journal_version] = uploaded_version;
    uploaded_order_.push_back(journal_version);
    if (uploaded_order_.size() > kRememberedUploads) {
      uploaded_.erase(uploaded_order_.front());
      uploaded_order_.pop_front();
    }
  }
  pending_.erase(it);
}

std::optional<JournalEntry> PendingStore::Find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(key);
  if (it == pending_.end()) return std::nullopt;
  return it->second;
}

std::pair<uint64_t, uint64_t> PendingStore::PendingBelow(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t files = 0, bytes = 0;
  for (const auto& [k, e] : pending_) {
    if (k == key || IsBelow(k, key)) {
      ++files;
      bytes += e.size;
    }
  }
  return {files, bytes};
}

Result<ufs::ObjectInfo> PendingStore::Stat(std::string_view path) {
  SLUICE_ASSIGN_OR_RETURN(std::string key, ufs::NormalizeKey(path));
  if (auto e = Find(key)) return e->Info();
  auto info = base_->Stat(path);
  if (!info.ok() && info.status().code() == StatusCode::kNotFound && PendingBelow(key).first > 0) {
    ufs::ObjectInfo dir;  // a directory that so far holds only pending files
    dir.path = key;
    dir.is_dir = true;
    return dir;
  }
  return info;
}

Result<ufs::ListPage> PendingStore::List(std::string_view dir, const ufs::ListOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(std::string key, ufs::NormalizeKey(dir));
  std::vector<ufs::ObjectInfo> mine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, e] : pending_) {
      if (!IsBelow(k, key)) continue;
      if (options.recursive || ParentKey(k) == key) mine.push_back(e.Info());
    }
  }
  auto page = base_->List(dir, options);
  if (mine.empty()) return page;
  if (!page.ok() && page.status().code() == StatusCode::kNotFound) page = ufs::ListPage{};
  if (!page.ok()) return page;
  // A pending file goes into the page whose names it sorts among (the first page for names
  // before them, the last for names after), replacing the store's entry of the same name.
  const bool first = options.continuation.empty(), last = page->next_token.empty();
  auto& entries = page->entries;
  for (auto& info : mine) {
    const bool before = !entries.empty() && info.path < entries.front().path;
    const bool after = !entries.empty() && info.path > entries.back().path;
    if (!entries.empty() && ((before && !first) || (after && !last))) continue;
    auto at = std::lower_bound(entries.begin(), entries.end(), info.path,
                               [](const ufs::ObjectInfo& e, const std::string& p) { return e.path < p; });
    if (at != entries.end() && at->path == info.path) {
      *at = std::move(info);
    } else {
      entries.insert(at, std::move(info));
    }
  }
  return page;
}

Result<uint64_t> PendingStore::ReadData(const JournalEntry& entry, uint64_t offset, uint64_t length,
                                        const ufs::ByteSink& sink) {
  UniqueFd fd(::open(entry.data_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return IoError("cannot read the journal file " + entry.data_path + ": " + std::strerror(errno));
  const uint64_t end = std::min(entry.size, offset + length);
  std::string buf(1 << 20, '\0');
  uint64_t at = offset;
  while (at < end) {
    ssize_t n = ::pread(fd.get(), buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), end - at)),
                        static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoError("cannot read the journal file " + entry.data_path + ": " + (n < 0 ? std::strerror(errno) : "it is short"));
    SLUICE_RETURN_IF_ERROR(sink(std::string_view(buf.data(), static_cast<size_t>(n))));
    at += static_cast<uint64_t>(n);
  }
  return at > offset ? at - offset : 0;
}

Result<uint64_t> PendingStore::Read(std::string_view path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink) {
  SLUICE_ASSIGN_OR_RETURN(std::string key, ufs::NormalizeKey(path));
  if (auto e = Find(key)) return ReadData(*e, offset, length, sink);
  return base_->Read(path, offset, length, sink);
}

Result<uint64_t> PendingStore::ReadVersion(std::string_view path, uint64_t offset, uint64_t length,
                                           std::string_view version, const ufs::ByteSink& sink) {
  SLUICE_ASSIGN_OR_RETURN(std::string key, ufs::NormalizeKey(path));
  if (auto e = Find(key); e && e->Info().Version() == version) return ReadData(*e, offset, length, sink);
  std::string uploaded;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = uploaded_.find(std::string(version));
    if (it != uploaded_.end()) uploaded = it->second;
  }
  if (!uploaded.empty()) return base_->ReadVersion(path, offset, length, uploaded, sink);  // the same bytes
  return base_->ReadVersion(path, offset, length, version, sink);
}

Result<ufs::ObjectInfo> PendingStore::StatWithHead(std::string_view path, uint64_t length, const ufs::ByteSink& sink) {
  SLUICE_ASSIGN_OR_RETURN(std::string key, ufs::NormalizeKey(path));
  if (auto e = Find(key)) {
    SLUICE_RETURN_IF_ERROR(ReadData(*e, 0, length, sink).status());
    return e->Info();
  }
  auto info = base_->StatWithHead(path, length, sink);
  if (!info.ok() && info.status().code() == StatusCode::kNotFound) return Stat(path);  // a directory of pending files
  return info;
}

}  // namespace sluice::worker
