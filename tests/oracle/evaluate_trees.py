"""Test oracle: trees in the reference's JSON layout and the scores its evaluate.py prints for them.

Writes OUT/embeddings/<setting>/*.json (deepfashion-, cub200- and movie_posters-shaped settings with
exact and near-duplicate vectors), OUT/metadata/ (the metadata those settings are read with: rows
drawn from the shipped files, in an unsorted order) and OUT/expected.json.

The expected values reproduce what the reference's evaluate.py does (its ordering and scoring,
SPEC sections 4 and 6), written here anew: rows in the order it reads them (deepfashion and
movie_posters: the metadata's row order, vector file = metadata name; cub200: the setting folder's
glob listing, unsorted, hidden files left out, species from the file name), then
pytorch-metric-learning 2.9's AccuracyCalculator on float32 vectors (faiss k-means, seed 1234).
Also: the same scores with the rows sorted by file name, NMI / AMI with k-means seeds 1..10, and
for P@1 and mAP@R the slack that float32 rounding ties leave (the range of values over every
order of candidates whose distances are equal up to rounding).
Usage: python evaluate_trees.py OUT
"""
import csv
import glob
import json
import os
import shutil
import sys
from collections import Counter

import faiss
import numpy as np
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import FaissKMeans

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = os.path.join(HERE, "..", "..", "data", "reference")
SEEDS = list(range(1, 11))
# pandas' default NA strings: such cells are one NaN class in the reference's labels.
PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
             "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}


def label_of(cell):
    return "NaN" if cell in PANDAS_NA else cell


def write_vector(path, v):
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"embedding": [float(a) for a in v], "prompt": "p", "source": "input_last"}, f)


def clustered(rng, groups, dim, spread, offset=0.0):
    """Vectors around one centre per group: overlapping clusters, so k-means depends on its start."""
    keys = sorted(set(groups))
    centres = {k: rng.normal(size=dim) for k in keys}
    x = np.stack([centres[g] + spread * rng.normal(size=dim) for g in groups]) + offset
    return x.astype(np.float32)


def add_duplicates(rng, x, n_exact, n_near, near_scale):
    """Rows replaced by bit-identical copies of other rows, and by copies moved a little."""
    n = len(x)
    rows = rng.permutation(n)
    for i in range(n_exact):
        x[rows[2 * i + 1]] = x[rows[2 * i]]
    at = 2 * n_exact
    for i in range(n_near):
        src, dst = rows[at + 2 * i], rows[at + 2 * i + 1]
        x[dst] = (x[src] + near_scale[i % len(near_scale)] * rng.normal(size=x.shape[1])).astype(np.float32)
    return x


def tie_slack(x, labels):
    """Range of mAP@R and P@1 over every order of tied candidates: distances equal up to float32
    rounding (faiss' |q|^2 + |r|^2 - 2 q.r in float32) are put relevant-first, then relevant-last."""
    x64 = x.astype(np.float64)
    norms = (x64 * x64).sum(1)
    d = np.maximum(norms[:, None] + norms[None, :] - 2 * x64 @ x64.T, 0)
    counts = Counter(labels.tolist())
    eps = 2.0**-24
    lo_ap = hi_ap = lo_p1 = hi_p1 = 0.0
    nq = 0
    for q in range(len(x)):
        r = counts[labels[q]] - 1
        if r == 0:
            continue
        nq += 1
        dq = d[q].copy()
        dq[q] = np.inf
        order = np.argsort(dq, kind="stable")[: len(x) - 1]
        ds, rel = dq[order], labels[order] == labels[q]
        tol = 64 * eps * (norms[q] + np.maximum(norms[order][:-1], norms[order][1:]))
        group = np.concatenate([[0], np.cumsum(np.diff(ds) > tol)])  # tie groups, in distance order
        results = []
        for relevant_first in (True, False):
            key = np.lexsort((~rel if relevant_first else rel, group))
            rr = rel[key][:r]
            hits = np.cumsum(rr)
            ap = float((hits / np.arange(1, r + 1))[rr].sum() / r)
            results.append((ap, float(rr[0])))
        lo_ap += min(results[0][0], results[1][0])
        hi_ap += max(results[0][0], results[1][0])
        lo_p1 += min(results[0][1], results[1][1])
        hi_p1 += max(results[0][1], results[1][1])
    return (hi_ap - lo_ap) / max(nq, 1), (hi_p1 - lo_p1) / max(nq, 1)


def faiss_perm(n, seed):
    perm = np.empty(n, dtype=np.int32)
    faiss.rand_perm(faiss.swig_ptr(perm), n, seed)
    return perm


def kmeans_is_decided(x32, k, seed, faiss_labels, niter=20, max_per_centroid=256):
    """Whether faiss' k-means (seed) comes out as it does regardless of float32 rounding: replays
    its steps in float64 (subsample and starting centres drawn by faiss' own rand_perm, Lloyd
    iterations, empty clusters split as faiss splits them, the final assignment of every row) and
    checks that no row's nearest and second-nearest centre are within 64 float32 ulps of its
    squared norms apart, and that the replay ends where faiss did. Where this says no, another
    BLAS or faiss build may cluster differently: exact agreement is not expected there."""
    x = x32.astype(np.float64)
    xs = x[faiss_perm(len(x), seed)[: k * max_per_centroid]] if len(x) > k * max_per_centroid else x
    n = len(xs)
    c = xs[faiss_perm(n, seed + 1)[:k]].copy()
    decided = True

    def assign(pts):
        nonlocal decided
        pn, cn = (pts * pts).sum(1), (c * c).sum(1)
        d = np.maximum(pn[:, None] + cn[None, :] - 2 * pts @ c.T, 0)
        a = np.argmin(d, 1)
        ds = np.sort(d, 1)
        decided &= bool((ds[:, 1] - ds[:, 0] > 64 * 2.0**-24 * (pn + cn[a])).all())
        return a

    sign = np.where(np.arange(x.shape[1]) % 2 == 0, 1.0, -1.0)
    for _ in range(niter):
        a = assign(xs)
        h = np.bincount(a, minlength=k).astype(np.float32)
        for ci in np.nonzero(h)[0]:
            c[ci] = xs[a == ci].mean(0)
        rng = faiss.RandomGenerator(1234)
        for ci in range(k):
            if h[ci] == 0:  # faiss' split_clusters
                cj = 0
                while not rng.rand_float() < np.float32(h[cj] - 1.0) / np.float32(n - k):
                    cj = (cj + 1) % k
                c[ci] = c[cj] * (1 + sign / 1024.0)
                c[cj] = c[cj] * (1 - sign / 1024.0)
                h[ci] = h[cj] / 2
                h[cj] -= h[ci]
    final = assign(x)
    return decided and bool((final == faiss_labels).all())


def clustering(x, y, seed):
    """NMI, AMI as PML computes them with k-means seeded so, and whether rounding could change them."""
    kmeans = FaissKMeans(niter=20, seed=seed)
    calc = AccuracyCalculator(include=("NMI", "AMI"), device=torch.device("cpu"), kmeans_func=kmeans)
    a = calc.get_accuracy(x, y)
    k = len(set(y.tolist()))
    decided = kmeans_is_decided(x, k, seed, kmeans(torch.tensor(x), k).numpy())
    return float(a["NMI"]), float(a["AMI"]), decided


def scores(x, labels):
    ids = {t: i for i, t in enumerate(sorted(set(labels)))}
    y = np.array([ids[t] for t in labels], dtype=np.int64)
    calc = AccuracyCalculator(include=("mean_average_precision_at_r", "precision_at_1", "NMI", "AMI"),
                              device=torch.device("cpu"))
    acc = calc.get_accuracy(x, y)
    out = {k: float(v) for k, v in acc.items()}
    out["map_slack"], out["p1_slack"] = tie_slack(x, y)
    nmi, ami, out["kmeans_decided"] = clustering(x, y, 1234)  # PML's default seed
    assert abs(nmi - out["NMI"]) < 1e-12 and abs(ami - out["AMI"]) < 1e-12
    out["NMI_seeds"], out["AMI_seeds"], out["kmeans_decided_seeds"] = [], [], []
    for seed in SEEDS:
        nmi, ami, decided = clustering(x, y, seed)
        out["NMI_seeds"].append(nmi)
        out["AMI_seeds"].append(ami)
        out["kmeans_decided_seeds"].append(decided)
    out["images"] = len(labels)
    return out


def score_both(vectors, ref_rows, aspects):
    """vectors: file name -> vector; ref_rows: (file name, {aspect: label}) in the reference's order."""
    out = {}
    by_name = sorted(range(len(ref_rows)), key=lambda i: ref_rows[i][0])
    for aspect in aspects:
        x = np.stack([vectors[name] for name, _ in ref_rows])
        labels = [lab[aspect] for _, lab in ref_rows]
        out[aspect] = {"reference": scores(x, labels),
                       "sorted": scores(x[by_name], [labels[i] for i in by_name])}
    return out


def read_table(path, sep):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter=sep))
    return rows[0], rows[1:]


def table_setting(rng, out, setting, shipped_name, sep, key, name_of, aspects, n_rows, make_vectors):
    """A metadata-listed setting: a subset of the shipped table in a shuffled order, one vector file
    per row named as the reference names it, plus files the metadata does not name."""
    header, shipped = read_table(os.path.join(SHIPPED, shipped_name), sep)
    rows = [shipped[i] for i in rng.permutation(len(shipped))[:n_rows]]
    # names with dots (deepfashion has some) must be among them
    dotted = [r for r in shipped if r[header.index(key)].count(".") > 1]
    rows = dotted[:3] + [r for r in rows if r not in dotted[:3]][: n_rows - len(dotted[:3])]
    meta_dir = os.path.join(out, "metadata")
    os.makedirs(meta_dir, exist_ok=True)
    with open(os.path.join(meta_dir, shipped_name), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=sep, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    col = {a: header.index(c) for a, c in aspects.items()}
    ref_rows = [(name_of(r[header.index(key)]), {a: label_of(r[c]) for a, c in col.items()}) for r in rows]
    x = make_vectors(ref_rows)
    d = os.path.join(out, "embeddings", setting)
    os.makedirs(d)
    vectors = {}
    for (name, _), v in zip(ref_rows, x):
        write_vector(os.path.join(d, name), v)
        vectors[name] = v
    for i in range(3):  # vector files without a metadata row: left out by both
        write_vector(os.path.join(d, f"zz_not_in_metadata_{i}.json"), x[i])
    return score_both(vectors, ref_rows, list(aspects))


def cub_setting(rng, out, setting, n_species, per_species, offset):
    d = os.path.join(out, "embeddings", setting)
    os.makedirs(d)
    species = [f"Bird_{chr(65 + s % 26)}{s}_Sparrow" if s % 3 else f"Warbler{s}" for s in range(n_species)]
    names = []
    for s, sp in enumerate(species):
        for k in range(per_species):
            name = f"{sp}_{k + 1:04d}_{int(rng.integers(1, 99999))}.json"
            if s == 1 and k < 2:  # dots: the species is read up to the first one
                name = f"{sp}.v{k}_{k + 1:04d}_7.json" if k == 0 else name.replace(".json", ".v2.json")
            # the reference's rule: the name up to its first ".", split on "_", last two parts dropped
            names.append((name, " ".join(name.split(".")[0].split("_")[:-2])))
    groups = [lab for _, lab in names]
    x = clustered(rng, groups, 24, 1.1, offset)
    x = add_duplicates(rng, x, 25, 25, [1e-2, 1e-7])
    order = rng.permutation(len(names))  # created out of order: the listing is not sorted
    for i in order:
        write_vector(os.path.join(d, names[i][0]), x[i])
    write_vector(os.path.join(d, ".Hidden_Bird_0001_1.json"), x[0])  # glob("*.json") skips it
    vectors = {n: v for (n, _), v in zip(names, x)}
    label = dict(names)
    listing = [os.path.basename(p) for p in glob.glob(os.path.join(d, "*.json"))]
    ref_rows = [(n, {"bird species": label[n]}) for n in listing]
    res = score_both(vectors, ref_rows, ["bird species"])
    return res, listing


def main(out):
    shutil.rmtree(out, ignore_errors=True)  # the listing order is the one of files written afresh
    rng = np.random.default_rng(28)
    expected = {}

    def by(aspect, spread, n_exact, n_near, near_scale, offset=0.0):
        def make(ref_rows):
            x = clustered(rng, [lab[aspect] for _, lab in ref_rows], 16, spread, offset)
            return add_duplicates(rng, x, n_exact, n_near, near_scale)
        return make

    df_aspects = {"clothing category": "clothing_category", "texture type": "texture", "fabric type": "fabric",
                  "fit type": "fit"}
    to_json = lambda f: f.replace(".jpg", ".json")  # noqa: E731
    s = "deepfashion-m-describe-fit_type-num_layer=-1-num_token=-1-embedsrc=input_last"
    expected[s] = table_setting(rng, out, s, "deepfashion_metadata.csv", ",", "file_names", to_json, df_aspects,
                                1200, by("texture type", 1.3, 40, 0, [0]))
    # The same rows (the metadata file is shared), other vectors: near-duplicates, large norms.
    s2 = "deepfashion-m-describe-texture_type-num_layer=-1-num_token=-1-embedsrc=input_last"
    os.makedirs(os.path.join(out, "embeddings", s2))
    header, rows = read_table(os.path.join(out, "metadata", "deepfashion_metadata.csv"), ",")
    ref_rows = [(to_json(r[0]), {a: label_of(r[header.index(c)]) for a, c in df_aspects.items()}) for r in rows]
    x = by("clothing category", 0.9, 10, 60, [1e-2, 1e-7], 20.0)(ref_rows)
    for (name, _), v in zip(ref_rows, x):
        write_vector(os.path.join(out, "embeddings", s2, name), v)
    expected[s2] = score_both({n: v for (n, _), v in zip(ref_rows, x)}, ref_rows, list(df_aspects))

    s = "movie_posters-m-describe-movie_genre-num_layer=-1-num_token=-1-embedsrc=input_last"
    expected[s] = table_setting(rng, out, s, "movie_posters_metadata.tsv", "\t", "imdbID", lambda i: f"{i}.json",
                                {"movie genre": "Genre", "movie's production country": "Country"}, 900,
                                by("movie genre", 1.2, 30, 30, [1e-2, 1e-7]))

    s = "cub200-m-describe-bird_species-num_layer=-1-num_token=-1-embedsrc=input_last"
    expected[s], listing = cub_setting(rng, out, s, 30, 10, 0.0)
    s3 = "cub200-m-describe-None-num_layer=-1-num_token=-1-embedsrc=input_last"
    res, listing3 = cub_setting(rng, out, s3, 12, 25, 30.0)
    expected[s3] = res
    unsorted = listing != sorted(listing) and listing3 != sorted(listing3)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"settings": expected, "cub200_listing_unsorted": unsorted}, f, indent=1)
    n = sum(len(v) for v in expected.values())
    print(f"wrote {len(expected)} settings ({n} aspects) to {out}; cub200 listing unsorted: {unsorted}")


if __name__ == "__main__":
    main(sys.argv[1])
