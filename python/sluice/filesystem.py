"""fsspec for sluice: `sluice://PATH` names PATH in a running worker's namespace.

    import fsspec
    fs = fsspec.filesystem("sluice")              # or SluiceFileSystem(config="cluster.yaml")
    fs.ls("/images", detail=False)
    with fs.open("/images/a.jpg") as f: f.read()
    fs.cat_file("/shards/s0.tar", start=0, end=512)
    fs.cat(["/images/a.jpg", "/images/b.jpg"])    # in parallel

On a mount that takes writes (`--write-mode through|async`), `fs.open(path, "wb")`,
`fs.pipe_file`, `fs.put_file`, `fs.rm`, `fs.mkdir` and `fs.mv` write through the worker;
elsewhere they raise PermissionError (EROFS).
"""
import concurrent.futures
import contextlib
import errno
import io
import os

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from . import Client, _path


class SluiceFileSystem(AbstractFileSystem):
    protocol = "sluice"
    root_marker = "/"

    def __init__(self, config=None, client=None, parallel=16, **kwargs):
        super().__init__(**kwargs)
        self.client = client or Client(config)
        self.parallel = parallel

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = _path(path)
        return path.rstrip("/") or "/"

    def unstrip_protocol(self, name):
        return "sluice://" + name

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path)
        try:
            entries = self.client.ls(path)
        except (FileNotFoundError, NotADirectoryError):
            try:
                entries = [self.client.stat(path)]  # fsspec: ls of a file is that file
            except FileNotFoundError:
                entries = None
            if entries is None or entries[0]["type"] != "file":
                raise
        return entries if detail else [e["name"] for e in entries]

    def iter_find(self, path, maxdepth=None, withdirs=False):
        """find(), streamed: the entries (info dicts) below `path`, depth first in name order,
        each directory read from the worker a page at a time."""
        path = self._strip_protocol(path)
        top = self.info(path)
        if top["type"] == "file":
            yield top
            return
        if withdirs:
            yield top

        def walk(directory, depth):
            for entry in self.client.iter_ls(directory):
                if entry["type"] != "directory":
                    yield entry
                    continue
                if withdirs:
                    yield entry
                if maxdepth is None or depth < maxdepth:
                    yield from walk(entry["name"], depth + 1)

        yield from walk(path, 1)

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        try:
            entries = {e["name"]: e for e in self.iter_find(path, maxdepth, withdirs)}
        except FileNotFoundError:
            entries = {}
        return entries if detail else sorted(entries)

    def info(self, path, **kwargs):
        return self.client.stat(self._strip_protocol(path))

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kwargs):
        if mode == "wb":
            return SluiceWriteFile(self, self._strip_protocol(path))
        if mode != "rb":
            raise PermissionError(errno.EROFS, f"sluice:// opens files for reading (rb) or writing (wb), "
                                               f"not {mode!r}", path)
        return SluiceFile(self, self._strip_protocol(path), mode, block_size=block_size or "default",
                          cache_type="none", **kwargs)

    def pipe_file(self, path, value, **kwargs):
        self.client.put(self._strip_protocol(path), value)
        self.invalidate_cache(self._parent(path))

    def put_file(self, lpath, rpath, callback=None, **kwargs):
        if os.path.isdir(lpath):
            return self.makedirs(rpath, exist_ok=True)
        with open(lpath, "rb") as src, self.open(rpath, "wb") as dst:
            while chunk := src.read(8 << 20):
                dst.write(chunk)

    def rm_file(self, path):
        self.client.rm(self._strip_protocol(path))
        self.invalidate_cache(self._parent(path))

    def _rm(self, path):
        path = self._strip_protocol(path)
        self.client.rm(path, directory=self.isdir(path))
        self.invalidate_cache(self._parent(path))

    def rmdir(self, path):
        self.client.rm(self._strip_protocol(path), directory=True)
        self.invalidate_cache(self._parent(path))

    def mkdir(self, path, create_parents=True, **kwargs):
        path = self._strip_protocol(path)
        if create_parents and not self.exists(self._parent(path)):
            self.mkdir(self._parent(path), create_parents=True)
        self.client.mkdir(path)
        self.invalidate_cache(self._parent(path))

    def makedirs(self, path, exist_ok=False):
        if self.exists(path):
            if not exist_ok:
                raise FileExistsError(errno.EEXIST, "already exists", path)
            return
        self.mkdir(path, create_parents=True)

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        self.client.rename(self._strip_protocol(path1), self._strip_protocol(path2))
        self.invalidate_cache(self._parent(path1))
        self.invalidate_cache(self._parent(path2))

    def cat_file(self, path, start=None, end=None, **kwargs):
        path = self._strip_protocol(path)
        if start is None and end is None:
            return self.client.read(path)
        size = self.client.stat(path)["size"] if (start or 0) < 0 or (end is not None and end < 0) else None
        start = start or 0
        if start < 0:
            start = max(0, size + start)
        if end is None:
            return self.client.read(path, start)
        if end < 0:
            end = max(0, size + end)
        return self.client.read(path, start, max(0, end - start))

    def cat(self, path, recursive=False, on_error="raise", **kwargs):
        """Many files at once, `parallel` at a time (reads release the GIL)."""
        paths = self.expand_path(path, recursive=recursive)
        if len(paths) == 1 and not isinstance(path, list) and not self._contains_glob(path) and not recursive:
            return self.cat_file(paths[0], **kwargs)
        out = {}
        with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
            futures = {p: pool.submit(self.cat_file, p, **kwargs) for p in paths if not self.isdir(p)}
            for p, f in futures.items():
                try:
                    out[p] = f.result()
                except Exception as e:  # noqa: BLE001 - on_error decides
                    if on_error == "raise":
                        raise
                    if on_error == "return":
                        out[p] = e
        return out

    def get_file(self, rpath, lpath, callback=None, outfile=None, **kwargs):
        rpath = self._strip_protocol(rpath)
        if self.isdir(rpath):
            os.makedirs(lpath, exist_ok=True)
            return
        f = self.client.open(rpath)
        buf = bytearray(8 << 20)
        view = memoryview(buf)
        with open(lpath, "wb") if outfile is None else contextlib.nullcontext(outfile) as out:
            offset = 0
            while offset < f.size:
                n = f.readinto_at(offset, view)
                if n == 0:
                    break
                out.write(view[:n])
                offset += n

    @staticmethod
    def _contains_glob(path):
        return isinstance(path, str) and any(c in path for c in "*?[")


class SluiceFile(AbstractBufferedFile):
    """A file of the namespace, read through the worker's cache with the client's read-ahead."""

    def __init__(self, fs, path, mode="rb", **kwargs):
        self._handle = fs.client.open(path)
        super().__init__(fs, path, mode, size=self._handle.size, **kwargs)

    def _fetch_range(self, start, end):
        return self._handle.read_at(start, max(0, end - start))

    def read(self, length=-1):
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if length is None or length < 0:
            length = self.size - self.loc
        data = self._handle.read_at(self.loc, max(0, length))
        self.loc += len(data)
        return data

    def readinto(self, b):
        if self.closed:
            raise ValueError("I/O operation on closed file")
        n = self._handle.readinto_at(self.loc, b)
        self.loc += n
        return n


class SluiceWriteFile(io.RawIOBase):
    """A file being written through the worker: sequential writes go out as they come (the
    worker stages them and uploads complete parts meanwhile); close() returns once the file is
    in the store (write-back mounts: in the worker's journal)."""

    def __init__(self, fs, path):
        super().__init__()
        self.fs, self.path = fs, path
        self._writer = fs.client.open_write(path)
        self._offset = 0

    def writable(self):
        return True

    def write(self, data):
        if self.closed:
            raise ValueError("I/O operation on closed file")
        data = memoryview(data).cast("B")
        self._writer.write(self._offset, data)
        self._offset += len(data)
        return len(data)

    def tell(self):
        return self._offset

    def flush(self):
        pass  # each write is with the worker already

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self.closed:
            self._writer = None  # dropped: nothing of a failed write becomes the file
            super().close()
            return False
        return super().__exit__(exc_type, exc, tb)

    def close(self):
        if not self.closed:
            try:
                if self._writer is not None:
                    self._writer.close()
                self.fs.invalidate_cache(self.fs._parent(self.path))
            finally:
                super().close()
