"""The stream probe against real sources: the GStreamer RTSP server on loopback (tests/rtsp), an
HLS playlist written with PyAV and served by http.server, local files, and addresses that fail in
each of the ways a camera address can."""

from __future__ import annotations

import base64
import functools
import http.server
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import av
import numpy as np
import pytest

from siskamling.cameras.probe import ProbeResult, Status, probe
from tests.rtsp.fixtures import FOOTAGE, video_dir


def assert_online(result: ProbeResult, *, codec="h264", size=None, fps=None) -> None:
    assert result.ok and result.status == Status.online, result
    assert result.message.startswith("online"), result.message
    assert result.codec == codec
    if size:
        assert (result.width, result.height) == size
    if fps:
        assert result.fps == pytest.approx(fps, abs=0.5), result
    assert result.bitrate_kbps and result.bitrate_kbps > 10, result


def assert_failed(result: ProbeResult, status: Status) -> None:
    assert not result.ok and result.status == status, result
    assert result.message and "\n" not in result.message, result


def footage(name: str):
    folder = video_dir()
    if folder is None or not (folder / name).exists():
        pytest.skip(f"sample footage {name} not found (../shared/data/video)")
    return folder / name


# --- RTSP ------------------------------------------------------------------------------------


def test_a_looped_file_is_online_with_its_codec_size_and_frame_rate(rtsp_server):
    result = probe(rtsp_server.url("file"))
    assert_online(result, size=(768, 432), fps=10)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_the_live_test_scene_is_online_over_tcp_and_udp(rtsp_server, transport):
    result = probe(rtsp_server.url("live"), transport=transport)
    assert_online(result, size=(640, 360), fps=15)


def test_several_clients_share_the_stream(rtsp_server):
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: probe(rtsp_server.url("bikes")), range(3)))
    for result in results:
        assert_online(result, size=(640, 272), fps=25)


def test_credentials_open_a_protected_stream_and_never_appear_in_messages(rtsp_server):
    user, password = rtsp_server.username, rtsp_server.password
    good = probe(rtsp_server.url("secure"), username=user, password=password)
    assert_online(good)
    in_url = probe(rtsp_server.url("secure", username=user, password=password), timeout_s=1)  # the login may be in the URL
    assert in_url.status in (Status.online, Status.timeout), in_url  # (1 s: only that the login is accepted)

    wrong = probe(rtsp_server.url("secure"), username=user, password="not-the-password")
    assert_failed(wrong, Status.unauthorized)
    assert_failed(probe(rtsp_server.url("secure")), Status.unauthorized)
    wrong_in_url = probe(rtsp_server.url("secure", username=user, password="not-the-password"))
    assert_failed(wrong_in_url, Status.unauthorized)

    for result in (good, in_url, wrong, wrong_in_url):
        for secret in (password, "not-the-password", user):
            assert secret not in result.message, result.message
        assert "@" not in result.message, result.message
    assert f"127.0.0.1:{rtsp_server.port}/secure" in wrong.message  # the address, without the login


def test_a_mount_that_does_not_exist_is_not_found(rtsp_server):
    assert_failed(probe(rtsp_server.url("no-such-camera")), Status.not_found)


def test_a_codec_other_than_h264_or_h265_is_unsupported(rtsp_server):
    result = probe(rtsp_server.url("mpeg4"))
    assert_failed(result, Status.unsupported_codec)
    assert (result.codec, result.width, result.height) == ("mpeg4", 480, 270)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_port_is_unreachable_at_once():
    started = time.monotonic()
    result = probe(f"rtsp://admin:hunter22@127.0.0.1:{free_port()}/stream", timeout_s=3)
    assert_failed(result, Status.unreachable)
    assert time.monotonic() - started < 3
    assert "hunter22" not in result.message and "admin" not in result.message


def test_a_server_that_never_answers_times_out_within_the_timeout():
    with socket.socket() as silent:  # accepts connections (the kernel does), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        for url in (f"rtsp://127.0.0.1:{port}/stream", f"http://127.0.0.1:{port}/live/index.m3u8"):
            started = time.monotonic()
            result = probe(url, timeout_s=2)
            elapsed = time.monotonic() - started
            assert_failed(result, Status.timeout)
            assert 1.5 < elapsed < 3, elapsed


@pytest.mark.parametrize("url", [
    "", "   ", "not a url", "rtsp://", "rtsp:///stream", "rtsp//127.0.0.1/stream", "ftp://127.0.0.1/video.mp4",
    "rtsp://127.0.0.1:99999/stream", "relative/path/video.mp4", "rtsp://127.0.0.1/str\x00eam",
])
def test_garbage_is_a_bad_url(url):
    assert_failed(probe(url, timeout_s=2), Status.bad_url)


def test_an_unknown_host_is_unreachable():
    assert_failed(probe("rtsp://camera.invalid/stream", timeout_s=3), Status.unreachable)


# --- local files -----------------------------------------------------------------------------


def test_a_local_file_is_online():
    path = footage(FOOTAGE["file"])
    assert_online(probe(str(path)), size=(768, 432), fps=10)
    assert_online(probe(path.as_uri()), size=(768, 432), fps=10)
    result = probe(str(footage(FOOTAGE["mpeg4"])))
    assert_failed(result, Status.unsupported_codec)


def test_a_file_that_is_not_video_is_an_error_not_a_crash(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("Bukan video. " * 200)
    assert_failed(probe(str(text)), Status.no_video)
    assert_failed(probe(str(tmp_path / "missing.mp4")), Status.not_found)
    assert_failed(probe(str(tmp_path)), Status.bad_url)
    audio = tmp_path / "audio.wav"
    write_audio(audio)
    assert_failed(probe(str(audio)), Status.no_video)


def write_audio(path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


# --- HLS -------------------------------------------------------------------------------------

HLS_USER, HLS_PASSWORD = "kota", "rahasia-hls"


def write_hls(folder, *, seconds=4, fps=10, size=(320, 240)) -> None:
    """An HLS VOD playlist of a moving test picture (H.264, 1 s segments), written by PyAV."""
    folder.mkdir(parents=True, exist_ok=True)
    with av.open(str(folder / "index.m3u8"), "w", format="hls",
                 options={"hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "vod"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.options = {"g": str(fps), "preset": "ultrafast"}
        for i in range(seconds * fps):
            img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
            img[:, (i * 8) % size[0]:(i * 8) % size[0] + 16] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


class HlsHandler(http.server.SimpleHTTPRequestHandler):
    """Static files; anything under /private/ needs the basic login HLS_USER/HLS_PASSWORD."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path.startswith("/private/"):
            wanted = "Basic " + base64.b64encode(f"{HLS_USER}:{HLS_PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != wanted:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="kamera"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hls_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hls")
    write_hls(root / "kamera")
    write_hls(root / "private" / "kamera", seconds=2)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(HlsHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_hls_playlist_is_online(hls_site):
    assert_online(probe(f"{hls_site}/kamera/index.m3u8"), size=(320, 240), fps=10)


def test_hls_errors_and_logins(hls_site):
    assert_failed(probe(f"{hls_site}/nowhere/index.m3u8"), Status.not_found)
    denied = probe(f"{hls_site}/private/kamera/index.m3u8", username=HLS_USER, password="salah")
    assert_failed(denied, Status.unauthorized)
    assert "salah" not in denied.message
    assert_failed(probe(f"{hls_site}/private/kamera/index.m3u8"), Status.unauthorized)
    assert_online(probe(f"{hls_site}/private/kamera/index.m3u8?token=abc", username=HLS_USER, password=HLS_PASSWORD),
                  size=(320, 240))
    shown = probe(f"{hls_site}/nowhere/index.m3u8?token=s3cr3t-token").message
    assert "s3cr3t-token" not in shown and "/nowhere/index.m3u8" in shown
