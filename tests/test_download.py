"""The downloader against a local HTTP server: Range resume, cut-off transfers, no network."""
from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from storytok.sources.download import download
from storytok.errors import StorytokError

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = bytes(range(256)) * 4000  # 1,024,000 bytes


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /<name>; honours `Range: bytes=N-`. Behaviour per server.mode:
    "ok", "cut" (first full request stops half-way and drops the connection),
    "always-cut" (every response stops early), "no-range" (ignores Range)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv = self.server
        if self.path.startswith("/redirect/"):  # like huggingface.co -> its CDN
            self.send_response(302)
            self.send_header("Location", self.path[len("/redirect"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        srv.requests.append(self.headers.get("Range"))
        body = srv.payloads.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.mode != "no-range":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        cut = (srv.mode == "cut" and len(srv.requests) == 1) or srv.mode == "always-cut"
        if cut:
            self.wfile.write(rest[: max(1, len(rest) // 2)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(rest)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.mode = "ok"
    srv.requests = []
    srv.payloads = {"TinyStoriesV2-GPT4-train.txt": PAYLOAD, "TinyStoriesV2-GPT4-valid.txt": PAYLOAD[:5000]}
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def test_plain_download(server, tmp_path):
    res = download(f"{server.base}/TinyStoriesV2-GPT4-train.txt", tmp_path / "t.txt", progress=False)
    assert (tmp_path / "t.txt").read_bytes() == PAYLOAD
    assert res.size == len(PAYLOAD) and not res.skipped
    assert not (tmp_path / "t.txt.partial").exists()


def test_cut_off_half_way_resumes_within_one_run(server, tmp_path):
    server.mode = "cut"
    download(f"{server.base}/TinyStoriesV2-GPT4-train.txt", tmp_path / "t.txt", progress=False, retry_wait=0)
    assert (tmp_path / "t.txt").read_bytes() == PAYLOAD
    assert server.requests[0] is None and server.requests[1] == f"bytes={len(PAYLOAD) // 2}-"


def test_cut_off_then_next_run_resumes(server, tmp_path):
    server.mode = "cut"
    dest = tmp_path / "t.txt"
    with pytest.raises(StorytokError, match="run `make data` again to resume"):
        download(f"{server.base}/TinyStoriesV2-GPT4-train.txt", dest, retries=0, progress=False)
    assert not dest.exists(), "an incomplete file must not carry the final name"
    assert (tmp_path / "t.txt.partial").stat().st_size == len(PAYLOAD) // 2
    res = download(f"{server.base}/TinyStoriesV2-GPT4-train.txt", dest, retries=0, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert res.resumed_from == len(PAYLOAD) // 2 and res.fetched == len(PAYLOAD) - len(PAYLOAD) // 2
    assert server.requests[-1] == f"bytes={len(PAYLOAD) // 2}-"


def test_resume_through_a_redirect_keeps_the_range(server, tmp_path):
    server.mode = "cut"
    dest = tmp_path / "t.txt"
    download(f"{server.base}/redirect/TinyStoriesV2-GPT4-train.txt", dest, progress=False, retry_wait=0)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_keeps_breaking_off_gives_one_line_and_no_final_file(server, tmp_path):
    server.mode = "always-cut"
    dest = tmp_path / "t.txt"
    with pytest.raises(StorytokError) as e:
        download(f"{server.base}/TinyStoriesV2-GPT4-train.txt", dest, retries=2, progress=False, retry_wait=0)
    assert "stopped at" in str(e.value) and f"of {len(PAYLOAD):,} bytes" in str(e.value)
    assert "\n" not in str(e.value)
    assert not dest.exists()


def test_partial_larger_than_remote_restarts(server, tmp_path):
    dest = tmp_path / "t.txt"
    (tmp_path / "t.txt.partial").write_bytes(b"x" * (len(PAYLOAD) + 10))
    download(f"{server.base}/TinyStoriesV2-GPT4-train.txt", dest, progress=False, retry_wait=0)
    assert dest.read_bytes() == PAYLOAD


def test_partial_already_complete(server, tmp_path):
    dest = tmp_path / "t.txt"
    (tmp_path / "t.txt.partial").write_bytes(PAYLOAD)
    download(f"{server.base}/TinyStoriesV2-GPT4-train.txt", dest, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.mode = "no-range"
    dest = tmp_path / "t.txt"
    (tmp_path / "t.txt.partial").write_bytes(b"garbage")
    download(f"{server.base}/TinyStoriesV2-GPT4-train.txt", dest, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_size_mismatch_is_refused(tmp_path):
    """A server whose Content-Range total contradicts the size it announced first."""
    class Liar(Handler):
        def do_GET(self):
            if self.headers.get("Range"):
                self.send_response(206)
                self.send_header("Content-Range", f"bytes 10-19/999")
                self.send_header("Content-Length", "10")
                self.end_headers()
                self.wfile.write(b"y" * 10)
            else:
                self.send_response(200)
                self.send_header("Content-Length", "20")
                self.end_headers()
                self.wfile.write(b"x" * 10)
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Liar)
    srv.requests, srv.payloads, srv.mode = [], {}, "ok"
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        with pytest.raises(StorytokError) as e:
            download(f"http://127.0.0.1:{srv.server_address[1]}/f.txt", tmp_path / "f.txt",
                     retries=1, progress=False, retry_wait=0)
        assert "changed size" in str(e.value) or "mismatch" in str(e.value)
        assert not (tmp_path / "f.txt").exists()
    finally:
        srv.shutdown()
        srv.server_close()


def test_http_error_is_one_line(server, tmp_path):
    with pytest.raises(StorytokError, match="HTTP 404"):
        download(f"{server.base}/nope.txt", tmp_path / "n.txt", progress=False)


def test_existing_file_needs_no_network(tmp_path):
    dest = tmp_path / "t.txt"
    dest.write_bytes(b"hello")
    res = download("http://127.0.0.1:9/t.txt", dest, progress=False)
    assert res.skipped and dest.read_bytes() == b"hello"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_data_stage(tmp_path, base, *extra):
    env = dict(os.environ, STORYTOK_DATA_URL=base)
    return subprocess.run([sys.executable, str(ROOT / "stages" / "data.py"), "--out-dir", str(tmp_path / "data"),
                           *extra], capture_output=True, text=True, env=env, timeout=60)


def test_stage_without_network_prints_one_line(tmp_path):
    r = _run_data_stage(tmp_path, f"http://127.0.0.1:{_free_port()}")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "cannot reach 127.0.0.1" in lines[0] and "no network?" in lines[0]
    assert "Traceback" not in r.stderr
    assert not list((tmp_path / "data").glob("*.txt"))


def test_stage_downloads_both_files(server, tmp_path):
    r = _run_data_stage(tmp_path, server.base)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "TinyStoriesV2-GPT4-train.txt").read_bytes() == PAYLOAD
    assert (tmp_path / "data" / "TinyStoriesV2-GPT4-valid.txt").read_bytes() == PAYLOAD[:5000]
    assert "make data: done" in r.stdout
    r2 = _run_data_stage(tmp_path, f"http://127.0.0.1:{_free_port()}")  # offline now: nothing to fetch
    assert r2.returncode == 0 and "already there" in r2.stdout
