"""Random stats of generated names, N threads: through a mount (os.stat) or through sluice's
client (RPC to the worker, no kernel cache). Prints one JSON line.

    stat_rate.py mount ROOT COUNT THREADS DIRS PER_DIR
    stat_rate.py client PREFIX COUNT THREADS DIRS PER_DIR   (PYTHONPATH: build/<dir>/python)

Names are PREFIX/dDDDDD/fFFFF.jpg, as bench/run_metadata_bench.sh generates them.
"""
import json
import os
import random
import sys
import threading
import time


def main():
    how, root, count, threads, dirs, per_dir = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
    if how == "client":
        import sluice
        client = sluice.connect()
        stat = client.stat
    else:
        stat = os.stat
    rng = random.Random(7)
    names = [f"{root}/d{rng.randrange(dirs):05d}/f{rng.randrange(per_dir):04d}.jpg" for _ in range(count)]
    failures = []

    def work(part):
        for name in part:
            try:
                stat(name)
            except OSError as e:
                failures.append(f"{name}: {e}")

    parts = [names[i::threads] for i in range(threads)]
    started = time.monotonic()
    workers = [threading.Thread(target=work, args=(p,)) for p in parts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.monotonic() - started
    print(json.dumps({"stats": count, "threads": threads, "seconds": round(seconds, 3),
                      "stats_per_second": round(count / seconds), "failures": len(failures),
                      "first_failure": failures[0] if failures else ""}))


if __name__ == "__main__":
    main()
