// The `sluice ufs` commands.
#include "cli/ufs_commands.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/context.h"
#include "cli/store_options.h"
#include "common/config.h"
#include "common/quote.h"
#include "common/units.h"
#include "ufs/under_store.h"

namespace sluice::cli {
namespace {

struct UfsFlags {
  std::string config_file;
  std::vector<std::string> options;  // key=value
  mutable bool warned = false;       // the options' warnings are printed once, not per store opened
};

// A URI split into the store that holds it and the key inside that store.
struct Location {
  std::unique_ptr<ufs::UnderStore> store;
  std::string key;
};

Result<ufs::UnderStoreOptions> MakeOptions(const UfsFlags& flags) {
  Config cfg;
  std::string file = flags.config_file;
  if (file.empty() && std::getenv("SLUICE_CONFIG")) file = std::getenv("SLUICE_CONFIG");
  if (!file.empty()) {
    SLUICE_ASSIGN_OR_RETURN(cfg, LoadConfigFile(file));
  }
  auto o = ufs::UnderStoreOptions::FromConfig(cfg.ufs);
  SLUICE_ASSIGN_OR_RETURN(StoreOptions given, ParseStoreOptions(flags.options));
  for (const auto& warning : given.warnings) {
    if (!flags.warned) std::fprintf(stderr, "%s\n", warning.c_str());
  }
  flags.warned = true;
  o.options = std::move(given.options);
  return o;
}

// s3://bucket/a/b -> store s3://bucket, key a/b; http://host/a -> http://host, a;
// file:///a/b -> file:///, a/b. A plain path is a local file.
Result<Location> Locate(std::string uri, const UfsFlags& flags) {
  if (uri.find("://") == std::string::npos) {
    std::error_code ec;
    uri = "file://" + std::filesystem::absolute(uri, ec).lexically_normal().string();
  }
  size_t sep = uri.find("://");
  std::string scheme = uri.substr(0, sep);
  std::string rest = uri.substr(sep + 3);
  std::string root, key;
  if (scheme == "file") {
    root = "file:///";
    key = rest;
  } else {
    size_t slash = rest.find('/');
    root = scheme + "://" + rest.substr(0, slash);
    key = slash == std::string::npos ? "" : rest.substr(slash + 1);
  }
  SLUICE_ASSIGN_OR_RETURN(ufs::UnderStoreOptions opts, MakeOptions(flags));
  if (scheme == "file") opts.options.clear();
  SLUICE_ASSIGN_OR_RETURN(auto store, ufs::OpenUnderStore(root, opts));
  SLUICE_ASSIGN_OR_RETURN(std::string normalized, ufs::NormalizeKey(key));
  return Location{std::move(store), normalized};
}

int Ls(const std::string& uri, bool recursive, bool long_format, const UfsFlags& flags) {
  auto loc = Locate(uri, flags);
  if (!loc.ok()) return Fail(loc.status());
  auto info = loc->store->Stat(loc->key);
  if (!info.ok()) return Fail(info.status());
  std::vector<ufs::ObjectInfo> entries;
  if (info->is_dir) {
    auto all = loc->store->ListAll(loc->key, recursive);
    if (!all.ok()) return Fail(all.status());
    entries = std::move(all).value();
  } else {
    entries.push_back(*info);
  }
  const size_t strip = (info->is_dir && !loc->key.empty()) ? loc->key.size() + 1 : 0;
  for (const auto& e : entries) {
    // Quoted: a key may hold a newline or a terminal escape.
    std::string name = ShellEscape(e.path.substr(std::min(strip, e.path.size()))) + (e.is_dir ? "/" : "");
    if (long_format) {
      std::printf("%12s  %s  %s\n", e.is_dir ? "DIR" : std::to_string(e.size).c_str(), FormatTime(e.mtime_ns).c_str(),
                  name.c_str());
    } else {
      std::printf("%s\n", name.c_str());
    }
  }
  return 0;
}

int StatCmd(const std::string& uri, const UfsFlags& flags) {
  auto loc = Locate(uri, flags);
  if (!loc.ok()) return Fail(loc.status());
  auto info = loc->store->Stat(loc->key);
  if (!info.ok()) return Fail(info.status());
  std::printf("uri:      %s\ntype:     %s\n", uri.c_str(), info->is_dir ? "directory" : "file");
  if (!info->is_dir) {
    std::printf("size:     %llu (%s)\nmodified: %s UTC\nversion:  %s\n", static_cast<unsigned long long>(info->size),
                FormatSize(info->size).c_str(), FormatTime(info->mtime_ns).c_str(), info->Version().c_str());
  }
  return 0;
}

int Cat(const std::string& uri, uint64_t offset, uint64_t length, const UfsFlags& flags) {
  auto loc = Locate(uri, flags);
  if (!loc.ok()) return Fail(loc.status());
  auto n = loc->store->Read(loc->key, offset, length, [](std::string_view chunk) {
    if (std::fwrite(chunk.data(), 1, chunk.size(), stdout) != chunk.size()) return IoError("cannot write to stdout");
    return Status::Ok();
  });
  std::fflush(stdout);
  if (!n.ok()) return Fail(n.status());
  return 0;
}

Status CopyOne(ufs::UnderStore& src, const std::string& src_key, ufs::UnderStore& dst, const std::string& dst_key) {
  SLUICE_ASSIGN_OR_RETURN(std::string data, src.ReadToString(src_key, 0, UINT64_MAX / 2));
  return dst.Write(dst_key, data);
}

int Cp(const std::string& from, const std::string& to, bool recursive, const UfsFlags& flags) {
  auto src = Locate(from, flags);
  if (!src.ok()) return Fail(src.status());
  auto dst = Locate(to, flags);
  if (!dst.ok()) return Fail(dst.status());
  auto info = src->store->Stat(src->key);
  if (!info.ok()) return Fail(info.status());
  if (!info->is_dir) {
    Status st = CopyOne(*src->store, src->key, *dst->store, dst->key);
    return st.ok() ? 0 : Fail(st);
  }
  if (!recursive) return Fail(InvalidArgument(from + " is a directory (use -R to copy it)"));
  auto all = src->store->ListAll(src->key, true);
  if (!all.ok()) return Fail(all.status());
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    for (size_t i = next++; i < all->size(); i = next++) {
      const auto& e = (*all)[i];
      std::string rel = src->key.empty() ? e.path : e.path.substr(src->key.size() + 1);
      std::string target = dst->key.empty() ? rel : dst->key + "/" + rel;
      Status st = CopyOne(*src->store, e.path, *dst->store, target);
      bytes += e.size;
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = st;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (!first_error.ok()) return Fail(first_error);
  std::fprintf(stderr, "copied %zu files, %s\n", all->size(), FormatSize(bytes).c_str());
  return 0;
}

int Rm(const std::string& uri, const UfsFlags& flags) {
  auto loc = Locate(uri, flags);
  if (!loc.ok()) return Fail(loc.status());
  Status st = loc->store->Delete(loc->key);
  return st.ok() ? 0 : Fail(st);
}

int Mkdir(const std::string& uri, const UfsFlags& flags) {
  auto loc = Locate(uri, flags);
  if (!loc.ok()) return Fail(loc.status());
  Status st = loc->store->Mkdir(loc->key);
  return st.ok() ? 0 : Fail(st);
}

// Reads every file under `uri` with `threads` readers, files larger than `part_size` as
// ranged GETs of that size in parallel, and reports files/s and MiB/s.
// Runs read(i) for i in [0, count) on `threads` threads; read returns the bytes it read. Prints
// the throughput over `files` files and the latency of one read (median and 99th percentile),
// or fails with the first error.
int ReadInParallel(size_t count, size_t files, int threads, const std::function<Result<uint64_t>(size_t)>& read) {
  auto t0 = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes{0};
  std::vector<double> latency_ms(count);
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    for (size_t i = next++; i < count; i = next++) {
      const auto start = std::chrono::steady_clock::now();
      auto n = read(i);
      latency_ms[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (n.ok()) {
        bytes += *n;
      } else {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = n.status();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, threads); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (!first_error.ok()) return Fail(first_error);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::sort(latency_ms.begin(), latency_ms.end());
  auto percentile = [&](double p) {
    return latency_ms.empty() ? 0.0 : latency_ms[std::min(latency_ms.size() - 1, static_cast<size_t>(p * latency_ms.size()))];
  };
  std::printf("read %zu files, %s in %.2fs: %.1f MiB/s, %.0f files/s; a read took %.2f ms (median), %.2f ms (p99)\n",
              files, FormatSize(bytes).c_str(), secs, static_cast<double>(bytes) / (1 << 20) / secs,
              static_cast<double>(files) / secs, percentile(0.5), percentile(0.99));
  return 0;
}

// Reads the files a manifest names (paths relative to `uri`, one per line) as a loader that
// knows its file names does: no listing, one GET per file (its first part answers its size),
// `threads` at a time.
int ReadManifest(const std::string& uri, const std::string& manifest, int threads, uint64_t part_size,
                 const UfsFlags& flags) {
  auto loc = Locate(uri, flags);
  if (!loc.ok()) return Fail(loc.status());
  std::ifstream in(manifest);
  if (!in) return Fail(InvalidArgument("--manifest: cannot read " + manifest));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) names.push_back(loc->key.empty() ? line : loc->key + "/" + line);
  }
  return ReadInParallel(names.size(), names.size(), threads, [&](size_t i) -> Result<uint64_t> {
    uint64_t bytes = 0;
    auto count = [&](std::string_view chunk) {
      bytes += chunk.size();
      return Status::Ok();
    };
    SLUICE_ASSIGN_OR_RETURN(ufs::ObjectInfo info, loc->store->StatWithHead(names[i], part_size, count));
    if (info.size > part_size) SLUICE_RETURN_IF_ERROR(loc->store->Read(names[i], part_size, info.size, count).status());
    return bytes;
  });
}

int ReadAll(const std::string& uri, int threads, uint64_t part_size, const UfsFlags& flags) {
  auto loc = Locate(uri, flags);
  if (!loc.ok()) return Fail(loc.status());
  auto info = loc->store->Stat(loc->key);
  if (!info.ok()) return Fail(info.status());
  std::vector<ufs::ObjectInfo> files;
  if (info->is_dir) {
    auto all = loc->store->ListAll(loc->key, true);
    if (!all.ok()) return Fail(all.status());
    files = std::move(all).value();
  } else {
    files.push_back(*info);
  }
  struct Part {
    const ufs::ObjectInfo* file;
    uint64_t offset, length;
  };
  std::vector<Part> parts;
  for (const auto& f : files) {
    for (uint64_t off = 0; off == 0 || off < f.size; off += part_size) {
      parts.push_back(Part{&f, off, std::min(part_size, f.size - off)});
    }
  }
  return ReadInParallel(parts.size(), files.size(), threads, [&](size_t i) {
    const Part& p = parts[i];
    return loc->store->Read(p.file->path, p.offset, p.length, [](std::string_view) { return Status::Ok(); });
  });
}

}  // namespace

void AddUfsCommands(CLI::App& app, CommandResult* result) {
  auto* ufs = app.add_subcommand("ufs", "Use an under-store directly, without the cache (ls, stat, cat, cp, rm, "
                                        "mkdir, read)");
  ufs->require_subcommand(1);
  auto flags = std::make_shared<UfsFlags>();
  auto add_common = [flags](CLI::App* cmd) {
    cmd->add_option("--config", flags->config_file, "YAML config file (its ufs: section sets retries and timeouts)");
    cmd->add_option("-o,--option", flags->options,
                    std::string("store option KEY=VALUE, repeatable: endpoint, region, path_style, access_key, "
                                "secret_key_file, secret_key, session_token_file, session_token, ca_bundle (S3 keys "
                                "also come from AWS_ACCESS_KEY_ID etc.); ") +
                        kSecretOptionsHelp);
  };
  auto uri = std::make_shared<std::string>();
  auto uri2 = std::make_shared<std::string>();
  auto recursive = std::make_shared<bool>(false);
  auto long_format = std::make_shared<bool>(false);
  auto offset = std::make_shared<uint64_t>(0);
  auto length = std::make_shared<uint64_t>(UINT64_MAX / 2);
  auto threads = std::make_shared<int>(8);
  const char* kUriHelp = "file:///dir/x, s3://bucket/key, http(s)://host/path, or a local path";

  auto* ls = ufs->add_subcommand("ls", "List a directory (or show one file)");
  ls->add_option("URI", *uri, kUriHelp)->required();
  ls->add_flag("-R,--recursive", *recursive, "List every file below, at any depth");
  ls->add_flag("-l,--long", *long_format, "Show size and modification time");
  add_common(ls);
  ls->callback([=] { result->exit_code = Ls(*uri, *recursive, *long_format, *flags); });

  auto* stat = ufs->add_subcommand("stat", "Show size, modification time and version of a file");
  stat->add_option("URI", *uri, kUriHelp)->required();
  add_common(stat);
  stat->callback([=] { result->exit_code = StatCmd(*uri, *flags); });

  auto* cat = ufs->add_subcommand("cat", "Write a file's bytes (or a range of them) to stdout");
  cat->add_option("URI", *uri, kUriHelp)->required();
  cat->add_option("--offset", *offset, "First byte to read");
  cat->add_option("--length", *length, "Number of bytes to read");
  add_common(cat);
  cat->callback([=] { result->exit_code = Cat(*uri, *offset, *length, *flags); });

  auto* cp = ufs->add_subcommand("cp", "Copy a file or, with -R, a directory between stores or local paths");
  cp->add_option("SRC", *uri, kUriHelp)->required();
  cp->add_option("DST", *uri2, kUriHelp)->required();
  cp->add_flag("-R,--recursive", *recursive, "Copy a whole directory");
  add_common(cp);
  cp->callback([=] { result->exit_code = Cp(*uri, *uri2, *recursive, *flags); });

  auto* rm = ufs->add_subcommand("rm", "Delete a file");
  rm->add_option("URI", *uri, kUriHelp)->required();
  add_common(rm);
  rm->callback([=] { result->exit_code = Rm(*uri, *flags); });

  auto* mkdir = ufs->add_subcommand("mkdir", "Create a directory (on S3, a dir/ marker object)");
  mkdir->add_option("URI", *uri, kUriHelp)->required();
  add_common(mkdir);
  mkdir->callback([=] { result->exit_code = Mkdir(*uri, *flags); });

  auto* read = ufs->add_subcommand("read", "Read every file below URI and report the throughput");
  read->add_option("URI", *uri, kUriHelp)->required();
  read->add_option("-j,--threads", *threads, "Parallel readers")->check(CLI::Range(1, 256));
  auto part_size = std::make_shared<std::string>("8MiB");
  read->add_option("--part-size", *part_size, "Read larger files as parallel ranged GETs of this size (default 8MiB)");
  auto manifest = std::make_shared<std::string>();
  read->add_option("--manifest", *manifest,
                   "Read only the files this file names (one path relative to URI per line), without listing");
  add_common(read);
  read->callback([=] {
    auto size = ParseSize(*part_size);
    if (!size.ok() || *size == 0) {
      result->exit_code = Fail(InvalidArgument("--part-size: expected a size such as 8MiB, got '" + *part_size + "'"));
      return;
    }
    result->exit_code = manifest->empty() ? ReadAll(*uri, *threads, *size, *flags)
                                          : ReadManifest(*uri, *manifest, *threads, *size, *flags);
  });
}

}  // namespace sluice::cli
