"""sluice:// through fsspec, and the Client under it, against `sluice local` over RGW."""
import errno
import os
import subprocess

import fsspec
import numpy as np
import pytest

import sluice
from sluice.filesystem import SluiceFileSystem


@pytest.fixture(scope="module")
def fs(client):
    return SluiceFileSystem(client=client)


def test_listing_info_and_existence(fs, dataset):
    files = dataset["files"]
    top = fs.ls("/", detail=False)
    assert top == ["/big", "/images", "/odd", "/shards"]
    detail = {e["name"]: e for e in fs.ls("sluice:///images/class1")}
    want = {f"/{k}": len(v) for k, v in files.items() if k.startswith("images/class1/")}
    assert {k: e["size"] for k, e in detail.items()} == want
    assert all(e["type"] == "file" and e["mtime"] > 0 and e["version"] for e in detail.values())
    assert fs.info("/big/blob.bin")["size"] == 9 << 20
    assert fs.info("/images")["type"] == "directory"
    assert fs.exists("/odd/with space.bin") and not fs.exists("/odd/nope")
    assert fs.isdir("/odd") and not fs.isdir("/odd/empty") and fs.isfile("/odd/empty")
    assert fs.ls("/odd/empty", detail=False) == ["/odd/empty"]  # fsspec: ls of a file is the file
    assert sorted(fs.find("/odd")) == ["/odd/empty", "/odd/with space.bin", "/odd/ünïcødé.txt"]
    assert len(fs.find("/")) == len(files)
    assert len(fs.glob("/images/*/img_000[0-4].jpg")) == 20
    assert fs.du("/images") == sum(len(v) for k, v in files.items() if k.startswith("images/"))


def test_listings_stream_a_page_at_a_time(fs, client, dataset):
    files = dataset["files"]
    want = sorted(f"/{k}" for k in files if k.startswith("images/class1/"))
    assert len(want) > 14
    for page in (1, 7, len(want) - 1, len(want), len(want) + 1):
        assert [e["name"] for e in client.iter_ls("/images/class1", page=page)] == want, page
    entries, more = client._native.ls_page("/images/class1", "", 7)
    assert len(entries) == 7 and more
    entries, more = client._native.ls_page("/images/class1", want[-2].rsplit("/", 1)[1], 7)
    assert [e["name"] for e in entries] == want[-1:] and not more
    assert [e["name"] for e in client.iter_files("/odd")] == ["/odd/empty", "/odd/with space.bin", "/odd/ünïcødé.txt"]
    assert [e["name"] for e in fs.iter_find("/")] == sorted(f"/{k}" for k in files)
    assert fs.find("/images", maxdepth=1, withdirs=True) == ["/images"] + sorted(
        {"/" + "/".join(k.split("/")[:2]) for k in files if k.startswith("images/")})
    assert fs.find("/no/such") == []


def test_open_seek_read_readinto(fs, dataset):
    want = dataset["files"]["big/blob.bin"]
    with fsspec.open("sluice:///big/blob.bin", "rb") as f:
        assert f.read(10) == want[:10]
        f.seek(5 << 20)
        assert f.read(100) == want[(5 << 20):(5 << 20) + 100]
        buf = bytearray(1 << 20)
        assert f.readinto(buf) == 1 << 20 and bytes(buf) == want[(5 << 20) + 100:(6 << 20) + 100]
        f.seek(-10, 2)
        assert f.read() == want[-10:]
        assert f.read() == b""
    with fs.open("/odd/ünïcødé.txt") as f:
        assert f.read().decode() == "ünïcødé"
    arr = np.zeros(1000, dtype=np.uint8)
    assert fs.client.readinto("/big/blob.bin", 7, arr) == 1000 and arr.tobytes() == want[7:1007]
    assert fs.client.read("/odd/empty") == b""


def test_cat_file_ranges_cat_and_get(fs, dataset, tmp_path):
    files = dataset["files"]
    blob = files["big/blob.bin"]
    assert fs.cat_file("/big/blob.bin", start=100, end=200) == blob[100:200]
    assert fs.cat_file("/big/blob.bin", start=-50) == blob[-50:]
    assert fs.cat_file("/big/blob.bin", start=10, end=-10) == blob[10:-10]
    assert fs.cat_file("/big/blob.bin", start=(9 << 20) + 5) == b""
    got = fs.cat("/images/class2/*")
    assert got == {f"/{k}": v for k, v in files.items() if k.startswith("images/class2/")}
    fs.get("/odd", str(tmp_path / "odd"), recursive=True)
    for name in ("with space.bin", "ünïcødé.txt", "empty"):
        assert (tmp_path / "odd" / name).read_bytes() == files[f"odd/{name}"]
    fs.get_file("/big/blob.bin", str(tmp_path / "blob"))
    assert (tmp_path / "blob").read_bytes() == blob


def test_errors_name_the_path(fs, client):
    with pytest.raises(FileNotFoundError) as e:
        fs.cat_file("/images/class0/missing.jpg")
    assert e.value.errno == errno.ENOENT and e.value.filename == "/images/class0/missing.jpg"
    assert "missing.jpg" in str(e.value)
    with pytest.raises(FileNotFoundError):
        fs.ls("/no/such/dir")
    with pytest.raises(IsADirectoryError):
        client.read("/images")
    with pytest.raises(PermissionError) as e:
        fs.open("/odd/new.txt", "wb")
    assert "read-only" in str(e.value)
    with pytest.raises(ValueError):
        client.readinto("/big/blob.bin", 0, np.zeros((4, 4), dtype=np.uint8)[:, ::2])
    with pytest.raises(ValueError):
        sluice.parse_size("12 parsecs")
    assert sluice.parse_size("1.5KiB") == 1536 and sluice.parse_size(7) == 7


def test_no_worker_is_a_clear_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"cluster:\n  dir: {tmp_path}/empty\n")
    with pytest.raises(OSError) as e:
        sluice.connect(str(config))
    assert "no running sluice worker" in str(e.value) and "sluice local" in str(e.value)


def test_fsspec_finds_the_protocol(local):
    fs = fsspec.filesystem("sluice", config=os.path.join(local.home, "client.yaml"))
    assert isinstance(fs, SluiceFileSystem)
    assert fs.ls("/", detail=False)


def test_threads_of_a_forked_child_connect_once_and_read(client, dataset):
    """After fork, the child's first calls come from 8 threads at once: each read is right and
    the parent's client still works afterwards."""
    import threading
    names = sorted(k for k in dataset["files"] if k.startswith("images/class2/"))[:8]
    handle = client.open("/" + names[0])
    pid = os.fork()
    if pid == 0:
        ok = []
        def read(name):
            ok.append(client.read("/" + name) == dataset["files"][name])
        threads = [threading.Thread(target=read, args=(n,)) for n in names]
        threads += [threading.Thread(target=lambda: ok.append(handle.read_at(0) == dataset["files"][names[0]]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        os._exit(0 if len(ok) == 9 and all(ok) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert client.read("/" + names[1]) == dataset["files"][names[1]]
    assert handle.read_at(0) == dataset["files"][names[0]]


@pytest.mark.parametrize("mode", ["through", "async"])
def test_writes_through_fsspec_and_the_client(scratch, dataset, mode):
    """A stage that writes with fsspec and the client; the next stage reads it back."""
    import conftest
    node = conftest.Local(scratch, f"writable-{mode}", dataset["rgw"].endpoint, dataset["rgw"].keys, "-o",
                 f"write_mode={mode}", ufs=f"s3://datasets/written-{mode}")
    try:
        client = node.client()
        fs = SluiceFileSystem(client=client)
        payload = os.urandom((6 << 20) + 7)
        with fs.open("/stage1/features.bin", "wb") as f:
            for at in range(0, len(payload), 1 << 20):
                f.write(payload[at:at + (1 << 20)])
        assert fs.cat_file("/stage1/features.bin") == payload
        assert fs.info("/stage1/features.bin")["size"] == len(payload)
        fs.pipe_file("/stage1/small.txt", b"rows")
        assert sorted(fs.ls("/stage1", detail=False)) == ["/stage1/features.bin", "/stage1/small.txt"]
        fs.mv("/stage1/small.txt", "/stage1/renamed.txt")
        assert fs.cat_file("/stage1/renamed.txt") == b"rows"
        fs.rm_file("/stage1/renamed.txt")
        assert not fs.exists("/stage1/renamed.txt")
        client.put("/stage1/direct.bin", b"x" * 1000)
        client.flush("/")
        store = subprocess.run([conftest.BINARY, "ufs", "cat", f"s3://datasets/written-{mode}/stage1/features.bin",
                                "-o", f"endpoint={dataset['rgw'].endpoint}"], env=node.env, capture_output=True,
                               check=True, timeout=60).stdout
        assert store == payload
        with pytest.raises(RuntimeError):  # a failed write leaves nothing behind
            with fs.open("/stage1/partial.bin", "wb") as f:
                f.write(b"half")
                raise RuntimeError("the stage failed")
        assert not fs.exists("/stage1/partial.bin")
        with pytest.raises(OSError) as e:
            client.rm("/stage1", directory=True)
        assert e.value.errno == errno.ENOTEMPTY
    finally:
        node.stop()
