"""PyTorch: DataLoaders with worker processes (fork and spawn) reading through sluice, shards,
the prefetching sampler, and a worker killed under a running loader."""
import hashlib
import os
import signal

import pytest
import torch
import torch.utils.data as tud

from sluice.torch import FileDataset, PrefetchSampler, ShardDataset

from conftest import Local, wait_for


def digest(data):
    return hashlib.sha256(data).hexdigest()


def as_tensor(data):
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def named_digest(data):
    return digest(data)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_dataloader_workers_read_byte_exact(client, dataset, start_method):
    files = dataset["files"]
    ds = FileDataset("/images", transform=named_digest, client=client)
    assert len(ds) == 160
    loader = tud.DataLoader(ds, batch_size=8, num_workers=4, shuffle=True,
                            multiprocessing_context=start_method, generator=torch.Generator().manual_seed(1))
    seen = []
    for batch in loader:
        seen.extend(batch)
    want = sorted(digest(v) for k, v in files.items() if k.startswith("images/"))
    assert sorted(seen) == want


def test_shard_dataset_yields_every_record_once(client, dataset):
    shards = [f"/shards/shard-{i:02d}.tar" for i in range(3)]
    ds = ShardDataset(shards, transform=lambda name, data: (name, digest(data)), client=client)
    loader = tud.DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="fork")
    got = dict(loader)
    assert got == {name: digest(data) for name, data in dataset["records"].items()}


def test_prefetch_sampler_hands_the_order_to_sluice(client, dataset):
    ds = FileDataset("/images/class3", transform=digest, client=client)
    sampler = PrefetchSampler(tud.RandomSampler(ds, generator=torch.Generator().manual_seed(3)), ds, window="1MiB",
                              concurrency=4)
    loader = tud.DataLoader(ds, batch_size=4, sampler=sampler, num_workers=2, multiprocessing_context="fork")
    got = [d for batch in loader for d in batch]
    assert sorted(got) == sorted(digest(v) for k, v in dataset["files"].items() if k.startswith("images/class3/"))
    assert sampler.prefetch.wait(30)
    stats = sampler.prefetch.stats()
    assert stats["items"] == 40 and stats["fetched"] + stats["skipped"] == 40 and stats["failed"] == 0


@pytest.fixture
def proxied(scratch, dataset, request):
    """A `sluice local` of its own behind the fault proxy (its request log shows the order)."""
    from conftest import FaultProxy
    root = os.path.join(scratch, request.node.name)
    os.makedirs(root)
    proxy = FaultProxy(root, dataset["rgw"].endpoint)
    node = Local(root, "node", proxy.endpoint, dataset["rgw"].keys)
    yield proxy, node
    node.stop()
    proxy.stop()


def test_prefetch_fetches_in_the_given_order_within_its_window(proxied, dataset):
    proxy, node = proxied
    client = node.client()
    names = sorted(k for k in dataset["files"] if k.startswith("images/class0/"))
    order = [names[i] for i in torch.randperm(len(names), generator=torch.Generator().manual_seed(5)).tolist()]
    proxy.control("reset-stats")
    one_by_one = client.prefetch(["/" + n for n in order], window="64MiB", concurrency=1)
    assert one_by_one.wait(60)
    gets = [target.split("?")[0] for method, target in proxy.log() if method == "GET" and "list-type" not in target]
    assert gets == [f"/datasets/train/{n}" for n in order]  # the store saw exactly that order
    assert one_by_one.stats()["fetched"] == len(order)

    # A window of 100,000 bytes and a reader that does not move: fetching stops at the window
    # (plus what each of the 2 fetchers had started), and goes on as the reader consumes.
    names = sorted(k for k in dataset["files"] if k.startswith("images/class1/"))
    sizes = [len(dataset["files"][n]) for n in names]
    bounded = client.prefetch(["/" + n for n in names], window=100_000, concurrency=2)
    wait_for(lambda: bounded.stats()["waiting"] == 2, 30, "the fetchers to stop at the window")
    stats = bounded.stats()
    assert stats["ahead_bytes"] <= 100_000 + 2 * max(sizes)
    assert stats["fetched"] < len(names)
    fetched_before = stats["fetched"]
    bounded.consumed(fetched_before)
    wait_for(lambda: bounded.stats()["fetched"] > fetched_before, 30, "fetching to go on")
    bounded.consumed(len(names))
    assert bounded.wait(60)
    assert bounded.stats()["max_ahead_bytes"] <= 100_000 + 2 * max(sizes)
    bounded.cancel()

    # However large the window asked for, it stays inside a quarter of the worker's cache
    # (1 GiB of disk + 256 MiB of memory here), so nothing fetched is evicted before its turn.
    capped = client.prefetch(["/" + names[0]], window="100GiB", concurrency=1)
    assert 0 < capped.stats()["window_bytes"] <= ((1 << 30) + (256 << 20)) // 4
    capped.cancel()


def test_a_worker_killed_under_a_loader_falls_back_to_the_store(proxied, dataset, monkeypatch):
    proxy, node = proxied
    for k, v in dataset["rgw"].keys.items():  # the job's own credentials, for reading the store itself
        monkeypatch.setenv(k, v)
    client = node.client()
    ds = FileDataset("/images", transform=digest, client=client)
    loader = tud.DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="fork")
    got = []
    gets_at_kill = None
    for i, batch in enumerate(loader):
        got.extend(batch)
        if i == 3:
            node.stop(signal.SIGKILL)  # the worker dies mid-epoch
            gets_at_kill = gets(proxy)
    assert got == [digest(dataset["files"][p[1:]]) for p in ds.paths]
    assert gets(proxy) > gets_at_kill  # the loader's workers read the store themselves


def gets(proxy):
    return int(dict(line.split() for line in proxy.control("stats").splitlines())["GET"])
