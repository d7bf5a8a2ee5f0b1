"""The README's quick start (scripts/quickstart.sh), offline: a loopback hub (dior-fake-hub) serves
the tiny random-weight model as a Qwen2.5-VL GGUF repository and a CUB_200_2011.tgz in miniature
made of generated JPEGs; the script downloads both, embeds its sample and evaluates it. Checks what
it leaves behind, then runs it again with the hub gone and HF_HUB_OFFLINE=1 (everything cached:
nothing is fetched or embedded again)."""
import argparse
import csv
import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile

from PIL import Image

REPO = "test-org/Qwen2.5-VL-Tiny-GGUF"


def jpeg(seed):
    img = Image.new("RGB", (48 + seed % 7, 40))
    px = img.load()
    for y in range(img.height):
        for x in range(img.width):
            px[x, y] = ((x * (seed + 3)) % 256, (y * (seed + 5)) % 256, (seed * 37) % 256)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def cub_tgz(path):
    """102 class folders of 7 images: the download keeps the last 100 (3-102), the sample takes 4 images
    of the first 3 species in byte order of the names (Bird_100, Bird_101, Bird_102)."""
    with tarfile.open(path, "w:gz") as tar:
        for c in range(1, 103):
            for i in range(7):
                name = f"CUB_200_2011/images/{c:03d}.Bird_{c}/Bird_{c}_000{i}_{c * 10 + i}.jpg"
                data = jpeg(c * 7 + i)
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dior", required=True)
    ap.add_argument("--fake-hub", required=True)
    ap.add_argument("--tiny", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)

    repo = os.path.join(a.work, "repo")
    os.makedirs(repo)
    os.symlink(os.path.join(a.tiny, "text.gguf"), os.path.join(repo, "Qwen2.5-VL-Tiny-Q4_K_M.gguf"))
    os.symlink(os.path.join(a.tiny, "mmproj.gguf"), os.path.join(repo, "mmproj-Qwen2.5-VL-Tiny-f16.gguf"))
    tgz = os.path.join(a.work, "CUB_200_2011.tgz")
    cub_tgz(tgz)
    sha = hashlib.sha256(open(tgz, "rb").read()).hexdigest()

    hub = subprocess.Popen([a.fake_hub, "--repo", f"{REPO}={repo}", "--file", f"CUB_200_2011.tgz={tgz}"],
                           stdout=subprocess.PIPE, text=True)
    failures = []

    def check(name, cond, detail=""):
        print(("ok    " if cond else "FAIL  ") + name + ("" if cond else " " + str(detail)))
        if not cond:
            failures.append(name)

    try:
        base = hub.stdout.readline().strip()
        out = os.path.join(a.work, "quickstart")
        env = dict(os.environ, DIOR_BIN=a.dior, DIOR_QUICKSTART_DIR=out, DIOR_QUICKSTART_MODEL=REPO,
                   DIOR_QUICKSTART_SPECIES="3", DIOR_QUICKSTART_PER_SPECIES="4",
                   DIOR_QUICKSTART_CUB_URL=base + "/files/CUB_200_2011.tgz", DIOR_QUICKSTART_CUB_SHA256=sha,
                   HF_ENDPOINT=base, HF_HUB_CACHE=os.path.join(a.work, "hf"))
        for k in ("HF_TOKEN", "HF_HOME", "HF_HUB_OFFLINE"):
            env.pop(k, None)
        script = os.path.join(a.source_dir, "scripts", "quickstart.sh")
        first = subprocess.run(["bash", script], env=env, capture_output=True, text=True, errors="replace")
        check("the quick start succeeds", first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:])

        images = sorted(os.listdir(os.path.join(out, "datasets", "cub200")))
        check("cub200 holds classes 3-102, flat", len(images) == 700 and images[0].startswith("Bird_100_")
              and not any(n.startswith(("Bird_1_", "Bird_2_")) for n in images), images[:3])
        sample = open(os.path.join(out, "sample.txt")).read().split()
        kinds = sorted({os.path.basename(p).rsplit("_", 2)[0] for p in sample})
        check("the sample: 4 images of each of 3 species", len(sample) == 12 and kinds == ["Bird_100", "Bird_101", "Bird_102"],
              (len(sample), kinds))
        snap = os.path.join(a.work, "hf", "models--test-org--Qwen2.5-VL-Tiny-GGUF", "snapshots")
        check("the model is in the Hugging Face cache", os.path.isdir(snap) and len(os.listdir(snap)) == 1)

        db = sqlite3.connect(os.path.join(out, "quickstart.db"))
        n_settings = db.execute("SELECT COUNT(*) FROM settings").fetchone()[0]
        n_vectors = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        paths = db.execute("SELECT model_path FROM settings").fetchall()
        check("two settings (no condition, bird species) of 12 vectors", n_settings == 2 and n_vectors == 24,
              (n_settings, n_vectors))
        check("the settings name the cached model file", all("models--test-org--Qwen2.5-VL-Tiny-GGUF" in p[0] for p in paths),
              paths)
        rows = list(csv.DictReader(open(os.path.join(out, "eval", "summary.csv"))))
        check("both settings evaluated on bird species",
              len(rows) == 2 and all(r.get("aspect") == "bird species" for r in rows), rows)
        check("the report is written", os.path.getsize(os.path.join(out, "report.html")) > 1000)

        # dior datasets check: 700 images of 100 species where the reference has 5924
        chk = subprocess.run([a.dior, "datasets", "check", "cub200", "--datasets-dir", os.path.join(out, "datasets")],
                             capture_output=True, text=True, errors="replace")
        check("datasets check reports the short dataset", chk.returncode == 2 and "INCOMPLETE, 700 images" in chk.stdout
              and "100 species" in chk.stdout, (chk.returncode, chk.stdout))

        # again, with the hub gone and offline: nothing downloaded, nothing embedded
        hub.terminate()
        hub.wait(timeout=20)
        env["HF_HUB_OFFLINE"] = "1"
        second = subprocess.run(["bash", script], env=env, capture_output=True, text=True, errors="replace")
        check("a second run succeeds", second.returncode == 0, second.stderr[-2000:])
        check("and finds the dataset in place", "already there" in second.stdout, second.stdout[-1000:])
        n_after = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        check("and embeds nothing again", n_after == 24, n_after)
    finally:
        if hub.poll() is None:
            hub.terminate()
            hub.wait(timeout=20)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
