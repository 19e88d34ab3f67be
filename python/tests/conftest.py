"""Fixtures of the Python client's tests: a throwaway Ceph RGW (tests/fixtures/radosgw.sh)
with a dataset in it, the fault proxy in front of it, and `sluice local` processes over it,
each started here and stopped by pid. Every port and directory is the test run's own.

Environment (set by ctest): SLUICE_BINARY, SLUICE_FIXTURES_DIR, SLUICE_FAULT_PROXY, and
PYTHONPATH with the built package. A sanitizer build preloads its runtimes into this
interpreter (LD_PRELOAD); the servers started here are started without it.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

BINARY = os.environ.get("SLUICE_BINARY", "sluice")
FIXTURES = os.environ.get("SLUICE_FIXTURES_DIR", os.path.join(os.path.dirname(__file__), "../../tests/fixtures"))
FAULT_PROXY = os.environ.get("SLUICE_FAULT_PROXY", "fault_proxy")


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when this interpreter dies, even by a crash that
    skips the fixtures' teardown."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def child_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "SLUICE_CONFIG")}
    env.update(extra)
    return env


def wait_for(condition, timeout, what):
    """Polls `condition` until it returns a true value (returned) or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dataset_files():
    """The test dataset: relative path -> bytes. Image-like samples in several directories,
    odd names, an empty file, a larger file and tar shards."""
    rng = random.Random(14)
    files = {}
    for d in range(4):
        for i in range(40):
            files[f"images/class{d}/img_{i:04d}.jpg"] = rng.randbytes(rng.randint(1_000, 60_000))
    files["odd/with space.bin"] = b"space"
    files["odd/ünïcødé.txt"] = "ünïcødé".encode()
    files["odd/empty"] = b""
    files["big/blob.bin"] = rng.randbytes(9 << 20)
    return files


def make_shards(root, count=3, per_shard=20):
    import io
    import tarfile
    rng = random.Random(7)
    records = {}
    for s in range(count):
        path = os.path.join(root, "shards", f"shard-{s:02d}.tar")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tarfile.open(path, "w") as tar:
            for r in range(per_shard):
                name = f"s{s:02d}_r{r:03d}.bin"
                data = rng.randbytes(rng.randint(100, 5000))
                records[name] = data
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return records


class Rgw:
    def __init__(self, root):
        self.dir = os.path.join(root, "rgw")
        for attempt in range(5):
            port = random.randint(20000, 29999)
            r = subprocess.run(["bash", os.path.join(FIXTURES, "radosgw.sh"), "start", self.dir, str(port), "datasets"],
                               env=child_env(WATCH_PID=str(os.getpid())), capture_output=True, text=True, timeout=300)
            if r.returncode == 0:
                break
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            raise RuntimeError("could not start RGW: " + r.stderr[-2000:])
        env = {}
        for line in r.stdout.splitlines():
            if line.startswith("export "):
                k, v = line[len("export "):].split("=", 1)
                env[k] = v
        self.endpoint = env["AWS_ENDPOINT_URL"]
        self.keys = {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}

    def stop(self):
        subprocess.run(["bash", os.path.join(FIXTURES, "radosgw.sh"), "stop", self.dir], env=child_env(),
                       capture_output=True, timeout=120)


class FaultProxy:
    """tests/fixtures/fault_proxy in front of a store; set(), stats(), log()."""

    def __init__(self, root, upstream):
        port_file = os.path.join(root, "proxy.port")
        self.process = subprocess.Popen([FAULT_PROXY, upstream, "--port-file", port_file], env=child_env(),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)
        port = wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 10, "the fault proxy")
        self.endpoint = f"http://127.0.0.1:{port}"

    def control(self, what):
        with urllib.request.urlopen(f"{self.endpoint}/__proxy__/{what}", timeout=10) as r:
            return r.read().decode()

    def set(self, **settings):
        self.control("set?" + "&".join(f"{k}={v}" for k, v in settings.items()))

    def log(self):
        return [line.split(" ", 1) for line in self.control("log").splitlines() if line]

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)


class Local:
    """`sluice local` over s3://datasets/train through `endpoint`, in a SLUICE_HOME of its own."""

    def __init__(self, root, name, endpoint, keys, *args, ufs="s3://datasets/train"):
        self.home = os.path.join(root, name)
        os.makedirs(self.home)
        self.log_path = os.path.join(self.home, "local.log")
        self.env = child_env(SLUICE_HOME=self.home, **keys)
        self.env.pop("AWS_ENDPOINT_URL", None)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [BINARY, "local", "--ufs", ufs, "-o", f"endpoint={endpoint}", "--cache-dir",
                 os.path.join(self.home, "cache"), "--cache-size", "1GiB", "--memory-size", "256MiB", "--rpc-port", "0",
                 "--http-port", "0", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent)
        wait_for(lambda: "serving" in open(self.log_path).read() or self.process.poll() is not None, 60,
                 "sluice local to serve")
        if self.process.poll() is not None:
            raise RuntimeError("sluice local failed: " + open(self.log_path).read())

    def client(self):
        import sluice
        config = os.path.join(self.home, "client.yaml")
        with open(config, "w") as f:
            f.write(f"cluster:\n  dir: {self.home}\n")
        return sluice.connect(config)

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)


@pytest.fixture(scope="session")
def scratch():
    root = tempfile.mkdtemp(prefix="sluice-pytest-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dataset(scratch):
    """(local copy root, {relative path: bytes}, {shard record name: bytes}) uploaded to
    s3://datasets/train of a fresh RGW; yields the Rgw too."""
    rgw = Rgw(scratch)
    try:
        root = os.path.join(scratch, "data")
        files = dataset_files()
        for rel, data in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        records = make_shards(root)
        for name in sorted(os.listdir(os.path.join(root, "shards"))):
            rel = f"shards/{name}"
            files[rel] = open(os.path.join(root, rel), "rb").read()
        env = child_env(**rgw.keys)
        env.pop("AWS_ENDPOINT_URL", None)
        subprocess.run([BINARY, "ufs", "cp", "-R", root, "s3://datasets/train", "-o", f"endpoint={rgw.endpoint}"],
                       env=env, check=True, capture_output=True, timeout=300)
        yield {"rgw": rgw, "root": root, "files": files, "records": records}
    finally:
        rgw.stop()


@pytest.fixture(scope="session")
def local(scratch, dataset):
    """One `sluice local` over the dataset, shared by the read-only tests."""
    node = Local(scratch, "local", dataset["rgw"].endpoint, dataset["rgw"].keys)
    node.client()  # writes its client.yaml: the config of fsspec's default sluice://
    os.environ["SLUICE_CONFIG"] = os.path.join(node.home, "client.yaml")
    yield node
    node.stop()


@pytest.fixture(scope="session")
def client(local):
    return local.client()
