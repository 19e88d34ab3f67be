"""train_resnet.py: an ordinary PyTorch training loop whose data comes through sluice.

The dataset is a folder of samples, one file each (CLASS/NAME.raw: 3x32x32 uint8 pixels),
opened with fsspec as any loader would; only the URL says sluice://. With --prefetch, each
epoch's shuffled order is handed to sluice, which fetches the samples ahead of the loader.

    python3 train_resnet.py --generate /data/tiny-images        # writes 2,000 samples
    sluice local --ufs file:///data/tiny-images &                # or s3://bucket/prefix
    python3 train_resnet.py sluice:///  --epochs 2 --prefetch

Runs on a CPU in about a minute.
"""
import argparse
import os
import random
import time

import fsspec
import torch
import torch.nn as nn
import torch.utils.data as tud


class ImageFolder(tud.Dataset):
    def __init__(self, url):
        self.fs, root = fsspec.core.url_to_fs(url)
        self.paths = sorted(p for p in self.fs.find(root) if p.endswith(".raw"))
        self.classes = sorted({p.split("/")[-2] for p in self.paths})
        self.labels = [self.classes.index(p.split("/")[-2]) for p in self.paths]

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with self.fs.open(self.paths[i], "rb") as f:
            pixels = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
        return pixels.view(3, 32, 32).float() / 255, self.labels[i]


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def resnet(classes):
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), Block(16, 16, 1),
                         Block(16, 32, 2), Block(32, 64, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, classes))


def generate(root, per_class=200, classes=10):
    rng = random.Random(0)
    for c in range(classes):
        os.makedirs(f"{root}/class{c}", exist_ok=True)
        for i in range(per_class):
            # Each class has its own mean brightness, so the model has something to learn.
            base = 20 * c
            pixels = bytes(min(255, base + rng.randrange(56)) for _ in range(3 * 32 * 32))
            with open(f"{root}/class{c}/img_{i:04d}.raw", "wb") as f:
                f.write(pixels)
    print(f"wrote {per_class * classes} samples in {classes} classes to {root}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", nargs="?", default="sluice:///", help="the dataset: sluice:///PATH, or any fsspec URL")
    p.add_argument("--generate", metavar="DIR", help="write a small dataset to DIR and exit")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--prefetch", action="store_true", help="hand each epoch's order to sluice")
    a = p.parse_args()
    if a.generate:
        return generate(a.generate)

    ds = ImageFolder(a.url)
    sampler = tud.RandomSampler(ds)
    if a.prefetch:
        import sluice.torch
        sampler = sluice.torch.PrefetchSampler(sampler, paths=ds.paths, client=ds.fs.client, window="256MiB")
    loader = tud.DataLoader(ds, batch_size=a.batch, sampler=sampler, num_workers=a.workers)
    model = resnet(len(ds.classes))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(a.epochs):
        start, seen, correct, total_loss = time.monotonic(), 0, 0, 0.0
        for x, y in loader:
            opt.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            seen += len(y)
            correct += int((out.argmax(1) == y).sum())
            total_loss += float(loss) * len(y)
        wall = time.monotonic() - start
        print(f"epoch {epoch + 1}: {seen} samples in {wall:.1f}s ({seen / wall:.0f}/s), "
              f"loss {total_loss / seen:.3f}, accuracy {100 * correct / seen:.1f}%")


if __name__ == "__main__":
    main()
