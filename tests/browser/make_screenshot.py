"""Take the README screenshot: the area browser as the demo operator, on their kelurahan with its
RW polygons drawn, 1280x800. Run once after a visible change to the area browser:

    .venv/bin/python tests/browser/make_screenshot.py [--lang id|en] [--out docs/screenshot.png]

It starts the same throwaway live site as the browser tests (temporary SQLite demo database, no
map tiles, so no network) and drives Debian's chromium (/usr/bin/chromium) through Playwright.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _browser_support():
    # The live site and the login steps live in this folder's conftest.py; load it under its own name
    # (a plain `import conftest` could pick up tests/conftest.py instead).
    spec = importlib.util.spec_from_file_location("siskamling_browser_support", HERE / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=["id", "en"], default="id", help="interface language (default: id)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    args = parser.parse_args()
    support = _browser_support()
    if not Path(support.CHROMIUM).exists():
        print(f"{support.CHROMIUM} not found: apt-get install chromium", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="siskamling-screenshot-") as tmp, \
            support.live_site(Path(tmp)) as site, support.chromium() as browser:
        context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 800},
                                      locale="id-ID" if args.lang == "id" else "en-US")
        context.set_default_timeout(support.TIMEOUT_MS)
        page = context.new_page()
        support.log_in_through_forms(page, site, "operator", next_url="/areas")
        kelurahan = site.account("operator").area_code
        if not page.url.endswith(f"/areas/{kelurahan}"):
            raise SystemExit(f"expected the operator's kelurahan page, got {page.url}")
        page.wait_for_selector("#map[data-state=ready]", state="attached")
        drawn = page.locator("#map path.area-shape").count()
        if drawn == 0:
            raise SystemExit("the map drew no polygons")
        page.mouse.move(0, 0)  # no tooltip, no hover outline
        page.wait_for_timeout(300)  # Leaflet's fit/zoom animation
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=False)
        context.close()
    print(f"wrote {args.out} (1280x800, {drawn} RW polygons, language {args.lang})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
