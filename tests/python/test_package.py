"""The Python package (pip install .): vectors equal the dior command's bit for bit on the tiny model,
for every kind of image it takes; bad input raises dior.Error with the command line's messages;
the store and the evaluation read as the command writes them; the GIL is free while it computes;
hf= downloads from a loopback hub (dior-fake-hub) with progress, and stops when asked."""
import io
import os
import subprocess
import threading

import numpy as np
import pytest
from PIL import Image

import dior

CONDITIONS = [None, "car color"]


@pytest.fixture(scope="module")
def emb(tiny):
    return dior.Embedder(*tiny, threads=2)


@pytest.fixture(scope="module")
def cli_vectors(tiny, dior_bin, images, tmp_path_factory):
    """Per condition: path -> vector, as dior embed stores them."""
    db = str(tmp_path_factory.mktemp("cli") / "e.db")
    subprocess.run([dior_bin, "embed", "-m", tiny[0], "--mmproj", tiny[1], "-t", "2", *images, "--unconditional",
                    "-c", "car color", "-o", db], check=True, capture_output=True)
    st = dior.Store.open(db)
    out = {}
    for s in st.settings():
        x, paths = st.vectors(s["id"])
        out[s["condition"]] = dict(zip(paths, x))
    return out


def test_vectors_equal_the_command_bit_for_bit(emb, images, cli_vectors):
    x = emb.embed(images, CONDITIONS)
    assert x.shape == (len(images), 2, emb.n_embd) and x.dtype == np.float32
    for c, cond in enumerate(CONDITIONS):
        for i, p in enumerate(images):
            assert np.array_equal(x[i, c], cli_vectors[cond][p]), (cond, p)


def test_every_image_kind_gives_the_same_vector(emb, images):
    by_path = emb.embed(images, "car color")
    for i, p in enumerate(images):
        data = open(p, "rb").read()
        pil = Image.open(p)
        arr = np.asarray(pil.convert("RGB"))
        for item in (data, pil, arr, __import__("pathlib").Path(p)):
            v = emb.embed(item, "car color")
            assert v.shape == (emb.n_embd,)
            assert np.array_equal(v, by_path[i]), (p, type(item))
    # a JPEG as bytes decodes as the file would
    buf = io.BytesIO()
    Image.open(images[0]).save(buf, format="JPEG")
    assert emb.embed(buf.getvalue(), None).shape == (emb.n_embd,)


def test_bad_input_raises_clear_errors(emb, tiny, images, tmp_path):
    with pytest.raises(dior.Error, match="nothing.png"):
        emb.embed(str(tmp_path / "nothing.png"), None)
    with pytest.raises(dior.Error, match=r"image 1 \(bytes\)"):
        emb.embed([images[0], b"not an image at all"], None)
    with pytest.raises(dior.Error, match="uint8"):
        emb.embed(np.zeros((8, 8, 3), dtype=np.float32), None)
    with pytest.raises(dior.Error, match="not an image"):
        emb.embed([3.5], None)
    with pytest.raises(dior.Error, match="str or None"):
        emb.embed(images[0], ["ok", 7])
    with pytest.raises(dior.Error, match="missing.gguf"):
        dior.Embedder(str(tmp_path / "missing.gguf"), tiny[1])
    with pytest.raises(dior.Error):
        dior.Embedder(*tiny, layer=999)
    with pytest.raises(dior.Error, match="prompt"):
        dior.Embedder(*tiny, prompt="whisper")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database")
    with pytest.raises(dior.Error):
        dior.Store.open(str(bad))
    assert isinstance(dior.Error("x"), RuntimeError)


def test_evaluate_matches_dior_eval_semantics():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.01, (5, 4)) + 1, rng.normal(0, 0.01, (5, 4)) - 1]).astype(np.float32)
    r = dior.evaluate(x, ["a"] * 5 + ["b"] * 5)
    assert r["mean_average_precision_at_r"] == pytest.approx(1.0)
    assert r["precision_at_1"] == pytest.approx(1.0)
    assert r["NMI"] == pytest.approx(1.0) and r["n_queries"] == 10
    # a lone label is left out of the retrieval metrics, as pytorch-metric-learning does
    assert dior.evaluate(x, ["a"] * 5 + ["b"] * 4 + ["c"], clustering=False)["n_queries"] == 9
    with pytest.raises(dior.Error, match="labels"):
        dior.evaluate(x, ["a"])


def test_the_gil_is_free_while_embedding(emb, images):
    started, done = threading.Event(), threading.Event()
    result = {}

    def work():
        started.set()
        result["x"] = emb.embed(images * 4, CONDITIONS)  # one call into C++, about a second
        done.set()

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    spins = 0
    while not done.is_set():  # held by the other thread, the GIL would stop this loop until it returns
        spins += 1
    t.join()
    assert result["x"].shape[0] == len(images) * 4
    assert spins > 100000, f"only {spins} turns of this loop while the other thread computed"


REPO = "test/tiny-vl"
HUB_FILES = {"Qwen2.5-VL-Tiny-Q4_K_M.gguf": 0, "mmproj-Qwen2.5-VL-Tiny-f16.gguf": 1}  # name -> index in tiny


@pytest.fixture
def fake_hub(tiny, tmp_path, monkeypatch):
    """The tiny model served as a Hugging Face repository; an empty cache of this test's own."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, i in HUB_FILES.items():
        os.symlink(os.path.abspath(tiny[i]), repo / name)
    hub = subprocess.Popen([os.environ["DIOR_TEST_FAKE_HUB"], "--repo", f"{REPO}={repo}"], stdout=subprocess.PIPE,
                           text=True)
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.stdout.readline().strip())
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        for v in ("HF_HUB_OFFLINE", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HOME"):
            monkeypatch.delenv(v, raising=False)
        yield tmp_path / "cache"
    finally:
        hub.terminate()
        hub.wait()


def test_hub_download_reports_progress_and_gives_the_same_model(fake_hub, tiny, images, emb):
    calls = []
    fetched = dior.Embedder(hf=REPO, threads=2, progress=lambda f, d, t: calls.append((f, d, t)))
    assert {c[0] for c in calls} == set(HUB_FILES)
    for name, i in HUB_FILES.items():
        size = os.path.getsize(tiny[i])
        mine = [c for c in calls if c[0] == name]
        assert all(t == size for _, _, t in mine)
        done = [d for _, d, _ in mine]
        assert done == sorted(done) and done[-1] == size
    assert np.array_equal(fetched.embed(images[0], "car color"), emb.embed(images[0], "car color"))

    again = []  # the cache has both: nothing is transferred
    dior.Embedder(hf=REPO, threads=2, progress=lambda f, d, t: again.append((f, d, t)))
    assert all(d == t for _, d, t in again)


def test_an_exception_in_progress_stops_the_download_and_is_raised(fake_hub):
    def stop(file, done, total):
        raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        dior.Embedder(hf=REPO, progress=stop)
    assert all(b.name.endswith(".incomplete") for b in fake_hub.rglob("blobs/*"))  # stopped before any file
    dior.Embedder(hf=REPO, progress=False)  # a later call finishes it
    assert not list(fake_hub.rglob("blobs/*.incomplete"))


def test_the_default_shows_each_download_on_stderr(fake_hub, capfd):
    dior.Embedder(hf=REPO)
    err = capfd.readouterr().err
    for name in HUB_FILES:
        assert f"download: {name} " in err
    assert "MiB/s" in err


def test_bad_arguments_raise_dior_error_with_the_commands_messages(tiny, images, emb, tmp_path):
    with pytest.raises(dior.Error, match=r"-t/--threads -5: use a count"):
        dior.Embedder(*tiny, threads=-5)
    with pytest.raises(dior.Error, match=r"--gpu-layers -2"):
        dior.Embedder(*tiny, gpu_layers=-2)
    with pytest.raises(dior.Error, match="--ctx-size must be at least 16"):
        dior.Embedder(*tiny, ctx_size=4)
    # text with no UTF-8 form: a clear error, not RuntimeError('std::bad_cast')
    with pytest.raises(dior.Error, match="not valid text"):
        emb.embed(images[0], "\ud800")
    with pytest.raises(dior.Error, match="not valid text"):
        emb.embed(images[0], [None, "car \udcff color"])
    with pytest.raises(dior.Error, match="option conditions"):
        dior.embed(images, ["\ud800"], store=tmp_path / "s.db", model=tiny[0], mmproj=tiny[1], progress=False)
    with pytest.raises(dior.Error, match=r"-t/--threads -5"):
        dior.embed(images, store=tmp_path / "s.db", model=tiny[0], mmproj=tiny[1], threads=-5, progress=False)
    assert not (tmp_path / "s.db").exists()


def test_image_batch_gives_the_vectors_of_one_image_at_a_time(tiny, images, emb, tmp_path):
    """Embedder(image_batch=3) and dior.embed(image_batch=2) evaluate images of different sizes
    together: the vectors of one image at a time, to rounding (relative L2 1e-5)."""
    conds = [None, "car color", "movie genre"]
    one = emb.embed(images, conds)
    many = dior.Embedder(*tiny, threads=2, image_batch=3).embed(images, conds)
    assert many.shape == one.shape
    rel = np.linalg.norm(many - one, axis=-1) / np.linalg.norm(one, axis=-1)
    assert rel.max() <= 1e-5
    r = dior.embed(images, conds, store=tmp_path / "b.db", model=tiny[0], mmproj=tiny[1], threads=2,
                   image_batch=2, progress=False)
    assert (r.embedded, r.failed) == (len(images), 0)
    st = dior.Store.open(str(tmp_path / "b.db"))
    for s in st.settings():
        x, paths = st.vectors(s["id"])
        c = conds.index(s["condition"])
        for row, p in zip(x, paths):
            ref = one[images.index(p), c]
            assert np.linalg.norm(row - ref) / np.linalg.norm(ref) <= 1e-5
    with pytest.raises(dior.Error, match="--image-batch 0: use a count of images from 1 to 256, or auto"):
        dior.Embedder(*tiny, image_batch=0)
    with pytest.raises(dior.Error, match="--image-batch lots"):
        dior.embed(images, store=tmp_path / "c.db", model=tiny[0], mmproj=tiny[1], image_batch="lots",
                   progress=False)


def test_errors_return_gives_per_image_failures_and_the_other_vectors(emb, images, tmp_path):
    from PIL import Image
    thin = tmp_path / "thin.png"  # decodes, but the model cannot take it (too thin for its patches)
    Image.new("RGB", (402, 2), (200, 10, 10)).save(thin)
    items = [images[0], b"not an image at all", str(tmp_path / "nothing.png"), 3.5, images[1], str(thin)]
    out, failures = emb.embed(items, ["car color", None], errors="return")
    assert out.shape == (6, 2, emb.n_embd) and out.dtype == np.float32
    assert [i for i, _ in failures] == [1, 2, 3, 5], failures
    messages = dict(failures)
    assert "image 1 (bytes)" in messages[1] and "nothing.png" in messages[2] and "not an image" in messages[3]
    assert "thin.png" in messages[5]
    for i in (1, 2, 3, 5):
        assert np.isnan(out[i]).all()
    want = emb.embed([images[0], images[1]], ["car color", None])
    assert np.array_equal(out[[0, 4]], want)  # the good images' vectors, bit for bit
    # a single image and a single condition keep their shapes; nothing failed: an empty list
    one, none_failed = emb.embed(images[0], "car color", errors="return")
    assert one.shape == (emb.n_embd,) and none_failed == []
    with pytest.raises(dior.Error, match="thin.png"):
        emb.embed([images[0], str(thin)], None)  # the default still raises
    with pytest.raises(dior.Error, match="errors='ignore'"):
        emb.embed(images[0], None, errors="ignore")
