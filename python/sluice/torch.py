"""PyTorch helpers: datasets over a sluice namespace, and a sampler that hands each epoch's
order to sluice so the samples are fetched ahead of the loader, in that order.

    from sluice.torch import FileDataset, PrefetchSampler
    ds = FileDataset("/train", transform=decode)              # one file per sample
    sampler = PrefetchSampler(torch.utils.data.RandomSampler(ds), ds, window="512MiB")
    loader = torch.utils.data.DataLoader(ds, batch_size=64, sampler=sampler, num_workers=4)
"""
import io
import tarfile

import torch.utils.data as tud

from . import Client


class FileDataset(tud.Dataset):
    """Every file below `prefix` is a sample (sorted by path): dataset[i] is
    transform(bytes of file i), or the bytes. `client`: a sluice.Client (default: connect)."""

    def __init__(self, prefix, transform=None, client=None, config=None):
        self.client = client or Client(config)
        self.prefix = prefix
        self.files = self.client.walk_files(prefix)
        self.paths = [f["name"] for f in self.files]
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        data = self.client.read(self.paths[index])
        return self.transform(data) if self.transform else data


class _RawFile(io.RawIOBase):
    """A sluice file as a Python raw stream (for tarfile), reading into the caller's buffer."""

    def __init__(self, handle):
        self._handle = handle
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, b):
        n = self._handle.readinto_at(self._pos, b)
        self._pos += n
        return n

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._handle.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self):
        return self._pos


class ShardDataset(tud.IterableDataset):
    """Records of tar shards (WebDataset-style): yields (member name, bytes) in shard order, or
    transform(name, bytes). With several DataLoader workers, each reads its share of the shards."""

    def __init__(self, shards, transform=None, client=None, config=None):
        self.client = client or Client(config)
        self.shards = list(shards)
        self.transform = transform

    def __iter__(self):
        info = tud.get_worker_info()
        mine = self.shards if info is None else self.shards[info.id::info.num_workers]
        for shard in mine:
            raw = _RawFile(self.client.open(shard))
            with tarfile.open(fileobj=io.BufferedReader(raw, 1 << 20), mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    data = tar.extractfile(member).read()
                    yield self.transform(member.name, data) if self.transform else (member.name, data)


class PrefetchSampler(tud.Sampler):
    """Wraps a sampler: each epoch, the sampler's order goes to sluice, which fetches those
    files ahead of the loader in exactly that order, at most `window` bytes beyond the last
    index handed out, `concurrency` at a time; what the previous epoch had not fetched is
    cancelled. The files are `dataset.paths` read through `dataset.client` (a FileDataset),
    or `paths` and `client` given here."""

    def __init__(self, sampler, dataset=None, window="512MiB", concurrency=32, paths=None, client=None):
        self.sampler = sampler
        self.paths = paths if paths is not None else dataset.paths
        self.client = client or dataset.client
        self.window = window
        self.concurrency = concurrency
        self.prefetch = None

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        order = list(self.sampler)
        if self.prefetch is not None:
            self.prefetch.cancel()
        self.prefetch = self.client.prefetch([self.paths[i] for i in order], self.window, self.concurrency)
        for position, index in enumerate(order):
            self.prefetch.consumed(position)
            yield index
        self.prefetch.consumed(len(order))
