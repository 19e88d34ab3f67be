"""sluice: read training data through a sluice cache from Python.

    import sluice
    client = sluice.connect()                 # the worker of `sluice local` ($SLUICE_HOME)
    client.ls("/images")                      # [{'name': '/images/a.jpg', 'size': ..., 'type': 'file', ...}]
    data = client.read("/images/a.jpg")       # bytes; client.readinto(path, offset, buffer)

    import fsspec
    with fsspec.open("sluice:///images/a.jpg", "rb") as f: ...

PyTorch helpers are in sluice.torch (FileDataset, ShardDataset, PrefetchSampler).
"""
from . import _native

__all__ = ["Client", "Prefetch", "connect", "parse_size"]

def parse_size(size):
    """Bytes in `size`: an int, or a string as sluice's config and CLI take it ("256MiB", "1.5GiB")."""
    if isinstance(size, int):
        if size < 0:
            raise ValueError(f"a size cannot be negative: {size}")
        return size
    return _native.parse_size(str(size))


class Prefetch:
    """Fetches items into the cache ahead of a reader, in the given order (see Client.prefetch)."""

    def __init__(self, native):
        self._native = native

    def consumed(self, position):
        """The reader has taken the first `position` items: the window moves past them."""
        self._native.consumed(position)

    def cancel(self):
        """Stops fetching what has not started (a new epoch's order replaces this one)."""
        self._native.cancel()

    def wait(self, timeout=60.0):
        """Waits until every item was fetched, skipped or failed; True if so before `timeout` s."""
        return self._native.wait(float(timeout))

    def stats(self):
        """Counts: items, fetched, fetched_bytes, skipped, failed, ahead_bytes (fetched, not yet
        consumed), max_ahead_bytes, waiting (fetchers held by a full window),
        window_bytes (the window in effect)."""
        return self._native.stats()


class Client:
    """A connection to a running sluice worker, found as the `sluice` CLI finds it: `config`
    (a YAML file), else $SLUICE_CONFIG, else the cluster directory $SLUICE_HOME (default
    /var/lib/sluice). Safe to use after fork() (a DataLoader worker connects on first use) and
    picklable (a spawned worker reconnects)."""

    def __init__(self, config=None):
        self._config = config or ""
        self._native = _native.Client(self._config)

    def __reduce__(self):
        return (Client, (self._config or None,))

    def __repr__(self):
        return f"sluice.Client(config={self._config!r})" if self._config else "sluice.Client()"

    def stat(self, path):
        """{'name', 'size', 'type' ('file' or 'directory'), 'mtime', 'version'} of `path`."""
        return self._native.stat(_path(path))

    def ls(self, path):
        """The entries directly below directory `path`, sorted, as stat() describes them."""
        return self._native.ls(_path(path))

    def iter_ls(self, path, page=5000):
        """ls(), streamed: the entries come `page` at a time from the worker (which pages
        through its cached listing by name), so a directory of millions is never held whole."""
        path, cursor = _path(path), ""
        while True:
            entries, more = self._native.ls_page(path, cursor, page)
            yield from entries
            if not more or not entries:
                return
            cursor = entries[-1]["name"].rsplit("/", 1)[-1]

    def iter_files(self, path):
        """Every file below `path` (or `path` itself if it is a file), in sorted order, streamed."""
        top = self.stat(path)
        if top["type"] == "file":
            yield top
            return
        for entry in self.iter_ls(path):
            if entry["type"] == "directory":
                yield from self.iter_files(entry["name"])
            else:
                yield entry

    def read(self, path, offset=0, length=-1):
        """Bytes [offset, offset + length) of a file (length -1: to its end)."""
        return self._native.read(_path(path), offset, length)

    def readinto(self, path, offset, buffer):
        """Fills a writable buffer (bytearray, memoryview, numpy array) from `offset`; returns
        how many bytes were read (fewer at the end of the file)."""
        return self._native.readinto(_path(path), offset, buffer)

    def open(self, path):
        """An open file (read_at, readinto_at, size) whose reads share one read-ahead."""
        return self._native.open(_path(path))

    def open_write(self, path, truncate=True):
        """A writer of `path` on a mount that takes writes: write(offset, data), truncate(size),
        commit(durable=True), close(). The file is in the store (or, write-back, in the
        worker's journal) when close() returns."""
        return self._native.open_write(_path(path), truncate)

    def put(self, path, data):
        """Writes `data` (bytes) as the whole of `path`."""
        w = self.open_write(path)
        w.write(0, data)
        return w.close()

    def rm(self, path, directory=False):
        """Removes a file, or with `directory` an empty directory."""
        self._native.rm(_path(path), directory)

    def mkdir(self, path):
        self._native.mkdir(_path(path))

    def rename(self, path, to):
        self._native.rename(_path(path), _path(to))

    def flush(self, path="/"):
        """Waits until what was written below `path` on write-back mounts is in the store."""
        self._native.flush(_path(path))

    def walk_files(self, path):
        """Every file below `path` (or `path` itself if it is a file), in sorted order."""
        return list(self.iter_files(path))

    def prefetch(self, items, window="256MiB", concurrency=32):
        """Fetches `items` into the cache in that order, at most `window` bytes beyond the
        reader's position (Prefetch.consumed), `concurrency` at a time. Items are paths, or
        (path, offset, length) ranges. The window is capped at a quarter of the worker's cache,
        so that no fetched item is evicted before the reader gets to it."""
        paths, offsets, lengths = [], [], []
        ranges = None
        for item in items:
            if isinstance(item, (tuple, list)):
                if ranges is False:
                    raise ValueError("prefetch: give paths or (path, offset, length) ranges, not both")
                ranges = True
                path, offset, length = item
                paths.append(_path(path))
                offsets.append(int(offset))
                lengths.append(int(length))
            else:
                if ranges:
                    raise ValueError("prefetch: give paths or (path, offset, length) ranges, not both")
                ranges = False
                paths.append(_path(item))
        return Prefetch(self._native.prefetch(paths, offsets, lengths, parse_size(window), int(concurrency)))


def connect(config=None):
    """A Client of the running worker (see Client)."""
    return Client(config)


def _path(path):
    """A namespace path from "sluice:///a/b", "/a/b" or "a/b"."""
    path = str(path)
    if path.startswith("sluice://"):
        path = path[len("sluice://"):]
    if not path.startswith("/"):
        path = "/" + path
    return path


try:  # `sluice://` for fsspec, when fsspec is there
    import fsspec as _fsspec
    _fsspec.register_implementation("sluice", "sluice.filesystem.SluiceFileSystem", clobber=True)
except ImportError:
    pass
