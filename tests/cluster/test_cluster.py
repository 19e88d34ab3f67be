"""Multi-host tests of the distributed cache: four workers, each in a network namespace of its
own (scripts/cluster.sh: veth pairs on a bridge), registered in a real etcd, over a real Ceph
RGW reached through the fault proxy on the bridge (it counts the store's requests), read
through a real FUSE mount on the host and through the CLI inside the workers' namespaces.

Every directory, namespace, port and process is this run's own, stopped by pid.
"""
import hashlib
import importlib.util
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("pyfixtures", os.path.join(HERE, "../../python/tests/conftest.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

BINARY = fx.BINARY
SCRIPTS = os.environ.get("SLUICE_SCRIPTS_DIR", os.path.join(HERE, "../../scripts"))
WORKERS = 4
WORKER_MEMORY = 8 << 20
WORKER_DISK = 64 << 20
CACHE_PER_WORKER = WORKER_DISK  # the memory tier holds pages of the disk tier
EPOCH_FILES = 2000  # 100 KiB each: 3x one worker's cache
EPOCH_SIZE = 100 << 10
BIG_SIZE = 512 << 20
MANY_FILES = 10000


class Cluster:
    def __init__(self, root):
        self.dir = os.path.join(root, "cluster")
        self.env = fx.child_env(SLUICE_CLUSTER_DIR=self.dir, SLUICE_BINARY=BINARY, WORKER_MEMORY=str(WORKER_MEMORY),
                                WORKER_DISK=str(WORKER_DISK), LEASE_TTL="2s", WATCH_PID=str(os.getpid()))
        out = self.sh("up", str(WORKERS))
        self.config = out.strip().split("=", 1)[1]
        status = self.sh("status")
        self.bridge_ip = status.split("http://", 1)[1].split(":", 1)[0]
        self.ips = {w: f"{self.bridge_ip.rsplit('.', 1)[0]}.{10 + w}" for w in range(1, WORKERS + 1)}
        self.netns = {w: line.split("netns ", 1)[1].split(",", 1)[0]
                      for w, line in zip(range(1, WORKERS + 1), status.splitlines()[1:])}

    def sh(self, *args, check=True):
        r = subprocess.run(["bash", os.path.join(SCRIPTS, "cluster.sh"), *args], env=self.env, capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)}: {r.stderr}")
        return r.stdout

    def cli(self, *args, check=True, netns=None, config=None, timeout=300):
        argv = [BINARY, *args]
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        env = fx.child_env(SLUICE_CONFIG=config or self.config)
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"sluice {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def report(self, w):
        """Worker w's /api/v1/report, or None when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://{self.ips[w]}:29991/api/v1/report", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def members(self):
        """Worker ids `sluice report` lists as up."""
        table = self.cli("report").stdout.split("\n\n", 1)[0].splitlines()[2:]
        return sorted(line.split()[0] for line in table if not line.startswith("    ") and line.split()[3] == "up")

    def wait_members(self, count, timeout=30):
        fx.wait_for(lambda: len(self.members()) == count, timeout, f"{count} workers up")

    def store_reads(self):
        """Bytes every live worker read from the under-store, all mounts."""
        total = 0
        for w in self.ips:
            r = self.report(w)
            for m in (r or {}).get("mounts", []):
                total += int(m.get("ufsBytesRead", 0))
        return total


class BridgeProxy(fx.FaultProxy):
    """The fault proxy listening on the bridge, where the workers' namespaces reach it."""

    def __init__(self, root, upstream, host):
        port_file = os.path.join(root, "bridge-proxy.port")
        self.process = subprocess.Popen([fx.FAULT_PROXY, upstream, "--port-file", port_file, "--port", "0",
                                         "--host", host], env=fx.child_env(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=fx.die_with_parent)
        port = fx.wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 10, "the proxy")
        self.endpoint = f"http://{host}:{port}"

    def stats(self):
        return {k: int(v) for k, v in (line.split() for line in self.control("stats").splitlines() if line)}


class Fuse:
    def __init__(self, root, config):
        self.mnt = os.path.join(root, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        self.log = open(os.path.join(root, "fuse.log"), "w")
        self.process = subprocess.Popen([BINARY, "fuse", self.mnt], env=fx.child_env(SLUICE_CONFIG=config),
                                        stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=fx.die_with_parent)
        fx.wait_for(lambda: os.path.ismount(self.mnt) or self.process.poll() is not None, 30, "the FUSE mount")
        assert self.process.poll() is None, open(self.log.name).read()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


@pytest.fixture(scope="module")
def env():
    root = tempfile.mkdtemp(prefix="sluice-cluster-")
    rgw = cluster = proxy = fuse = None
    try:
        rgw = fx.Rgw(root)
        cluster = Cluster(root)
        proxy = BridgeProxy(root, rgw.endpoint, cluster.bridge_ip)
        rng = random.Random(13)
        data = os.path.join(root, "data")
        epoch = {}
        os.makedirs(os.path.join(data, "epoch"))
        for i in range(EPOCH_FILES):
            name = f"epoch/s{i:05d}.bin"
            epoch[name] = rng.randbytes(EPOCH_SIZE)
            with open(os.path.join(data, name), "wb") as f:
                f.write(epoch[name])
        os.makedirs(os.path.join(data, "big"))
        with open(os.path.join(data, "big/shard.bin"), "wb") as f:
            for _ in range(BIG_SIZE >> 20):
                f.write(rng.randbytes(1 << 20))
        keys = {k: v for k, v in rgw.keys.items()}
        upload = fx.child_env(**keys)
        upload.pop("AWS_ENDPOINT_URL", None)
        subprocess.run([BINARY, "ufs", "cp", "-R", data, "s3://datasets/set", "-o", f"endpoint={rgw.endpoint}"],
                       env=upload, check=True, capture_output=True, timeout=600)
        # 10,000 small files on a file:// mount: the namespaces share this file system.
        many = os.path.join(root, "many")
        for d in range(10):
            os.makedirs(os.path.join(many, f"d{d}"))
            for i in range(MANY_FILES // 10):
                with open(os.path.join(many, f"d{d}", f"f{i:04d}"), "wb") as f:
                    f.write(rng.randbytes(4096))
        creds = [f"--option=access_key={keys['AWS_ACCESS_KEY_ID']}", f"--option=secret_key={keys['AWS_SECRET_ACCESS_KEY']}",
                 f"--option=endpoint={proxy.endpoint}"]
        cluster.cli("mount", "add", "/r1", "s3://datasets/set", *creds)
        cluster.cli("mount", "add", "/r2", "s3://datasets/set", "--replicas", "2", *creds)
        cluster.cli("mount", "add", "/many", f"file://{many}", "--replicas", "2")
        os.makedirs(os.path.join(root, "out"))
        cluster.cli("mount", "add", "/out", f"file://{os.path.join(root, 'out')}", "--write-mode", "through",
                    "--replicas", "2")
        fuse = Fuse(root, cluster.config)
        yield {"root": root, "cluster": cluster, "proxy": proxy, "fuse": fuse, "epoch": epoch,
               "big": os.path.join(data, "big/shard.bin"), "many": many}
    finally:
        if fuse:
            fuse.stop()
        if proxy:
            proxy.stop()
        if cluster:
            cluster.sh("down", check=False)
        if rgw:
            rgw.stop()
        subprocess.run(["rm", "-rf", root])


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def test_a_wrong_cluster_secret_is_refused(env):
    c = env["cluster"]
    bad = os.path.join(env["root"], "bad.yaml")
    with open(bad, "w") as f:
        f.write(f"cluster:\n  store: etcd://{c.bridge_ip}:2379\n  secret: not-the-secret\n")
    r = c.cli("fs", "ls", "/r1", config=bad, check=False)
    assert r.returncode == 1, r.stdout
    assert "wrong cluster secret" in r.stderr


def test_report_and_metrics_name_every_worker(env):
    c = env["cluster"]
    assert c.members() == sorted(f"{ip}:29990" for ip in c.ips.values())
    with urllib.request.urlopen(f"http://{c.ips[1]}:29991/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert f'sluice_cache_bytes{{worker="{c.ips[1]}:29990",tier="memory"}}' in metrics
    samples = [line for line in metrics.splitlines() if line and not line.startswith("#")]
    assert all(f'worker="{c.ips[1]}:29990"' in line for line in samples)


def test_dataset_three_times_one_workers_cache_is_held_by_the_cluster(env):
    c, proxy, mnt = env["cluster"], env["proxy"], env["fuse"].mnt
    assert EPOCH_FILES * EPOCH_SIZE >= 3 * CACHE_PER_WORKER
    proxy.control("reset-stats")
    c.cli("load", "/r1/epoch", "--wait")
    # One GET per file, no HEAD of one: the listing's size and ETag travel with each piece.
    log = proxy.log()
    gets = [target for method, target in log if method == "GET" and "/epoch/s" in target]
    assert len(gets) == len(set(gets)) == EPOCH_FILES
    assert not [target for method, target in log if method == "HEAD" and "/epoch/s" in target]
    # Every worker holds a share, none all of it.
    shares = [sum(int(t.get("bytes", 0)) for t in c.report(w).get("tiers", []) if t["name"] != "memory")
              for w in c.ips]
    assert all(s < EPOCH_FILES * EPOCH_SIZE / 2 for s in shares), shares
    # A warm epoch, by name, in shuffled order, from the host: nothing from the store.
    names = sorted(env["epoch"])
    random.Random(5).shuffle(names)
    for name in names:
        with open(os.path.join(mnt, "r1", name), "rb") as f:
            assert f.read() == env["epoch"][name], name
    # (the directory's own lookup on the worker that owns it costs a request; no file does)
    assert not [t for m, t in proxy.log()[len(log):] if "/epoch/s" in t]


def test_a_page_fetched_for_one_node_is_served_to_another(env):
    c, proxy = env["cluster"], env["proxy"]
    name = "/r2/epoch/s00007.bin"
    c.cli("free", "/r2/epoch")
    before = proxy.stats()["GET"]
    first = subprocess.run(["ip", "netns", "exec", c.netns[1], BINARY, "fs", "cat", name], capture_output=True,
                           env=fx.child_env(SLUICE_CONFIG=c.config), timeout=60)
    second = subprocess.run(["ip", "netns", "exec", c.netns[3], BINARY, "fs", "cat", name], capture_output=True,
                            env=fx.child_env(SLUICE_CONFIG=c.config), timeout=60)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout == env["epoch"]["epoch/s00007.bin"]
    assert proxy.stats()["GET"] - before == 1


def test_what_one_node_writes_the_others_read_after_close(env):
    c, mnt = env["cluster"], env["fuse"].mnt
    src = os.path.join(env["root"], "stage1.bin")
    for version in (b"first version\n" * 1000, b"second, longer version\n" * 5000):
        with open(src, "wb") as f:
            f.write(version)
        c.cli("fs", "put", src, "/out/stage1.bin", netns=c.netns[1])
        other = subprocess.run(["ip", "netns", "exec", c.netns[3], BINARY, "fs", "cat", "/out/stage1.bin"],
                               capture_output=True, env=fx.child_env(SLUICE_CONFIG=c.config), timeout=60)
        assert other.stdout == version, other.stderr
    with open(os.path.join(mnt, "out", "stage1.bin"), "rb") as f:  # the host's mount
        assert f.read() == version
    assert open(os.path.join(env["root"], "out", "stage1.bin"), "rb").read() == version  # in the store


def read_while_killing(env, mount, kill_after):
    """Reads the big shard through FUSE while SIGKILLing one worker; returns (md5, longest
    gap between two reads in s, the worker killed)."""
    c, mnt = env["cluster"], env["fuse"].mnt
    path = os.path.join(mnt, mount, "big/shard.bin")
    h = hashlib.md5()
    gaps = []
    killed = {}

    def killer():
        time.sleep(kill_after)
        w = random.Random(kill_after).randint(1, WORKERS)
        killed["w"] = w
        killed["at"] = time.monotonic()
        c.sh("kill", str(w))

    t = threading.Thread(target=killer)
    with open(path, "rb") as f:
        t.start()
        last = time.monotonic()
        while chunk := f.read(4 << 20):
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            h.update(chunk)
    t.join()
    return h.hexdigest(), max(gaps), killed["w"]


@pytest.mark.parametrize("mount", ["r2", "r1"])
def test_sigkill_of_a_worker_during_a_sequential_read(env, mount):
    c = env["cluster"]
    c.cli("free", "/" + mount)
    want = md5_of(env["big"])
    got, stall, w = read_while_killing(env, mount, kill_after=0.5)
    assert got == want
    assert stall < 5, f"reads stalled {stall:.1f} s after worker {w} was killed"
    c.sh("start", str(w))
    c.wait_members(WORKERS)


def test_a_restarted_worker_keeps_its_disk_cache(env):
    c, mnt = env["cluster"], env["fuse"].mnt
    c.cli("load", "/r1/epoch", "--wait")
    # Pages reach the disk tier behind the memory tier; a SIGKILL loses what is only in memory.
    fx.wait_for(lambda: all(int(t.get("unwrittenBytes", 0)) == 0 for t in c.report(2)["tiers"]), 30,
                "worker 2's pages on disk")
    before = c.cli("fs", "check-cached", "/r1/epoch").stdout
    c.sh("kill", "2")
    c.sh("start", "2")
    c.wait_members(WORKERS)
    # Its keys are its again, and their pages are still there.
    assert c.cli("fs", "check-cached", "/r1/epoch").stdout == before
    for name in sorted(env["epoch"])[:300]:
        with open(os.path.join(mnt, "r1", name), "rb") as f:
            assert f.read() == env["epoch"][name]


def test_the_data_path_survives_an_etcd_outage(env):
    c, mnt = env["cluster"], env["fuse"].mnt
    c.sh("etcd", "stop")
    try:
        for name in sorted(env["epoch"])[-50:]:
            with open(os.path.join(mnt, "r2", name), "rb") as f:
                assert f.read() == env["epoch"][name]
        r = c.cli("mount", "list", check=False)
        assert r.returncode != 0 and "etcd" in r.stderr
    finally:
        c.sh("etcd", "start")
    c.wait_members(WORKERS)
    with open(os.path.join(mnt, "r2", "epoch/s00001.bin"), "rb") as f:
        assert f.read() == env["epoch"]["epoch/s00001.bin"]


def test_a_partitioned_worker_is_routed_around_and_rejoins(env):
    c, mnt = env["cluster"], env["fuse"].mnt
    c.sh("net", "3", "down")
    try:
        c.wait_members(WORKERS - 1, timeout=30)  # its lease expires
        started = time.monotonic()
        for name in sorted(env["epoch"])[:400]:
            with open(os.path.join(mnt, "r1", name), "rb") as f:
                assert f.read() == env["epoch"][name]
        assert time.monotonic() - started < 60
    finally:
        c.sh("net", "3", "up")
    c.wait_members(WORKERS, timeout=30)  # it registers again under a new lease


def job_status(c, job):
    out = c.cli("load", "status", job).stdout
    return out


def test_a_cluster_load_of_10000_files(env):
    c = env["cluster"]
    total = MANY_FILES * 4096
    reads_before = c.store_reads()
    r = c.cli("load", "/many", "--wait")
    assert f"done: {MANY_FILES} files" in r.stdout, r.stdout
    # Each page once from the store; the second copies came from worker to worker.
    assert c.store_reads() - reads_before == total
    cached = c.cli("fs", "check-cached", "/many").stdout
    assert "(200.0%)" in cached, cached
    # Again with the CLI killed and a worker killed midway: the job goes on and completes.
    c.cli("free", "/many")
    cli = subprocess.Popen([BINARY, "load", "/many", "--wait"], env=fx.child_env(SLUICE_CONFIG=c.config),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job = fx.wait_for(lambda: next((line.split()[1] for line in c.cli("load", "status").stdout.splitlines()
                                    if line.startswith("load ") and "running" in line), None), 30, "a running job")
    cli.kill()
    cli.wait()
    coordinator = job.split("@", 1)[1]
    victim = next(w for w, ip in c.ips.items() if not coordinator.startswith(ip + ":"))
    c.sh("kill", str(victim))
    final = fx.wait_for(lambda: (lambda out: out if "running" not in out and "queued" not in out else None)(
        job_status(c, job)), 120, "the job to end")
    assert f"done: {MANY_FILES} files" in final and "failed:" not in final, final
    c.sh("start", str(victim))
    c.wait_members(WORKERS)
