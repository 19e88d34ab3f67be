// sluice._native: the client library for Python (pybind11). A Client finds a running worker as
// the CLI does (the config, $SLUICE_HOME) and reads through it, with the same short-circuit
// and the same fallback to the under-store. Reads release the GIL and land in the caller's
// buffer (readinto) or in a bytes object made for them, with no copy in between. Errors
// become the OSError subclass that fits (FileNotFoundError, PermissionError, ...), naming the
// path. Fork-safe: a process forked from one holding a Client (a DataLoader worker) gets
// connections of its own on first use; the parent's are left alone.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "cli/context.h"
#include "common/units.h"
#include "prefetch.h"

namespace py = pybind11;

namespace sluice::python {
namespace {

// Raises the Python exception for `st` about `path`.
[[noreturn]] void Raise(const Status& st, const std::string& path) {
  PyObject* type = PyExc_OSError;
  int err = EIO;
  const std::string& message = st.message();
  switch (st.code()) {
    case StatusCode::kNotFound:
      type = PyExc_FileNotFoundError;
      err = ENOENT;
      break;
    case StatusCode::kPermissionDenied:
      type = PyExc_PermissionError;
      err = EACCES;
      break;
    case StatusCode::kTimeout:
      type = PyExc_TimeoutError;
      err = ETIMEDOUT;
      break;
    case StatusCode::kInvalidArgument:
      err = EINVAL;
      if (message.find("is a directory") != std::string::npos) {
        type = PyExc_IsADirectoryError;
        err = EISDIR;
      } else if (message.find("not a directory") != std::string::npos) {
        type = PyExc_NotADirectoryError;
        err = ENOTDIR;
      }
      break;
    case StatusCode::kNotSupported:
      type = PyExc_PermissionError;  // a read-only mount
      err = EROFS;
      break;
    case StatusCode::kUnavailable: err = ECONNREFUSED; break;
    case StatusCode::kResourceExhausted: err = ENOSPC; break;
    case StatusCode::kStale: err = ESTALE; break;
    case StatusCode::kNotEmpty: err = ENOTEMPTY; break;
    default: break;
  }
  // OSError(errno, ...) may construct a subclass (ECONNREFUSED: ConnectionRefusedError).
  py::object exc = py::reinterpret_borrow<py::object>(type)(err, message, path);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

// f(), run without the GIL (the client's calls block on the network and disks).
template <typename F>
auto WithoutGil(F f) {
  py::gil_scoped_release release;
  return f();
}

void Check(const Status& st, const std::string& path) {
  if (!st.ok()) Raise(st, path);
}

template <typename T>
T Check(Result<T> r, const std::string& path) {
  if (!r.ok()) Raise(r.status(), path);
  return std::move(r).value();
}

py::dict InfoDict(const client::FileInfo& info) {
  py::dict d;
  d["name"] = info.path;
  d["size"] = info.size;
  d["type"] = info.is_dir ? "directory" : "file";
  d["mtime"] = static_cast<double>(info.mtime_ns) / 1e9;
  d["version"] = info.version;
  return d;
}

// A bytes object of `n` bytes, filled by `fill` (without the GIL), which returns how many it
// wrote; the object is cut to that.
template <typename Fill>
py::bytes FreshBytes(size_t n, const std::string& path, Fill fill) {
  PyObject* raw = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n));
  if (!raw) throw py::error_already_set();
  py::bytes out = py::reinterpret_steal<py::bytes>(raw);
  size_t done = Check(WithoutGil([&] { return fill(PyBytes_AS_STRING(raw)); }), path);
  if (done != n) {
    PyObject* shrunk = out.release().ptr();
    if (_PyBytes_Resize(&shrunk, static_cast<Py_ssize_t>(done)) != 0) throw py::error_already_set();
    out = py::reinterpret_steal<py::bytes>(shrunk);
  }
  return out;
}

// A writable, contiguous buffer of the caller's (bytearray, memoryview, numpy array).
py::buffer_info WritableBuffer(const py::buffer& buffer) {
  py::buffer_info info = buffer.request(/*writable=*/true);
  if (info.ndim > 1) {
    ssize_t expect = info.itemsize;
    for (ssize_t d = info.ndim - 1; d >= 0; --d) {
      if (info.strides[d] != expect) throw py::value_error("readinto needs a C-contiguous buffer");
      expect *= info.shape[d];
    }
  } else if (info.ndim == 1 && info.strides[0] != info.itemsize) {
    throw py::value_error("readinto needs a contiguous buffer");
  }
  return info;
}

class File;
class Writer;

class Client {
 public:
  explicit Client(std::string config) : config_(std::move(config)) { connection_ = Connect(); }

  py::dict Stat(const std::string& path) {
    auto c = Current();
    return InfoDict(Check(WithoutGil([&] { return c->fs->Stat(path); }), path));
  }

  py::list List(const std::string& path) {
    auto c = Current();
    py::list out;
    for (const auto& e : Check(WithoutGil([&] { return c->fs->List(path); }), path)) out.append(InfoDict(e));
    return out;
  }

  // One page of a directory: (entries whose names sort after `start_after`, at most `limit`;
  // whether more follow).
  py::tuple ListPage(const std::string& path, const std::string& start_after, size_t limit) {
    auto c = Current();
    bool more = false;
    py::list out;
    auto page = Check(WithoutGil([&] { return c->fs->ListPage(path, start_after, limit, &more); }), path);
    for (const auto& e : page) out.append(InfoDict(e));
    return py::make_tuple(out, more);
  }

  // Writes, on mounts that take them.
  std::unique_ptr<Writer> OpenWrite(const std::string& path, bool truncate);
  void Remove(const std::string& path, bool directory) {
    auto c = Current();
    Check(WithoutGil([&] { return c->fs->Remove(path, directory); }), path);
  }
  void Mkdir(const std::string& path) {
    auto c = Current();
    Check(WithoutGil([&] { return c->fs->Mkdir(path); }), path);
  }
  void Rename(const std::string& from, const std::string& to) {
    auto c = Current();
    Check(WithoutGil([&] { return c->fs->Rename(from, to); }), from);
  }
  void Flush(const std::string& path) {
    auto c = Current();
    Check(WithoutGil([&] { return c->fs->Flush(path); }), path);
  }

  // [offset, offset + length) of `path`; length < 0: to the end.
  py::bytes Read(const std::string& path, uint64_t offset, int64_t length);
  size_t ReadInto(const std::string& path, uint64_t offset, const py::buffer& buffer);
  File Open(const std::string& path);
  // Items: paths, and for ranges their offsets and lengths (both empty, or one per path).
  std::unique_ptr<Prefetch> StartPrefetch(const std::vector<std::string>& paths, const std::vector<uint64_t>& offsets,
                                          const std::vector<int64_t>& lengths, uint64_t window_bytes, int concurrency) {
    if (offsets.size() != lengths.size() || (!offsets.empty() && offsets.size() != paths.size())) {
      throw py::value_error("prefetch: offsets and lengths must be given for every path, or for none");
    }
    std::vector<PrefetchItem> items(paths.size());
    for (size_t i = 0; i < paths.size(); ++i) {
      items[i].path = paths[i];
      if (!offsets.empty()) {
        items[i].offset = offsets[i];
        items[i].length = lengths[i];
      }
    }
    auto c = Current();
    py::gil_scoped_release release;
    // Fetched samples wait in the cache for their turn. Under the worker's LRU they are the
    // newest pages, so none is evicted before it is read while the window stays well inside
    // the cache: at most a quarter of it.
    if (auto report = c->fs->Report(); report.ok()) {
      uint64_t cache = 0;
      for (const auto& tier : report->tiers()) cache += tier.quota();
      if (cache > 0) window_bytes = std::min(window_bytes, std::max<uint64_t>(cache / 4, 1));
    }
    return std::make_unique<Prefetch>(std::move(c), std::move(items), window_bytes, concurrency);
  }
  const std::string& config() const { return config_; }

  // The connection of this process: a forked child makes its own (the parent's sockets are
  // the parent's) and leaves the inherited one untouched.
  // Called with the GIL held, which Connect releases: another thread may have connected
  // meanwhile, so the inherited connection is replaced only once.
  std::shared_ptr<Connection> Current() {
    if (connection_->pid != ::getpid()) {
      auto fresh = Connect();
      if (connection_->pid != ::getpid()) {
        new std::shared_ptr<Connection>(std::move(connection_));  // the parent's: never closed here
        connection_ = std::move(fresh);
      }
    }
    return connection_;
  }

 private:
  std::shared_ptr<Connection> Connect() {
    auto c = std::make_shared<Connection>();
    c->pid = ::getpid();
    c->context = std::make_unique<cli::Context>(Check(WithoutGil([&] { return cli::LoadContext(config_); }),
                                                      config_.empty() ? "(default config)" : config_));
    c->fs = Check(WithoutGil([&] { return cli::ConnectToWorker(*c->context); }), c->context->cluster_dir);
    return c;
  }

  const std::string config_;
  std::shared_ptr<Connection> connection_;
};

// A file open for writing (client::Writer); the bytes of a write are sent without the GIL.
class Writer {
 public:
  Writer(std::shared_ptr<Connection> connection, std::unique_ptr<client::Writer> writer)
      : connection_(std::move(connection)), writer_(std::move(writer)) {}
  uint64_t size() const { return writer_->size(); }
  const std::string& path() const { return writer_->path(); }
  void Write(uint64_t offset, const py::buffer& data) {
    py::buffer_info b = data.request();
    if (b.ndim != 1 || b.itemsize != 1) throw py::value_error("write: a bytes-like object of bytes is needed");
    std::string_view bytes(static_cast<const char*>(b.ptr), static_cast<size_t>(b.size));
    Check(WithoutGil([&] { return writer_->Write(offset, bytes); }), path());
  }
  void Truncate(uint64_t size) { Check(WithoutGil([&] { return writer_->Truncate(size); }), path()); }
  py::dict Commit(bool durable) { return InfoDict(Check(WithoutGil([&] { return writer_->Commit(durable); }), path())); }
  py::dict Close() { return InfoDict(Check(WithoutGil([&] { return writer_->Close(); }), path())); }

 private:
  std::shared_ptr<Connection> connection_;  // keeps the client the writer talks through
  std::unique_ptr<client::Writer> writer_;
};

std::unique_ptr<Writer> Client::OpenWrite(const std::string& path, bool truncate) {
  auto c = Current();
  auto writer = Check(WithoutGil([&] { return c->fs->OpenForWrite(path, truncate); }), path);
  return std::make_unique<Writer>(std::move(c), std::move(writer));
}

// An open file: reads at offsets, sharing the handle's read-ahead. Reopened by path in a
// forked child.
class File {
 public:
  File(Client* client, std::shared_ptr<Connection> connection, std::unique_ptr<client::File> file)
      : client_(client), path_(file->info().path), connection_(std::move(connection)), file_(std::move(file)) {}

  py::dict Info() const { return InfoDict(file_->info()); }
  uint64_t size() const { return file_->info().size; }
  const std::string& path() const { return path_; }

  py::bytes ReadAt(uint64_t offset, int64_t length) {
    client::File& f = Handle();
    const uint64_t size = f.info().size;
    const uint64_t left = offset >= size ? 0 : size - offset;
    const size_t n = static_cast<size_t>(length < 0 ? left : std::min<uint64_t>(left, static_cast<uint64_t>(length)));
    return FreshBytes(n, path(), [&](char* out) { return f.ReadAt(offset, n, out); });
  }

  size_t ReadIntoAt(uint64_t offset, const py::buffer& buffer) {
    client::File& f = Handle();
    py::buffer_info info = WritableBuffer(buffer);
    const size_t n = static_cast<size_t>(info.size * info.itemsize);
    return Check(WithoutGil([&] { return f.ReadAt(offset, n, static_cast<char*>(info.ptr)); }), path());
  }

 private:
  // As Client::Current: the GIL is released while reopening, so only the first thread to
  // finish replaces the inherited handle.
  client::File& Handle() {
    if (connection_->pid != ::getpid()) {
      auto connection = client_->Current();
      auto reopened = Check(WithoutGil([&] { return connection->fs->Open(path_); }), path_);
      if (connection_->pid != ::getpid()) {
        new std::unique_ptr<client::File>(std::move(file_));  // belongs to the parent's connection
        file_ = std::move(reopened);
        connection_ = std::move(connection);
      }
    }
    return *file_;
  }

  Client* client_;  // kept alive by the Python File's reference to its Client
  const std::string path_;
  std::shared_ptr<Connection> connection_;
  std::unique_ptr<client::File> file_;
};

File Client::Open(const std::string& path) {
  auto c = Current();
  return File(this, c, Check(WithoutGil([&] { return c->fs->Open(path); }), path));
}

// One READ request (the worker streams the bytes): a sample costs one round trip, where an
// open handle costs a stat and a locate before its first byte.
py::bytes Client::Read(const std::string& path, uint64_t offset, int64_t length) {
  auto c = Current();
  std::string data;
  const uint64_t want = length < 0 ? UINT64_MAX : static_cast<uint64_t>(length);
  Check(WithoutGil([&] {
          return c->fs->Read(path, offset, want, [&](std::string_view chunk) {
            data.append(chunk);
            return Status::Ok();
          });
        }),
        path);
  return py::bytes(data);
}

size_t Client::ReadInto(const std::string& path, uint64_t offset, const py::buffer& buffer) {
  File f = Open(path);
  return f.ReadIntoAt(offset, buffer);
}

}  // namespace
}  // namespace sluice::python

PYBIND11_MODULE(_native, m) {
  using namespace sluice::python;
  m.doc() = "sluice's client library: reads through a running sluice worker (see the sluice package)";
  m.def(
      "parse_size",
      [](const std::string& text) {
        auto bytes = sluice::ParseSize(text);
        if (!bytes.ok()) throw py::value_error(bytes.status().message());
        return *bytes;
      },
      py::arg("text"), "Bytes in a size as the config and CLI write it: 4096, \"256MiB\", \"1.5GiB\"");

  py::class_<Client>(m, "Client")
      .def(py::init<std::string>(), py::arg("config") = "",
           "Connects to a running worker found through the config file (else $SLUICE_CONFIG, else "
           "$SLUICE_HOME, default /var/lib/sluice)")
      .def("stat", &Client::Stat, py::arg("path"))
      .def("ls", &Client::List, py::arg("path"))
      .def("ls_page", &Client::ListPage, py::arg("path"), py::arg("start_after") = "",
           py::arg("limit") = sluice::client::kListPageEntries)
      .def("read", &Client::Read, py::arg("path"), py::arg("offset") = 0, py::arg("length") = -1,
           "Bytes [offset, offset + length) of a file; length -1: to the end")
      .def("readinto", &Client::ReadInto, py::arg("path"), py::arg("offset"), py::arg("buffer"),
           "Fills a writable buffer from offset on; returns the bytes read")
      .def("open", &Client::Open, py::arg("path"), py::keep_alive<0, 1>())
      .def("open_write", &Client::OpenWrite, py::arg("path"), py::arg("truncate") = true,
           "A writer of `path` (a mount that takes writes): write(offset, bytes), truncate, commit, close")
      .def("rm", &Client::Remove, py::arg("path"), py::arg("directory") = false)
      .def("mkdir", &Client::Mkdir, py::arg("path"))
      .def("rename", &Client::Rename, py::arg("path"), py::arg("to"))
      .def("flush", &Client::Flush, py::arg("path"))
      .def("prefetch", &Client::StartPrefetch, py::arg("paths"), py::arg("offsets"), py::arg("lengths"),
           py::arg("window_bytes"), py::arg("concurrency"), py::keep_alive<0, 1>())
      .def_property_readonly("config", &Client::config);

  py::class_<Writer>(m, "Writer")
      .def_property_readonly("size", &Writer::size)
      .def_property_readonly("path", &Writer::path)
      .def("write", &Writer::Write, py::arg("offset"), py::arg("data"))
      .def("truncate", &Writer::Truncate, py::arg("size"))
      .def("commit", &Writer::Commit, py::arg("durable") = true)
      .def("close", &Writer::Close);
  py::class_<File>(m, "File")
      .def("info", &File::Info)
      .def_property_readonly("size", &File::size)
      .def_property_readonly("path", &File::path)
      .def("read_at", &File::ReadAt, py::arg("offset"), py::arg("length") = -1)
      .def("readinto_at", &File::ReadIntoAt, py::arg("offset"), py::arg("buffer"));

  py::class_<Prefetch>(m, "Prefetch")
      .def("consumed", &Prefetch::Consumed, py::arg("position"),
           "The reader has taken the items before `position`: fetch up to the window beyond it")
      .def("cancel", &Prefetch::Cancel, py::call_guard<py::gil_scoped_release>())
      .def("wait", &Prefetch::Wait, py::arg("timeout_s"), py::call_guard<py::gil_scoped_release>(),
           "Waits until every item is fetched or skipped (or the timeout); true when done")
      .def("stats", [](Prefetch& p) {
        PrefetchStats s = p.Stats();
        py::dict d;
        d["items"] = s.items;
        d["fetched"] = s.fetched;
        d["fetched_bytes"] = s.fetched_bytes;
        d["skipped"] = s.skipped;
        d["failed"] = s.failed;
        d["ahead_bytes"] = s.ahead_bytes;
        d["max_ahead_bytes"] = s.max_ahead_bytes;
        d["waiting"] = s.waiting;
        d["window_bytes"] = p.window_bytes();
        return d;
      });
}
