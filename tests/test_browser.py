"""The report and an executed notebook's HTML page opened in a real browser: headless
Chromium (Debian's ``chromium``, which ``make test`` installs when it is missing) driven by
Playwright. Each page must load with no failed request, no request leaving the file (no CDN,
no network: only the file itself and its embedded ``data:`` images), no console error and
every image decoded; a screenshot of each is kept under ``outputs/browser/``.

Without Chromium the test is skipped, unless ``MER_REQUIRE_BROWSER`` is set (``.ci/run``
sets it): then a missing browser is a failure, not a skip.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from mer.paths import outputs_dir

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("MER_REQUIRE_BROWSER"),
                                reason="no chromium on this machine (make test installs Debian's chromium)")


def open_in_chromium(path: Path, screenshot: Path) -> dict:
    """Loads ``path`` from disk in headless Chromium; what it requested, what failed, the
    console errors, each image's decoded size, and a screenshot of the first screen."""
    from playwright.sync_api import sync_playwright
    assert CHROMIUM, "chromium is not installed (Debian package chromium; make test installs it)"
    seen = {"requests": [], "failed": [], "errors": []}
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})  # a laptop screen
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.on("requestfailed", lambda r: seen["failed"].append(f"{r.url}: {r.failure}"))
            page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_timeout(300)  # anything a script would fetch after load
            seen["images"] = page.evaluate(
                "() => Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, "
                "width: i.naturalWidth}))")
            seen["title"] = page.title()
            seen["overflow"] = page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return seen


def assert_clean(seen: dict, page: Path) -> None:
    outside = [u for u in seen["requests"] if not (u == page.as_uri() or u.startswith("data:"))]
    assert not outside, f"{page} requested {outside}"
    assert not seen["failed"], f"{page}: failed requests {seen['failed']}"
    assert not seen["errors"], f"{page}: console errors {seen['errors']}"
    assert seen["images"], f"{page} shows no image"
    broken = [i["alt"] for i in seen["images"] if not i["complete"] or i["width"] == 0]
    assert not broken, f"{page}: images not decoded: {broken}"


def _executed_notebook(folder: Path) -> Path:
    """A notebook with what the study's notebooks show (markdown with TeX, a table, a figure,
    a progress bar, printed text), executed through papermill into ``folder``; returns its
    rendered HTML page."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    from mer.study import execute, to_html
    nb = new_notebook(cells=[
        new_markdown_cell("# A run\nUF1 is the mean of $2TP / (2TP + FP + FN)$ over classes."),
        new_code_cell("n = 3", metadata={"tags": ["parameters"]}),
        new_code_cell("import pandas as pd\nfrom mer.progress import tqdm\nfor _ in tqdm(range(n), desc='folds'):\n"
                      "    pass\npd.DataFrame({'fold': range(n), 'uf1': [0.5, 0.6, 0.7][:n]})"),
        new_code_cell("%matplotlib inline\nimport matplotlib.pyplot as plt\nfrom mer.report import plots\n"
                      "fig, ax = plt.subplots()\n"
                      "ax.plot([1, 2, 3], [0.4, 0.5, 0.6])\nplots.add_stamp(fig)\nplt.show()\nprint('done')"),
    ], metadata={"kernelspec": {"name": "mer", "display_name": "Python (mer)", "language": "python"}})
    source = folder / "99_page.ipynb"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(source))
    executed = folder / "synth" / "page" / "99_page.ipynb"
    execute(source, executed, {"n": 3}, progress=False)
    return to_html(executed)


def _report(outputs: Path, notebook_html: Path) -> Path:
    """The report of two runs on one dataset (figures, a linked executed notebook)."""
    import matplotlib.pyplot as plt
    import pandas as pd
    from mer.report import plots
    from mer.report.html import build_report
    from mer.train.metrics import scores
    classes = ["negative", "positive", "surprise"]
    y = np.arange(120) % 3
    rng = np.random.default_rng(0)
    for method, acc in (("baseline", 0.5), ("page", 0.8)):
        folder = outputs / "synth" / method
        folder.mkdir(parents=True, exist_ok=True)
        pred = np.where(rng.random(len(y)) < acc, y, (y + 1) % 3)
        subjects = [f"sub{i // 10:02d}" for i in range(len(y))]
        pd.DataFrame({"fold": subjects, "subject": subjects, "clip": [f"c{i}" for i in range(len(y))],
                      "y_true": y, "y_pred": pred}).to_csv(folder / "predictions.csv", index=False)
        m = scores(y, pred, classes)
        fig = plots.confusion_matrix(m["confusion"], classes)
        plots.save(fig, folder, "confusion")
        plt.close(fig)
        (folder / "metrics.json").write_text(json.dumps({
            "method": method, "dataset": "synth", "protocol": "synth-3", "acc": m["acc"], "uf1": m["uf1"],
            "uar": m["uar"], "labels": classes, "per_class": m["per_class"], "confusion": m["confusion"],
            "n_clips": len(y), "n_subjects": 12, "runtime_s": 1.0, "device": "cpu", "machine": "test CPU",
            "date": "2026-12-04"}))
    assert notebook_html.parent == outputs / "synth" / "page"
    return build_report(outputs)


def test_report_and_notebook_page_load_offline_in_chromium(tmp_path):
    outputs = tmp_path / "outputs"
    notebook_html = _executed_notebook(outputs)
    text = notebook_html.read_text()
    assert "IProgress" not in text and not re.search(r"""(src|href)=["']?https?://""", text)
    assert not re.search(r"cdnjs|jsdelivr|unpkg|require\.min\.js|MathJax\.js", text)
    report = _report(outputs, notebook_html)
    assert "synth/page/99_page.html" in report.read_text()
    shots = outputs_dir() / "browser"
    for page, shot in ((report, shots / "report.png"), (notebook_html, shots / "notebook.png")):
        seen = open_in_chromium(page, shot)
        assert_clean(seen, page)
        assert shot.is_file() and shot.stat().st_size > 10_000, shot
    seen = open_in_chromium(report, shots / "report.png")
    assert seen["title"].startswith("MER study report")
    assert not seen["overflow"], "the report is wider than a 1366 px laptop screen"


def test_a_page_that_fetches_from_the_network_is_caught(tmp_path):
    """The check itself: nbconvert's stock lab template loads require.js and MathJax from a CDN,
    which this machine (and a reader offline) cannot reach or must not."""
    page = tmp_path / "cdn.html"
    page.write_text("<!doctype html><html><head><title>t</title>"
                    "<script src='https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js'></script>"
                    "</head><body><img alt='x' src='missing.png'></body></html>")
    seen = open_in_chromium(page, tmp_path / "cdn.png")
    with pytest.raises(AssertionError, match="requested"):
        assert_clean(seen, page)
    assert any("missing.png" in u for u in seen["requests"])
