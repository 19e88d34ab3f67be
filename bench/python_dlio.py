"""python_dlio.py: a DLIO-style training loop in PyTorch (MLPerf Storage's accelerator
utilization, AU), reading one file per sample through sluice's Python client or through a
directory (the FUSE mount, local disk), so both doors run the same loop.

    python_dlio.py (--sluice PREFIX | --dir DIR) [--accelerators N] [--batch B] [--compute S]
                   [--workers W] [--prefetch WINDOW] [--concurrency C] [--epochs E] [--seed S]

Each step takes a batch of B samples for each of N simulated accelerators (one DataLoader
batch of N*B, in the sampler's shuffled order) and then computes for S seconds (a sleep: the
accelerators work in parallel). AU = time computing / wall time. --prefetch hands each epoch's
order to sluice (sluice.torch.PrefetchSampler). Prints one JSON line per epoch.
"""
import argparse
import json
import os
import time
import warnings

import torch
import torch.utils.data as tud


class Files(tud.Dataset):
    def __init__(self, paths, reader):
        self.paths = paths
        self.reader = reader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return len(self.reader(self.paths[i]))


def read_local(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # 4 workers on 2 cores, knowingly
    p = argparse.ArgumentParser()
    p.add_argument("--sluice")
    p.add_argument("--dir")
    p.add_argument("--accelerators", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--compute", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--prefetch")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop-caches", action="store_true", help="drop the kernel's page cache before each epoch (root)")
    a = p.parse_args()

    if a.sluice:
        import sluice
        from sluice.torch import PrefetchSampler
        client = sluice.connect()
        paths = [f["name"] for f in client.walk_files(a.sluice)]
        ds = Files(paths, client.read)
        ds.client = client
    else:
        paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(a.dir) for f in fs)
        ds = Files(paths, read_local)
    sampler = tud.RandomSampler(ds, generator=torch.Generator().manual_seed(a.seed))
    if a.prefetch:
        sampler = PrefetchSampler(sampler, ds, window=a.prefetch, concurrency=a.concurrency)
    per_step = a.accelerators * a.batch
    loader = tud.DataLoader(ds, batch_size=per_step, sampler=sampler, num_workers=a.workers, drop_last=True,
                            persistent_workers=a.epochs > 1, prefetch_factor=2 if a.workers else None)
    for epoch in range(a.epochs):
        if a.drop_caches:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
        start = time.monotonic()
        samples = nbytes = steps = 0
        for batch in loader:
            samples += len(batch)
            nbytes += int(batch.sum())
            steps += 1
            if a.compute:
                time.sleep(a.compute)
        wall = time.monotonic() - start
        row = {"epoch": epoch + 1, "samples": samples, "samples_per_second": round(samples / wall, 1),
               "mib_per_second": round(nbytes / wall / 2**20, 1),
               "au": round(100 * steps * a.compute / wall, 1) if a.compute else None, "wall_s": round(wall, 2)}
        if a.prefetch:
            row["prefetch"] = sampler.prefetch.stats()
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
