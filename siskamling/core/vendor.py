"""Copy the front-end libraries installed from the npm registry into the package's static folder.

Run by ``./run`` after ``npm ci``; the copied files are not committed.
"""

import shutil
import sys
from pathlib import Path

VENDOR_DIR = Path(__file__).parent / "static" / "vendor"

# (package, file inside the package, name under static/vendor)
FILES = [
    ("htmx.org", "dist/htmx.min.js", "htmx.min.js"),
    ("leaflet", "dist/leaflet.js", "leaflet/leaflet.js"),
    ("leaflet", "dist/leaflet.css", "leaflet/leaflet.css"),
    ("leaflet", "dist/images", "leaflet/images"),
    ("swagger-ui-dist", "swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js"),
    ("swagger-ui-dist", "swagger-ui.css", "swagger-ui/swagger-ui.css"),
]


def copy_vendor(node_modules: Path) -> None:
    for package, source, target in FILES:
        src = node_modules / package / source
        if not src.exists():
            raise SystemExit(f"{src} is missing: run `npm ci` in the project root first")
        dst = VENDOR_DIR / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dst)


def missing() -> list[str]:
    return [target for _, _, target in FILES if not (VENDOR_DIR / target).exists()]


if __name__ == "__main__":
    copy_vendor(Path(sys.argv[1]))
