#!/usr/bin/python3
"""A real RTSP server on loopback for the test suite (and benchmarks): Debian's GStreamer RTSP
server, driven through GObject introspection. Run it with the SYSTEM Python (python3-gi lives
there, not in the project's virtualenv):

    /usr/bin/python3 tests/rtsp/server.py --port 8554 \\
        --file cam1=/path/to/footage.mp4 \\
        --test live --test hd,size=1280x720,fps=15,bitrate=2000 \\
        --auth cam1=watcher:s3cret --auth-method digest

Mount kinds:
  --file NAME=PATH   a video file served as a never-ending live camera. The file is read in real
                     time by a feeder pipeline (filesrc ! parsebin ! parser ! appsink) that loops
                     with gapless segment seeks; its access units are pushed, re-timestamped,
                     into an `appsrc is-live=true` in each media pipeline (! parser ! rtpXpay).
                     So the mount behaves like a camera: live, not seekable, joined mid-stream,
                     starting at a keyframe. H.264, H.265 and MPEG-4 part 2 files are supported
                     (the latter to test "unsupported codec" handling). One feeder per file, however
                     many mounts or clients use it.
  --test NAME[,size=WxH][,fps=N][,bitrate=KBPS][,codec=h264|h265|mjpeg][,pattern=ball]
                     a live test scene: videotestsrc is-live=true ! clockoverlay ! encoder ! pay.
                     Defaults: 640x360, 15 fps, 1000 kb/s, h264, keyframe every second.

Every media is shared (one pipeline however many clients watch a mount). `--auth NAME=USER:PASS`
makes a mount require that login (repeatable; other mounts stay open to anonymous clients);
`--auth-method basic|digest|both` chooses the challenge (default basic).

`--port 0` picks a free port. When listening, one line goes to stdout:
    READY port=8554 url=rtsp://127.0.0.1:8554/
Then it runs until SIGTERM/SIGINT. `--check` only verifies that GStreamer and the needed plugins
are installed (exit 0), or prints what is missing (exit 3).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading

EXIT_MISSING = 3

REQUIRED_ELEMENTS = {
    # element: Debian package
    "appsrc": "gstreamer1.0-plugins-base",
    "appsink": "gstreamer1.0-plugins-base",
    "parsebin": "gstreamer1.0-plugins-base",
    "videotestsrc": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base",
    "qtdemux": "gstreamer1.0-plugins-good",
    "rtph264pay": "gstreamer1.0-plugins-good",
    "rtph265pay": "gstreamer1.0-plugins-good",
    "rtpmp4vpay": "gstreamer1.0-plugins-good",
    "rtpjpegpay": "gstreamer1.0-plugins-good",
    "jpegenc": "gstreamer1.0-plugins-good",
    "h264parse": "gstreamer1.0-plugins-bad",
    "h265parse": "gstreamer1.0-plugins-bad",
    "mpeg4videoparse": "gstreamer1.0-plugins-bad",
    "x264enc": "gstreamer1.0-plugins-ugly",
}
OPTIONAL_ELEMENTS = {
    "clockoverlay": "gstreamer1.0-x",  # the burnt-in clock on test scenes; left out without it
    "x265enc": "gstreamer1.0-plugins-bad",  # only for codec=h265 test scenes
}


def import_gstreamer():
    """Import GStreamer and the RTSP server; exit with EXIT_MISSING and a clear message if any of
    it is missing."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtsp", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
    except (ImportError, ValueError) as exc:
        print(f"missing: GStreamer RTSP server for Python ({exc}); install the Debian packages "
              "python3-gi gir1.2-gst-rtsp-server-1.0", file=sys.stderr)
        sys.exit(EXIT_MISSING)
    Gst.init(None)
    missing = sorted({pkg for name, pkg in REQUIRED_ELEMENTS.items() if Gst.ElementFactory.find(name) is None})
    if missing:
        absent = [name for name in REQUIRED_ELEMENTS if Gst.ElementFactory.find(name) is None]
        print(f"missing: GStreamer elements {', '.join(absent)}; install the Debian packages {' '.join(missing)}",
              file=sys.stderr)
        sys.exit(EXIT_MISSING)
    return GLib, Gst, GstRtsp, GstRtspServer


GLib = Gst = GstRtsp = GstRtspServer = None  # set by main()


def log(msg: str) -> None:
    print(f"rtsp-server: {msg}", file=sys.stderr, flush=True)


# --- file mounts: a looping feeder per file, pushing into appsrc of each media ----------------

# GStreamer caps name -> (feeder parser, feeder output caps, media pipeline tail)
CODECS = {
    "video/x-h264": (
        "h264parse config-interval=-1",
        "video/x-h264,stream-format=byte-stream,alignment=au",
        "h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1",
    ),
    "video/x-h265": (
        "h265parse config-interval=-1",
        "video/x-h265,stream-format=byte-stream,alignment=au",
        "h265parse ! rtph265pay name=pay0 pt=96 config-interval=-1",
    ),
    "video/mpeg": (  # MPEG-4 part 2 (mpegversion=4)
        "mpeg4videoparse config-interval=1",
        "video/mpeg,mpegversion=4,systemstream=false,parsed=true",
        "mpeg4videoparse ! rtpmp4vpay name=pay0 pt=96 config-interval=1",
    ),
}


class FileFeeder:
    """Reads one file in real time, forever (segment seeks back to the start, gapless), and hands
    each access unit to every registered appsrc, re-timestamped into that media's running time."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()
        self.targets: dict[int, dict] = {}  # id(appsrc) -> {"src", "started", "shift"}
        self.caps = None
        self.media_tail = None
        self.pipeline = Gst.Pipeline.new(f"feeder-{len(FEEDERS)}")
        src = Gst.ElementFactory.make("filesrc")
        src.set_property("location", path)
        self.parsebin = Gst.ElementFactory.make("parsebin")
        self.pipeline.add(src)
        self.pipeline.add(self.parsebin)
        src.link(self.parsebin)
        self.sink = None
        self.no_more_pads = False
        self.parsebin.connect("pad-added", self._on_pad)
        self.parsebin.connect("no-more-pads", lambda _bin: setattr(self, "no_more_pads", True))

    def _on_pad(self, _bin, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name()
        if self.sink is None and name in CODECS and (name != "video/mpeg" or _mpeg4(caps)):
            parser, out_caps, tail = CODECS[name]
            chain = Gst.parse_bin_from_description(
                f"{parser} ! {out_caps} ! appsink name=sink sync=true emit-signals=true max-buffers=4", True)
            self.pipeline.add(chain)
            chain.sync_state_with_parent()
            pad.link(chain.get_static_pad("sink"))
            self.sink = chain.get_by_name("sink")
            self.sink.connect("new-sample", self._on_sample)
            self.media_tail = tail
        else:  # audio, subtitles, a second video track, or a codec we cannot payload
            if name.startswith("video/") and self.sink is None:
                log(f"{self.path}: video codec {caps.to_string()} is not supported by this server")
            sink = Gst.ElementFactory.make("fakesink")
            sink.set_property("sync", False)
            sink.set_property("async", False)
            self.pipeline.add(sink)
            sink.sync_state_with_parent()
            pad.link(sink.get_static_pad("sink"))

    def start(self) -> None:
        """Preroll (learn the caps), seek to the start with a segment seek, and play."""
        self.pipeline.set_state(Gst.State.PAUSED)
        # parsebin adds its pads from its streaming thread, after the state change has returned:
        # wait for the video chain's caps (or for no-more-pads without a video stream, or an error).
        bus = self.pipeline.get_bus()
        deadline = GLib.get_monotonic_time() + 20_000_000
        while GLib.get_monotonic_time() < deadline:
            if self.sink is not None and self.sink.get_static_pad("sink").get_current_caps() is not None:
                break
            if self.no_more_pads and self.sink is None:
                break
            msg = bus.timed_pop_filtered(50 * Gst.MSECOND, Gst.MessageType.ERROR)
            if msg is not None:
                err, _debug = msg.parse_error()
                raise SystemExit(f"rtsp-server: cannot serve {self.path}: {err.message}")
        if self.sink is None or self.sink.get_static_pad("sink").get_current_caps() is None:
            raise SystemExit(f"rtsp-server: cannot serve {self.path}: no supported video stream (H.264, H.265, MPEG-4)")
        self.caps = self.sink.get_static_pad("sink").get_current_caps()
        self.pipeline.get_state(5 * Gst.SECOND)
        bus.add_signal_watch()
        bus.connect("message", self._on_message)
        self._seek(Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT)
        self.pipeline.set_state(Gst.State.PLAYING)

    def _seek(self, flags) -> None:
        ok = self.pipeline.seek(1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
        if not ok:
            log(f"{self.path}: seek failed")

    def _on_message(self, _bus, msg) -> None:
        if msg.type == Gst.MessageType.SEGMENT_DONE:
            self._seek(Gst.SeekFlags.SEGMENT)  # not flushing: running time goes on, no gap
        elif msg.type == Gst.MessageType.EOS:  # should not happen with segment seeks; loop anyway
            self._seek(Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT)
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            log(f"{self.path}: feeder error: {err.message} ({debug})")
            MAIN_LOOP.quit()

    # media side --------------------------------------------------------------------------------

    def attach(self, media) -> None:
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", self.caps)
        key = id(appsrc)
        with self.lock:
            self.targets[key] = {"src": appsrc, "started": False, "shift": 0}

        def detach(_media, key=key):
            with self.lock:
                self.targets.pop(key, None)

        media.connect("unprepared", detach)

    def _on_sample(self, sink):
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        with self.lock:
            targets = list(self.targets.values())
        if not targets:
            return Gst.FlowReturn.OK
        buf = sample.get_buffer()
        segment = sample.get_segment()
        pts = buf.pts
        if pts == Gst.CLOCK_TIME_NONE:
            return Gst.FlowReturn.OK
        delta = buf.pts - buf.dts if buf.dts != Gst.CLOCK_TIME_NONE else 0  # B-frames: PTS > DTS
        running = segment.to_running_time(Gst.Format.TIME, pts)
        if running == Gst.CLOCK_TIME_NONE:
            return Gst.FlowReturn.OK
        clock_time = running + self.pipeline.get_base_time()  # same system clock in every pipeline
        keyframe = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        for target in targets:
            src = target["src"]
            if src.get_clock() is None:  # media not playing yet
                continue
            if not target["started"]:
                if not keyframe:
                    continue  # a joining media starts at a keyframe, as a camera's first frame would
                target["started"] = True
                # keep DTS (= PTS - delta) at or after the media's current running time
                first_dts = clock_time - src.get_base_time() - delta
                target["shift"] = max(0, -first_dts)
            out_pts = clock_time - src.get_base_time() + target["shift"]
            if out_pts - delta < 0:
                continue
            # A buffer of its own for each media: PyGObject's buf.copy() hands back the same
            # GstBuffer, so setting its timestamps for one mount would change them for the others.
            out = buf.copy_region(COPY_ALL, 0, buf.get_size())
            out.pts = out_pts
            out.dts = out_pts - delta
            src.emit("push-buffer", out)
        return Gst.FlowReturn.OK


def _mpeg4(caps) -> bool:
    s = caps.get_structure(0)
    ok, version = s.get_int("mpegversion")
    return ok and version == 4 and not s.get_value("systemstream")


FEEDERS: dict[str, FileFeeder] = {}
COPY_ALL = None  # Gst.BufferCopyFlags for a whole, separate copy; set by main()
MAIN_LOOP = None


def file_factory(path: str):
    feeder = FEEDERS.get(path)
    if feeder is None:
        feeder = FEEDERS[path] = FileFeeder(path)
        feeder.start()
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( appsrc name=src is-live=true format=time stream-type=stream max-time=2000000000 "
        f"leaky-type=downstream ! {feeder.media_tail} )"
    )
    factory.set_shared(True)
    factory.connect("media-configure", lambda _factory, media: feeder.attach(media))
    return factory


# --- live test scenes --------------------------------------------------------------------------

def test_factory(spec: dict[str, str]):
    width, height = (int(v) for v in spec.get("size", "640x360").split("x"))
    fps = int(spec.get("fps", "15"))
    kbps = int(spec.get("bitrate", "1000"))
    codec = spec.get("codec", "h264")
    pattern = spec.get("pattern", "ball")
    overlay = ""
    if Gst.ElementFactory.find("clockoverlay") is not None:
        overlay = '! clockoverlay time-format="%Y-%m-%d %H:%M:%S" shaded-background=true '
    if codec == "h264":
        enc = (f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate={kbps} "
               "! video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=-1")
    elif codec == "h265":
        if Gst.ElementFactory.find("x265enc") is None:
            raise SystemExit("rtsp-server: codec=h265 needs x265enc (gstreamer1.0-plugins-bad)")
        enc = (f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate={kbps} "
               "! rtph265pay name=pay0 pt=96 config-interval=-1")
    elif codec == "mjpeg":
        enc = "jpegenc quality=70 ! rtpjpegpay name=pay0 pt=26"
    else:
        raise SystemExit(f"rtsp-server: unknown codec {codec!r} (h264, h265, mjpeg)")
    launch = (f"( videotestsrc is-live=true pattern={pattern} "
              f"! video/x-raw,width={width},height={height},framerate={fps}/1 "
              f"{overlay}! videoconvert ! video/x-raw,format=I420 ! {enc} )")
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    return factory


# --- command line ------------------------------------------------------------------------------

MOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8554, help="0 picks a free port (see the READY line)")
    p.add_argument("--file", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--test", action="append", default=[], metavar="NAME[,key=value...]")
    p.add_argument("--auth", action="append", default=[], metavar="NAME=USER:PASSWORD")
    p.add_argument("--auth-method", choices=["basic", "digest", "both"], default="basic")
    p.add_argument("--threads", type=int, default=1, help="threads serving clients; -1 for one per client")
    p.add_argument("--check", action="store_true", help="only check that GStreamer and its plugins are installed")
    args = p.parse_args(argv)

    mounts = {}
    for item in args.file:
        name, sep, path = item.partition("=")
        if not sep or not path:
            p.error(f"--file {item!r}: expected NAME=PATH")
        mounts[name.strip("/")] = ("file", path)
    for item in args.test:
        name, *opts = item.split(",")
        spec = {}
        for opt in opts:
            key, sep, value = opt.partition("=")
            if not sep:
                p.error(f"--test {item!r}: expected key=value, got {opt!r}")
            spec[key] = value
        mounts[name.strip("/")] = ("test", spec)
    for name in mounts:
        if not MOUNT_NAME.match(name):
            p.error(f"bad mount name {name!r}")
    logins = {}
    users = {}
    for item in args.auth:
        name, sep, cred = item.partition("=")
        user, sep2, password = cred.partition(":")
        name = name.strip("/")
        if not (sep and sep2 and user):
            p.error("--auth: expected NAME=USER:PASSWORD")
        if name not in mounts:
            p.error(f"--auth {name}: no such mount")
        if users.setdefault(user, password) != password:
            p.error(f"--auth: user {user!r} is given two different passwords")
        logins[name] = (user, password)
    if not mounts and not args.check:
        p.error("nothing to serve: give --file and/or --test")
    return args, mounts, logins


def build_auth(logins, method: str):
    """Open mounts are granted to the default (anonymous) token's role; a protected mount only to
    its user's role."""
    auth = GstRtspServer.RTSPAuth()
    anonymous = GstRtspServer.RTSPToken()
    anonymous.set_string("media.factory.role", "anonymous")
    auth.set_default_token(anonymous)
    methods = {
        "basic": GstRtsp.RTSPAuthMethod.BASIC,
        "digest": GstRtsp.RTSPAuthMethod.DIGEST,
        "both": GstRtsp.RTSPAuthMethod.BASIC | GstRtsp.RTSPAuthMethod.DIGEST,
    }[method]
    auth.set_supported_methods(methods)
    for user, password in {u: p for u, p in logins.values()}.items():
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", f"user:{user}")
        if method in ("basic", "both"):
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        if method in ("digest", "both"):
            auth.add_digest(user, password, token)
    return auth


def permissions_for(user: str | None):
    """Anonymous clients may see every mount (a protected one answers them 401, not 404: the
    "construct" check is the one that challenges) but construct only open ones."""
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role("anonymous", "media.factory.access", True)
    perms.add_permission_for_role("anonymous", "media.factory.construct", user is None)
    if user is not None:
        perms.add_permission_for_role(f"user:{user}", "media.factory.access", True)
        perms.add_permission_for_role(f"user:{user}", "media.factory.construct", True)
    return perms


def main(argv=None) -> int:
    global GLib, Gst, GstRtsp, GstRtspServer, MAIN_LOOP, COPY_ALL
    args, mounts, logins = parse_args(argv)
    GLib, Gst, GstRtsp, GstRtspServer = import_gstreamer()
    F = Gst.BufferCopyFlags
    COPY_ALL = F.FLAGS | F.TIMESTAMPS | F.META | F.MEMORY
    if args.check:
        absent = [f"{n} ({pkg})" for n, pkg in OPTIONAL_ELEMENTS.items() if Gst.ElementFactory.find(n) is None]
        print(f"ok: {Gst.version_string()}" + (f"; optional elements absent: {', '.join(absent)}" if absent else ""))
        return 0

    MAIN_LOOP = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    server.set_auth(build_auth(logins, args.auth_method))
    # --threads -1: one thread per client, for benchmarks. The default pool has one thread, and a
    # mount's first DESCRIBE holds it until the feeder's next keyframe (up to a GOP): 30 cameras
    # connecting at once queued longer than a recorder waits to open a stream and all failed.
    # The tests keep one thread: with several, a client that connects while the last one's
    # shared media is being torn down gets a 503 now and then.
    server.get_thread_pool().set_max_threads(args.threads)
    points = server.get_mount_points()
    for name, (kind, spec) in mounts.items():
        factory = file_factory(spec) if kind == "file" else test_factory(spec)
        user = logins.get(name, (None,))[0]
        factory.set_permissions(permissions_for(user))
        points.add_factory(f"/{name}", factory)

    if server.attach(None) == 0:
        log(f"cannot listen on {args.host}:{args.port}")
        return 1
    port = server.get_bound_port()
    # Sessions of clients that vanish without TEARDOWN are reaped by their timeout (60 s); a
    # cleanup every few seconds releases them (and their shared media) promptly.
    GLib.timeout_add_seconds(2, lambda: server.get_session_pool().cleanup() >= 0)

    def stop(*_):
        MAIN_LOOP.quit()
        return GLib.SOURCE_REMOVE

    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, stop)
    # never outlive the process that started us (a test run killed with SIGKILL, say)
    parent = os.getppid()
    GLib.timeout_add_seconds(1, lambda: (os.getppid() == parent) or stop())
    print(f"READY port={port} url=rtsp://{args.host}:{port}/ mounts={','.join(mounts)}", flush=True)
    MAIN_LOOP.run()
    for feeder in FEEDERS.values():
        feeder.pipeline.set_state(Gst.State.NULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
