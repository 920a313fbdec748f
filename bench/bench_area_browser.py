"""Area-browser benchmark: the same as `siskamling bench area-browser` (options: --help).

Run from the project folder: .venv/bin/python bench/bench_area_browser.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from siskamling.bench import area_browser  # noqa: E402

if __name__ == "__main__":
    area_browser.main(prog_name="bench_area_browser.py")
