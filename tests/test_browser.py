"""The claim report in a real headless browser (DESIGN §9): the table renders, every plot decodes,
and the page is not blank, opened from file:// with no server and no network.

Needs Chromium (Debian: `apt-get install -y chromium`). Skips with a reason where none is
installed, except under CI (the CI environment variable set), where a missing browser fails.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.plots import effects_strip
from reports import build
from tests.report_helpers import family, result

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = "apt-get install -y chromium"
TIMEOUT_S = 120


def find_browser() -> str:
    """Path of a Chromium; UPLAB_CHROMIUM overrides the search."""
    found = os.environ.get("UPLAB_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if found:
        return found
    message = f"chromium not found (looked for {', '.join(BROWSERS)}; install: {INSTALL})"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{message}; CI must run the browser check", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> str:
    return find_browser()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, int, int]:
    """A report with two primary results, one exploratory, three plots and the forest plot;
    returns (dir, claims, images)."""
    out = tmp_path_factory.mktemp("report")
    contiguous = [0.31, 0.22, 0.41, 0.18, 0.27, 0.35, 0.25, 0.3]
    records = [
        *family([result("dups_more_responsive", effects=contiguous, plots=True,
                        plots_extra={"second plot": effects_strip(contiguous[:4])}),
                 result("o_proj_less_sensitive", effects=[0.3, -0.2, 0.1, -0.4, 0.2, -0.1, 0.05, -0.3])]),
        result("dups_more_responsive", "interleaved", effects=[0.21, 0.12, 0.3, 0.08, 0.17, 0.25, 0.15, 0.2],
               plots=True),
    ]
    build.write_report(records, out, {"git_commit": None, "started_at": "now", "wall_time_s": 1.0,
                                      "devices": ["cpu"], "seeds": list(range(8)), "runs": [],
                                      "packages": {}})
    return out, len(records), 4


def run_browser(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"{browser} exited {e.returncode}: {e.stderr[-2000:]}", pytrace=False)


def test_table_rows_and_images_render(browser, report, tmp_path):
    out, n_claims, n_images = report
    url = (out / "index.html").as_uri()
    # --virtual-time-budget lets the load event (and the page's image check) run before the dump.
    dom = run_browser(browser, tmp_path / "profile", "--virtual-time-budget=10000",
                      "--dump-dom", url).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("data-images-total") == str(n_images), attrs
    assert attrs.get("data-images-ok") == str(n_images), attrs  # every <img> has naturalWidth > 0
    rows = re.findall(r'<tr data-claim="([^"]+)"[^>]*data-primary="(true|false)"', dom)
    assert rows == [("dups_more_responsive[contiguous]", "true"), ("o_proj_less_sensitive[contiguous]", "true"),
                    ("dups_more_responsive[interleaved]", "false")]
    assert len(rows) == n_claims
    assert re.search(r'<figure class="forest" data-rows="2">\s*<img', dom)


def test_screenshot_is_not_blank(browser, report, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    out, _, _ = report
    shot = tmp_path / "shot.png"
    run_browser(browser, tmp_path / "profile", "--hide-scrollbars", "--window-size=1200,2400",
                f"--screenshot={shot}", (out / "index.html").as_uri())
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1200, 2400)
        colours = rgb.getcolors(maxcolors=1 << 20)
    background = max(colours)[0]
    total = rgb.size[0] * rgb.size[1]
    # Text, table borders and plots: a rendered report is far from one flat colour.
    assert len(colours) > 50 and total - background > 0.02 * total


@pytest.mark.parametrize("ci, outcome", [(None, pytest.skip.Exception), ("false", pytest.skip.Exception),
                                         ("true", pytest.fail.Exception), ("1", pytest.fail.Exception)])
def test_missing_browser_skips_locally_and_fails_in_ci(monkeypatch, ci, outcome):
    monkeypatch.delenv("UPLAB_CHROMIUM", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(BaseException, match="chromium not found") as raised:  # a skip is one too
        find_browser()
    assert raised.type is outcome
