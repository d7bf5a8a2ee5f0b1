"""Ray Data batch inference (dior.ray): a local Ray cluster with 2 workers embeds 40 images through
map_batches; one worker is killed (SIGKILL) once results start to arrive; every (image, condition)
must come out exactly once, with the vector a single process computes."""
import os
import signal
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")  # in tests/requirements.txt: present wherever scripts/test.sh runs

import dior  # noqa: E402
import dior.ray  # noqa: E402

from patterns import pattern  # noqa: E402  (tests/support, on the path by conftest)

CONDITIONS = [None, "car color"]


def worker_pids():
    import psutil  # a dependency of ray
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "name"]):
        text = " ".join(p.info["cmdline"] or []) + " " + (p.info["name"] or "")
        if "DiorBatchEmbedder" in text and p.info["pid"] != os.getpid():
            out.append(p.info["pid"])
    return out


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             runtime_env={"env_vars": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "DIOR_"))}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_a_killed_worker_loses_and_repeats_nothing(cluster, tiny, tmp_path):
    paths = []
    for i in range(40):
        p = tmp_path / f"img{i:02d}.png"
        pattern(48 + i, 40, i).save(p)
        paths.append(str(p))
    expected = dior.Embedder(*tiny, threads=1).embed(paths, CONDITIONS)

    ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=10)
    out = dior.ray.embed_dataset(ds, conditions=CONDITIONS, model=tiny[0], mmproj=tiny[1], threads=1,
                                 concurrency=2, batch_size=2)
    rows, killed, before_kill = [], None, 0
    for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
        rows.extend(zip(batch["path"], batch["condition"], batch["vector"]))
        if killed is None:
            before_kill = len(rows)
            pids = worker_pids()
            assert len(pids) >= 1, "the embedding workers run in processes of their own"
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
            time.sleep(0.2)
    assert killed is not None
    assert before_kill < len(rows) // 2, f"the kill came early: {before_kill} of {len(rows)} rows had arrived"
    assert killed not in worker_pids(), "the killed worker is gone (replaced by a new one)"

    keys = [(str(p), str(c)) for p, c, _ in rows]
    assert len(keys) == len(set(keys)), "no (image, condition) twice"
    assert sorted(keys) == sorted((p, c or "") for p in paths for c in CONDITIONS), "none missing"
    for p, c, v in rows:
        i, k = paths.index(str(p)), CONDITIONS.index(str(c) or None)
        assert np.array_equal(np.asarray(v, dtype=np.float32), expected[i, k]), (p, c)
