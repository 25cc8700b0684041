"""Weight downloads against a local HTTP server: good file, wrong checksum, cut-short transfer."""

import hashlib
import http.server
import os
import stat
import threading
import time
from dataclasses import replace

import pytest

from adain_cuda import cli
from adain_cuda.models import WeightsError, weights

PAYLOAD = b"weights" * 50_000


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/good.pth":
            self._send(PAYLOAD, len(PAYLOAD))
        elif self.path == "/truncated.pth":
            self._send(PAYLOAD[: len(PAYLOAD) // 3], len(PAYLOAD))  # promises more than it sends
        elif self.path == "/trickle.pth":  # a byte now and then: the socket never times out
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            for byte in PAYLOAD[:40]:
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
        else:
            self.send_error(404)

    def _send(self, body, length):
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAIN_CUDA_HOME", str(tmp_path))
    monkeypatch.delenv("ADAIN_CUDA_OFFLINE", raising=False)
    return tmp_path


def spec(url, sha=hashlib.sha256(PAYLOAD).hexdigest()):
    return replace(weights.REGISTRY["decoder"], url=url, sha256=sha)


def leftovers(folder):
    """Files besides the result and the record of its verified checksum."""
    return [p.name for p in folder.iterdir() if p.name not in ("decoder.pth", ".decoder.pth.sha256")]


def test_good_download_is_verified_and_cached(server, cache):
    path = weights.download(spec(f"{server}/good.pth"), progress=False)
    assert path == cache / "decoder.pth" and path.read_bytes() == PAYLOAD
    assert leftovers(cache) == []


def test_wrong_checksum_leaves_nothing(server, cache):
    with pytest.raises(WeightsError, match="failed verification.*`decoder`"):
        weights.download(spec(f"{server}/good.pth", sha="0" * 64), progress=False)
    assert list(cache.iterdir()) == []


def test_truncated_transfer_leaves_nothing(server, cache):
    with pytest.raises(WeightsError, match="cut short|could not download"):
        weights.download(spec(f"{server}/truncated.pth"), progress=False)
    assert list(cache.iterdir()) == []


def test_unreachable_and_missing_say_what_to_do(server, cache):
    with pytest.raises(WeightsError, match="could not download decoder.pth.*save it as"):
        weights.download(spec(f"{server}/absent.pth"), progress=False)
    with pytest.raises(WeightsError, match="could not download"):
        weights.download(spec("http://127.0.0.1:9/decoder.pth"), progress=False, timeout=5)
    assert list(cache.iterdir()) == []


def test_resolve(server, cache, monkeypatch, tmp_path):
    monkeypatch.setitem(weights.REGISTRY, "decoder", spec(f"{server}/good.pth"))
    monkeypatch.setenv("ADAIN_CUDA_OFFLINE", "1")
    with pytest.raises(WeightsError, match="downloads are off"):
        weights.resolve("decoder")
    monkeypatch.delenv("ADAIN_CUDA_OFFLINE")
    assert weights.resolve("decoder", progress=False).read_bytes() == PAYLOAD  # downloaded
    assert weights.resolve("decoder") == cache / "decoder.pth"  # cached
    with pytest.raises(WeightsError, match="`vgg` .*no such file"):
        weights.resolve("vgg", tmp_path / "nowhere.pth")


def test_cli_weights_commands(server, cache, monkeypatch, capsys):
    monkeypatch.setitem(weights.REGISTRY, "decoder", spec(f"{server}/good.pth"))
    monkeypatch.setitem(weights.REGISTRY, "vgg", replace(weights.REGISTRY["vgg"], url=f"{server}/absent.pth"))
    assert cli.main(["weights", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(cache)
    assert cli.main(["weights", "download", "decoder"]) == 0
    assert "saved and verified" in capsys.readouterr().out
    assert cli.main(["weights", "download", "decoder"]) == 0
    assert "already present" in capsys.readouterr().out
    assert cli.main(["weights", "download"]) == 1  # vgg fails, reported
    assert "vgg_normalised.pth" in capsys.readouterr().err
    assert cli.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "decoder.pth" in out and "present" in out and "missing" in out


def test_a_trickling_server_times_out(server, cache):
    start = time.monotonic()
    with pytest.raises(WeightsError, match="stalled"):
        weights.download(spec(f"{server}/trickle.pth"), progress=False, timeout=1.0)
    assert time.monotonic() - start < 4.0
    assert list(cache.iterdir()) == []


def test_downloaded_files_are_readable_by_everyone(server, cache):
    path = weights.download(spec(f"{server}/good.pth"), progress=False)
    assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044


def test_an_unwritable_cache_is_one_message(server, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ADAIN_CUDA_HOME", str(blocker / "cache"))  # cannot be created by anyone
    with pytest.raises(WeightsError, match="cannot create the weights folder"):
        weights.download(spec(f"{server}/good.pth"), progress=False)
    folder = tmp_path / "readonly"
    folder.mkdir()
    monkeypatch.setattr(weights, "_fetch", lambda *a: (_ for _ in ()).throw(PermissionError(13, "denied")))
    with pytest.raises(WeightsError, match="could not download"):
        weights.download(spec(f"{server}/good.pth"), progress=False, directory=folder)


def test_a_cached_file_that_is_not_the_published_one_is_neither_listed_nor_used(server, cache, monkeypatch, capsys):
    monkeypatch.setitem(weights.REGISTRY, "decoder", spec(f"{server}/good.pth"))
    (cache / "decoder.pth").write_bytes(b"something else")
    assert cli.main(["weights", "list"]) == 0
    assert "WRONG FILE" in capsys.readouterr().out
    monkeypatch.setenv("ADAIN_CUDA_OFFLINE", "1")
    with pytest.raises(WeightsError, match="not the published decoder.pth"):
        weights.resolve("decoder")
    monkeypatch.delenv("ADAIN_CUDA_OFFLINE")
    assert weights.resolve("decoder", progress=False).read_bytes() == PAYLOAD  # replaced by the real one
    os.utime(cache / "decoder.pth")  # a touched file is checked again, and still passes
    assert weights.cached_state(weights.REGISTRY["decoder"]) == "verified"


@pytest.mark.parametrize("value", ["1", "true", "yes", "ON"])
@pytest.mark.parametrize("how", ["cli", "download", "resolve"])
def test_offline_never_opens_a_connection(value, how, cache, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was opened")

    monkeypatch.setattr(weights.urllib.request, "urlopen", no_network)
    monkeypatch.setenv("ADAIN_CUDA_OFFLINE", value)
    if how == "cli":
        assert cli.main(["weights", "download"]) == 1
        assert "ADAIN_CUDA_OFFLINE" in capsys.readouterr().err
    elif how == "download":
        with pytest.raises(WeightsError, match="ADAIN_CUDA_OFFLINE"):
            weights.download(weights.REGISTRY["decoder"], progress=False)
    else:
        with pytest.raises(WeightsError, match="downloads are off"):
            weights.resolve("vgg")
    assert list(cache.iterdir()) == []
