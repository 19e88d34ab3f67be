"""Generates DIRS directories of PER_DIR empty files, ROOT/dDDDDD/fFFFF.jpg, for
bench/run_metadata_bench.sh; writes ROOT.done when complete (a rerun then skips it).

    make_tree.py ROOT DIRS PER_DIR
"""
import os
import sys


def main():
    root, dirs, per_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    flags = os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC
    for d in range(dirs):
        path = f"{root}/d{d:05d}"
        os.makedirs(path, exist_ok=True)
        for i in range(per_dir):
            os.close(os.open(f"{path}/f{i:04d}.jpg", flags, 0o644))
    with open(f"{root}.done", "w") as f:
        f.write(f"{dirs} {per_dir}\n")


if __name__ == "__main__":
    main()
