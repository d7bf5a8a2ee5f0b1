"""dior.embed: the library's run from Python. A store equal to the dior command's; Ctrl-C (a real
SIGINT) or an exception in the progress callback stops after the current image, and the same call
again completes a store bit-equal to one uninterrupted run; bad images come back per image; rows
to pandas and Arrow."""
import os
import signal
import subprocess

import numpy as np
import pytest

import dior

CONDITIONS = [None, "car color"]


def store_content(path):
    """setting name -> (paths, vectors), as the store holds them."""
    st = dior.Store.open(path)
    out = {}
    for s in st.settings():
        x, paths = st.vectors(s["id"])
        out[s["name"]] = (paths, x)
    return out


def assert_same_store(a, b):
    ca, cb = store_content(a), store_content(b)
    assert sorted(ca) == sorted(cb)
    for name in ca:
        assert ca[name][0] == cb[name][0], name
        assert np.array_equal(ca[name][1], cb[name][1]), name  # bit-equal


@pytest.fixture(scope="module")
def folder(images, tmp_path_factory):
    """A folder of 6 images (the fixture's 4 and 2 more of them under other names)."""
    d = tmp_path_factory.mktemp("run-images")
    for i, p in enumerate(images + images[:2]):
        os.symlink(p, d / f"im{i}.png")
    return str(d)


@pytest.fixture(scope="module")
def whole(tiny, folder, tmp_path_factory):
    db = str(tmp_path_factory.mktemp("whole") / "whole.db")
    r = dior.embed(folder, CONDITIONS, store=db, model=tiny[0], mmproj=tiny[1], threads=2, progress=False)
    assert (r.images, r.embedded, r.skipped, r.failed) == (6, 6, 0, 0)
    return db


def test_the_store_equals_the_commands(tiny, folder, whole, dior_bin, tmp_path):
    db = str(tmp_path / "cli.db")
    subprocess.run([dior_bin, "embed", "-m", tiny[0], "--mmproj", tiny[1], "-t", "2", folder, "--unconditional",
                    "-c", "car color", "-o", db], check=True, capture_output=True)
    assert_same_store(whole, db)


def test_a_second_run_skips_everything(tiny, folder, whole, tmp_path):
    db = str(tmp_path / "again.db")
    import shutil

    shutil.copy(whole, db)
    seen = []
    r = dior.embed(folder, CONDITIONS, store=db, model=tiny[0], mmproj=tiny[1], threads=2,
                   progress=lambda done, total, path: seen.append((done, total)))
    assert (r.embedded, r.skipped) == (0, 6)
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)


@pytest.mark.parametrize("how", ["sigint", "exception"])
def test_an_interrupted_run_resumes_to_the_same_store(tiny, folder, whole, tmp_path, how):
    db = str(tmp_path / "part.db")
    done_before_stop = []

    class Stop(Exception):
        pass

    def stop_after_two(done, total, path):
        if done == 2:
            done_before_stop.append(done)
            if how == "sigint":
                os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: Python raises KeyboardInterrupt
            else:
                raise Stop()

    with pytest.raises(KeyboardInterrupt if how == "sigint" else Stop):
        dior.embed(folder, CONDITIONS, store=db, model=tiny[0], mmproj=tiny[1], threads=2, progress=stop_after_two)
    assert done_before_stop == [2]
    part = store_content(db)
    assert all(len(paths) == 2 for paths, _ in part.values())  # the two committed, nothing more
    r = dior.embed(folder, CONDITIONS, store=db, model=tiny[0], mmproj=tiny[1], threads=2, progress=False)
    assert (r.embedded, r.skipped, r.failed) == (4, 2, 0)
    assert_same_store(whole, db)


def test_failures_come_back_per_image_and_the_run_goes_on(tiny, images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    missing = str(tmp_path / "missing.jpg")
    r = dior.embed([images[0], str(bad), missing, images[1]], "car color", store=tmp_path / "f.db", model=tiny[0],
                   mmproj=tiny[1], threads=2, progress=lambda *a: None)
    assert (r.embedded, r.failed) == (2, 2)
    assert [p for p, _ in r.failures] == [str(bad), missing]
    assert all(reason for _, reason in r.failures)
    x, paths = dior.Store.open(r.store).vectors(r.settings[0]["id"])
    assert sorted(paths) == sorted([images[0], images[1]]) and x.shape == (2, r.width)


def test_bad_options_raise_before_anything_is_written(tiny, images, tmp_path):
    db = tmp_path / "nothing.db"
    with pytest.raises(dior.Error, match="--image-max-size -3"):
        dior.embed(images, store=db, model=tiny[0], mmproj=tiny[1], image_max_size=-3, progress=False)
    with pytest.raises(dior.Error, match="unknown option colour"):
        dior.embed(images, store=db, model=tiny[0], mmproj=tiny[1], colour="red", progress=False)
    with pytest.raises(dior.Error, match="option threads has the wrong type"):
        dior.embed(images, store=db, model=tiny[0], mmproj=tiny[1], threads="two", progress=False)
    with pytest.raises(dior.Error, match="--method painting"):
        dior.embed(images, store=db, model=tiny[0], mmproj=tiny[1], method="painting", progress=False)
    with pytest.raises(dior.Error, match="no conditions given"):
        dior.embed(images, [], store=db, model=tiny[0], mmproj=tiny[1], progress=False)
    with pytest.raises(dior.Error, match="no images given"):
        dior.embed([], store=db, model=tiny[0], mmproj=tiny[1], progress=False)
    assert not db.exists()


def test_the_default_progress_is_a_tqdm_bar(tiny, images, tmp_path, capfd):
    dior.embed(images[:2], None, store=tmp_path / "p.db", model=tiny[0], mmproj=tiny[1], threads=2)
    err = capfd.readouterr().err
    assert "2/2" in err and "img" in err


def test_rows_to_pandas_and_arrow(whole):
    st = dior.Store.open(whole)
    df = st.to_pandas()
    assert len(df) == 12 and set(df["condition"].dropna()) == {"car color"}
    first = st.settings()[0]
    x, paths = st.vectors(first["id"])
    one = st.to_pandas(first["id"])
    assert list(one["path"]) == paths
    assert np.array_equal(np.stack(one["vector"].to_numpy()), x)
    table = st.to_arrow(first["id"])
    assert table.num_rows == len(paths) and table.column("path").to_pylist() == paths
    assert np.array_equal(np.array(table.column("vector").to_pylist(), dtype=np.float32), x)
    assert str(table.schema.field("vector").type).startswith("fixed_size_list<item: float>")
    with pytest.raises(dior.Error, match="no setting 999"):
        st.to_pandas(999)
