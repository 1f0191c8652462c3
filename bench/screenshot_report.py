"""Render the report page to a PNG in headless Chromium (Debian's ``chromium``; playwright drives it, nothing is
downloaded), e.g. the README's screenshot of the default run:

    python bench/screenshot_report.py docs/report.png [--report reports/index.html] [--width 1280]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def screenshot(index: Path, png: Path, width: int = 1280) -> list[str]:
    """Write a full-page screenshot of ``index`` to ``png``; return every URL the page requested."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("error: no 'chromium' on PATH (apt-get install chromium)")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(index.resolve().as_uri(), wait_until="load")
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png), full_page=True)
        browser.close()
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("png", type=Path, help="the screenshot to write")
    parser.add_argument("--report", type=Path, default=Path("reports/index.html"))
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    if not args.report.is_file():
        sys.exit(f"error: {args.report} not found (run 'dvc repro report' first)")
    requests = screenshot(args.report, args.png, args.width)
    print(
        f"{args.png}: {args.report} rendered, {len(requests)} requests, all local: "
        f"{all(u.startswith('file://') for u in requests)}"
    )


if __name__ == "__main__":
    main()
