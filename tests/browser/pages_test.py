"""dior serve's page and dior report's file in a real headless browser: Debian's Chromium, driven by
Playwright for Python (pointed at that Chromium: Playwright's own browser download cannot be fetched
here). Opens the page, chooses a setting, uploads an image, and checks that the neighbour thumbnails
of both conditions appear and load; asks a text query under a CLIP setting; opens the report and the evaluation page the same way.
Screenshots are written to --artifacts. Prints 'N passed, N failed' and exits non-zero on a failure."""
import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from playwright.sync_api import sync_playwright

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from patterns import pattern  # noqa: E402

CONDITIONS = ["texture type", "fabric type"]


def sample_store(a, work):
    """Generated images under real deepfashion names (so the reference's labels apply), embedded by the
    tiny model under two conditions, evaluated, and reported."""
    images = os.path.join(work, "datasets", "deepfashion")
    os.makedirs(images)
    with open(os.path.join(a.source_dir, "data", "reference", "deepfashion_metadata.csv")) as f:
        rows = list(csv.reader(f))[1:9]
    for i, row in enumerate(rows):
        pattern(40 + 6 * i, 48, i).save(os.path.join(images, row[0]), format="PNG")
    db, ev = os.path.join(work, "e.db"), os.path.join(work, "eval")
    model = ["-m", os.path.join(a.tiny, "text.gguf"), "--mmproj", os.path.join(a.tiny, "mmproj.gguf"), "-t", "2"]
    conds = sum((["-c", c] for c in CONDITIONS), [])
    subprocess.run([a.dior, "embed", *model, "--dataset", "deepfashion", "--datasets-dir",
                    os.path.join(work, "datasets"), *conds, "-o", db], check=True, capture_output=True)
    subprocess.run([a.dior, "eval", "--db", db, "-o", ev, "--no-clustering"], check=True, capture_output=True)
    report = os.path.join(work, "report.html")
    subprocess.run([a.dior, "report", "--db", db, "--eval", ev, "-o", report, "--queries", "2", "-k", "4"],
                   check=True, capture_output=True)
    # a CLIP setting of the same images (after the evaluation and the report: they stay as they were)
    subprocess.run([a.dior, "embed", "--method", "clip", "--clip-model", a.clip, "-t", "2", "--dataset", "deepfashion",
                    "--datasets-dir", os.path.join(work, "datasets"), "-o", db], check=True, capture_output=True)
    return db, ev, report


def start_server(a, db, ev, work):
    log = open(os.path.join(work, "serve.log"), "w+")
    p = subprocess.Popen([a.dior, "serve", "--db", db, "--eval", ev, "--port", "0", "-t", "2"], stdout=log,
                         stderr=subprocess.STDOUT)
    for _ in range(300):
        log.seek(0)
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read())
        if m:
            return p, f"http://127.0.0.1:{m.group(1)}/"
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    log.seek(0)
    raise RuntimeError("dior serve did not start: " + log.read())


def all_loaded(page, selector):
    return page.eval_on_selector_all(selector, "els => els.length > 0 && els.every(e => e.complete && e.naturalWidth > 0)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dior", required=True)
    ap.add_argument("--tiny", required=True)
    ap.add_argument("--clip", required=True, help="a CLIP GGUF (tools/convert-clip) for the text query")
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    os.makedirs(a.artifacts, exist_ok=True)
    db, ev, report = sample_store(a, a.work)
    upload = os.path.join(a.work, "upload.png")
    pattern(64, 52, 13).save(upload)

    passed, failed = 0, 0

    def check(name, cond, detail=""):
        nonlocal passed, failed
        if cond:
            passed += 1
            print(f"ok    {name}")
        else:
            failed += 1
            print(f"FAIL  {name} {detail}")

    server, url = start_server(a, db, ev, a.work)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=a.chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            # the page: choose the setting, upload an image, see the neighbours of both conditions
            page.goto(url)
            page.wait_for_function("document.querySelectorAll('#group option').length > 0", timeout=30000)
            options = page.eval_on_selector_all("#group option", "els => els.map(e => e.textContent)")
            dior_group = [i for i, o in enumerate(options) if "texture type" in o and "fabric type" in o]
            clip_group = [i for i, o in enumerate(options) if o.startswith("clip")]
            check("the page lists the stored setting groups", len(options) == 2 and len(dior_group) == 1
                  and len(clip_group) == 1, str(options))
            page.select_option("#group", index=dior_group[0])
            check("no text query for a DIOR setting", page.eval_on_selector("#text-label", "e => e.hidden"))
            page.fill("#k", "4")
            page.set_input_files("#upload", upload)
            page.click("#search")
            page.wait_for_function("document.querySelectorAll('img.neighbor').length >= 8", timeout=120000)
            page.wait_for_function(
                "[...document.querySelectorAll('img.neighbor')].every(e => e.complete && e.naturalWidth > 0)",
                timeout=30000)
            heads = page.eval_on_selector_all(".column h2", "els => els.map(e => e.textContent)")
            check("both conditions side by side", sorted(heads) == sorted(CONDITIONS), str(heads))
            check("4 neighbour thumbnails per condition, all loaded",
                  page.eval_on_selector_all("img.neighbor", "els => els.length") == 8 and all_loaded(page, "img.neighbor"))
            notes = page.eval_on_selector_all(".column .note", "els => els.map(e => e.textContent)")
            check("the upload was embedded now", all("embedded now" in n for n in notes), str(notes))
            check("no script error on the page", not errors, str(errors))
            page.screenshot(path=os.path.join(a.artifacts, "serve-page.png"), full_page=True)

            # a stored query, chosen from the list
            page.set_input_files("#upload", [])
            page.select_option("#stored", index=2)
            page.click("#search")
            # the click empties the results before the answer arrives, and every() holds on an empty
            # list: wait for both columns and all their thumbnails, not for "no column says otherwise"
            page.wait_for_function("(() => { const n = [...document.querySelectorAll('.column .note')];"
                                   " return n.length == 2 && n.every(e => e.textContent.includes('stored query')); })()",
                                   timeout=60000)
            page.wait_for_function(
                "(() => { const i = [...document.querySelectorAll('img.neighbor')];"
                " return i.length == 8 && i.every(e => e.complete && e.naturalWidth > 0); })()",
                timeout=30000)
            check("a stored query is searched by its stored vector",
                  page.eval_on_selector_all("img.neighbor", "els => els.length") == 8 and all_loaded(page, "img.neighbor"))

            # a text query under the CLIP setting: the neighbours `dior search --text` finds
            text = "a photo of a striped dress"
            page.set_input_files("#upload", [])
            page.select_option("#group", index=clip_group[0])
            page.wait_for_function("!document.getElementById('text-label').hidden", timeout=10000)
            page.fill("#text", text)
            page.click("#search")
            page.wait_for_function("(() => { const n = [...document.querySelectorAll('.column .note')];"
                                   " return n.length == 1 && n[0].textContent.includes('text features'); })()",
                                   timeout=60000)
            page.wait_for_function(
                "(() => { const i = [...document.querySelectorAll('img.neighbor')];"
                " return i.length == 4 && i.every(e => e.complete && e.naturalWidth > 0); })()",
                timeout=30000)
            shown = page.eval_on_selector_all("img.neighbor", "els => els.map(e => e.title.split(' · ')[0])")
            cli = subprocess.run([a.dior, "search", "--db", db, "--text", text, "-k", "4", "--json"], check=True,
                                 capture_output=True, text=True)
            want = [os.path.basename(n["path"]) for n in json.loads(cli.stdout)["results"][0]["neighbors"]]
            check("a text query shows the neighbours of dior search --text", shown == want, f"{shown} vs {want}")
            check("the text is shown as the query",
                  text in page.eval_on_selector(".text-query", "e => e.textContent"))
            page.screenshot(path=os.path.join(a.artifacts, "serve-text-query.png"), full_page=True)

            # the evaluation page of the service
            page.goto(url + "eval")
            check("the evaluation page shows the table", page.locator("table.results tbody tr").count() == 1)
            check("and a chart per aspect", page.locator("svg.chart").count() == 2)

            # the report, opened as a file
            page.goto("file://" + os.path.abspath(report))
            check("the report's results table", page.locator("table.results th.method").count() == 1)
            check("the report's charts", page.locator("svg.chart").count() == 2)
            n_imgs = page.locator("img.thumb").count()
            check("the report's thumbnails all load", n_imgs == 2 * 2 * 5 and all_loaded(page, "img.thumb"),
                  f"{n_imgs} images")
            page.screenshot(path=os.path.join(a.artifacts, "report.png"), full_page=True)
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            check("dior serve stops on SIGTERM", server.wait(timeout=20) == 0)
        except subprocess.TimeoutExpired:
            server.kill()
            check("dior serve stops on SIGTERM", False, "still running after 20 s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
