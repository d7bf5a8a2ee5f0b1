"""Throughput of dior.ray on this machine: the same images embedded by 1 and by 2 Ray workers (the
cores shared out among them), seconds and images per second, model loading included. A benchmark
(prints numbers), not a test. Needs the Python package (pip install .) and ray[data].

    python scripts/bench_ray.py --model text.gguf --mmproj mmproj.gguf --images 16 --cores 2
"""
import argparse
import os
import tempfile
import time

import numpy as np
from PIL import Image


def make_images(d, n, size):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = os.path.join(d, f"img{i:03d}.png")
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mmproj", required=True)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--conditions", type=int, default=1)
    a = ap.parse_args()

    import ray
    import dior.ray

    conditions = [None, "car color", "car model", "background color", "movie genre"][: a.conditions]
    with tempfile.TemporaryDirectory() as d:
        paths = make_images(d, a.images, a.size)
        print(f"{a.images} images of {a.size}x{a.size}, {len(conditions)} condition(s), {a.cores} cores; "
              f"{os.path.basename(a.model)}")
        for w in [int(x) for x in a.workers.split(",")]:
            # a Ray session of its own for each run: a second dataset in one session waited ~20 s here
            ray.init(num_cpus=a.cores, include_dashboard=False, log_to_driver=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
            threads = max(1, a.cores // w)
            ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=max(w * 2, 2))
            t0 = time.time()
            rows = dior.ray.embed_dataset(ds, conditions=conditions, model=a.model, mmproj=a.mmproj, threads=threads,
                                          concurrency=w, batch_size=1, num_cpus=threads * 0.5).count()
            s = time.time() - t0
            ray.shutdown()
            assert rows == a.images * len(conditions)
            print(f"  {w} worker(s) x {threads} thread(s): {s:7.1f} s, {a.images / s:.3f} images/s", flush=True)

if __name__ == "__main__":
    main()
