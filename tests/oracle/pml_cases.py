"""Test oracle: pytorch-metric-learning 2.9's AccuracyCalculator (the reference's evaluation) on
generated vectors and labels. For each case writes NAME.npy (float32 vectors), NAME.labels.txt,
NAME.clusters.txt (faiss k-means labels as PML computes them) and NAME.json with PML's metrics and
scikit-learn's NMI / AMI of those cluster labels.
Usage: python pml_cases.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score


def cases(rng):
    n = 300
    yield "random", rng.normal(size=(n, 16)), rng.integers(0, 10, n)
    centers = rng.normal(scale=4, size=(6, 8))
    lab = rng.integers(0, 6, 240)
    yield "clustered", centers[lab] + rng.normal(size=(240, 8)), lab
    grid = rng.integers(0, 3, size=(200, 4)).astype(np.float64)  # many equal distances
    yield "tied_distances", grid, rng.integers(0, 4, 200)
    base = rng.normal(size=(60, 8))
    dup = np.concatenate([base, base[:30], base[:10]])  # exact duplicates, other labels
    yield "duplicates", dup, rng.integers(0, 5, len(dup))
    # Duplicate images, as real datasets have a few: bit-identical vectors, large and wide like
    # hidden states, often in other classes. Rounding decides the order among them (faiss vs dior).
    base = rng.normal(scale=3.0, size=(300, 256)) + 20.0
    dup = np.concatenate([base, base[:120], base[:40], base[:40]])
    yield "duplicate_images", dup, rng.integers(0, 4, len(dup))
    lab = rng.integers(0, 8, 150)
    lab[:6] = np.arange(100, 106)  # six labels that occur once
    yield "lone_labels", rng.normal(size=(150, 12)), lab
    lab = np.where(rng.random(400) < 0.8, 0, rng.integers(1, 3, 400))  # like deepfashion fit
    yield "unbalanced", rng.normal(size=(400, 16)) + lab[:, None] * 0.3, lab
    lab = rng.integers(0, 20, 2000)
    yield "larger", rng.normal(size=(20, 64))[lab] * 0.5 + rng.normal(size=(2000, 64)), lab


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(2024)
    calc = AccuracyCalculator(include=("mean_average_precision_at_r", "precision_at_1", "NMI", "AMI"),
                              device=torch.device("cpu"))
    names = []
    for name, x, labels in cases(rng):
        x = x.astype(np.float32)
        labels = labels.astype(np.int64)
        acc = calc.get_accuracy(x, labels)
        clusters = calc.get_cluster_labels(torch.tensor(x), torch.tensor(labels)).numpy()
        np.save(os.path.join(out, f"{name}.npy"), x)
        np.savetxt(os.path.join(out, f"{name}.labels.txt"), labels, fmt="%d")
        np.savetxt(os.path.join(out, f"{name}.clusters.txt"), clusters, fmt="%d")
        acc["sklearn_NMI_of_clusters"] = normalized_mutual_info_score(labels, clusters)
        acc["sklearn_AMI_of_clusters"] = adjusted_mutual_info_score(labels, clusters)
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump({k: float(v) for k, v in acc.items()}, f)
        names.append(name)
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"wrote {len(names)} PML cases to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
