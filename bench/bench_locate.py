"""Point-lookup benchmark: the same as `siskamling bench locate` (options: --help).

Run from the project folder: .venv/bin/python bench/bench_locate.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from siskamling.bench import locate  # noqa: E402

if __name__ == "__main__":
    locate.main(prog_name="bench_locate.py")
