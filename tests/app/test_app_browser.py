"""The web app in a real browser: Debian's Chromium driven by Playwright against the app served on a
free local port with random weight files. Screenshots of each page state go to
$ADAIN_CUDA_ARTIFACTS/app (default build/test-artifacts/app)."""

import os
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("gradio", reason="needs the [app] extra (gradio)")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the [test] extra)")

from adain_cuda.app import build_app, launch  # noqa: E402
from adain_cuda.images import imaging  # noqa: E402
from adain_cuda.stylize.recolor import recolor  # noqa: E402

from community_layout import write_weight_files  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("ADAIN_CUDA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)", allow_module_level=True)
ARTIFACTS = Path(
    os.environ.get("ADAIN_CUDA_ARTIFACTS", Path(__file__).resolve().parents[2] / "build" / "test-artifacts")
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    g = torch.Generator().manual_seed(0)
    imaging.save_image(torch.rand(3, 48, 64, generator=g), root / "content.png")
    imaging.save_image(torch.rand(3, 40, 40, generator=g), root / "style.png")
    imaging.save_image(torch.rand(3, 32, 32, generator=g), root / "palette.png")
    # a decompression bomb: 81 million pixels in a small file
    Image.new("L", (9000, 9000)).save(root / "bomb.png", optimize=True)
    write_weight_files(root)
    return root


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


class Served:
    """The app on a free port, the requests the page made to anywhere else."""

    def __init__(self, app, browser):
        self.app, self.port = app, free_port()
        launch(app, port=self.port, block=False)
        self.url = f"http://127.0.0.1:{self.port}/"
        self.page = browser.new_page(viewport={"width": 1280, "height": 1000})
        self.elsewhere: list[str] = []
        local = (self.url, "data:", "blob:")
        self.page.on("request", lambda r: None if r.url.startswith(local) else self.elsewhere.append(r.url))
        self.page.goto(self.url)
        self.page.wait_for_selector("#stylize-button", timeout=60_000)

    def shot(self, name: str) -> None:
        ARTIFACTS.joinpath("app").mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / "app" / f"{name}.png"), full_page=True)

    def upload(self, elem: str, path: Path) -> None:
        self.page.set_input_files(f"#{elem} input[type=file]", str(path))

    def set_slider(self, elem: str, value: float) -> None:
        box = self.page.locator(f"#{elem} input[type=number]")
        box.fill(str(value))
        box.press("Enter")

    def result_png(self, elem: str) -> np.ndarray:
        """The full-resolution PNG behind the download link of ``elem``, as pixels."""
        link = self.page.locator(f"#{elem} a").first
        link.wait_for(timeout=120_000)
        href = link.get_attribute("href")
        url = href if href.startswith("http") else self.url.rstrip("/") + href
        with urllib.request.urlopen(url) as response:
            data = response.read()
        path = ARTIFACTS / "downloaded.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return np.asarray(Image.open(path).convert("RGB"))

    def error_text(self) -> str:
        toast = self.page.locator(".toast-body").first
        toast.wait_for(timeout=60_000)
        return toast.inner_text()

    def close(self) -> None:
        self.page.close()
        self.app.close()


@pytest.fixture(scope="module")
def stylizer(files):
    from adain_cuda.stylize import Stylizer

    return Stylizer.from_pretrained(files / "vgg.pth", files / "dec.pth", device="cpu", allow_download=False)


@pytest.fixture
def served(stylizer, browser):
    s = Served(build_app(stylizer), browser)
    yield s
    s.close()


def pixels(img) -> np.ndarray:
    return np.asarray(imaging.to_pil(img))


def test_stylize_in_the_browser_gives_the_stylizers_pixels(served, stylizer, files):
    served.shot("1-empty")
    served.upload("content", files / "content.png")
    served.upload("styles", files / "style.png")
    served.set_slider("alpha", 0.5)
    served.shot("2-inputs")
    served.page.click("#stylize-button")
    got = served.result_png("result-file")
    served.shot("3-result")
    want = pixels(stylizer.stylize(files / "content.png", [files / "style.png"], alpha=0.5))
    assert got.shape == want.shape == (512, 682, 3)  # the content at its default size, 512
    assert np.array_equal(got, want)
    encodes = stylizer.style_encodes
    first = served.page.locator("#result-file a").first.get_attribute("href")
    served.set_slider("alpha", 0.8)  # the same style again: its statistics come from the cache
    served.page.click("#stylize-button")
    served.page.wait_for_function(
        "old => { const a = document.querySelector('#result-file a'); return a && a.getAttribute('href') !== old; }",
        arg=first,
        timeout=120_000,
    )
    got = served.result_png("result-file")
    want = pixels(stylizer.stylize(files / "content.png", [files / "style.png"], alpha=0.8))
    assert np.array_equal(got, want)
    assert stylizer.style_encodes == encodes
    assert served.elsewhere == []  # nothing fetched from the internet


def test_a_decompression_bomb_and_bad_settings_get_a_message_on_the_page(served, files):
    served.upload("content", files / "bomb.png")
    served.upload("styles", files / "style.png")
    served.page.click("#stylize-button")
    text = served.error_text()
    served.shot("4-bomb-refused")
    assert "pixels" in text and "9000x9000" in text
    served.page.reload()
    served.page.wait_for_selector("#stylize-button")
    served.upload("content", files / "content.png")
    served.upload("styles", files / "style.png")
    served.page.locator("#weights").locator("textarea, input").first.fill("1, 2")
    served.page.click("#stylize-button")
    assert "interpolation weights" in served.error_text()
    served.shot("5-bad-weights")


def test_the_server_serves_no_file_from_outside_its_folder(served):
    for target in ["/etc/passwd", str(Path(__file__).resolve())]:
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(f"{served.url}gradio_api/file={target}")
        assert exc.value.code in (403, 404)


def test_without_weights_the_page_says_what_is_missing_and_colour_transfer_works(browser, files, tmp_path):
    served = Served(build_app(vgg=tmp_path / "missing_vgg.pth", decoder=files / "dec.pth"), browser)
    try:
        notice = served.page.locator("#missing-weights")
        assert "not available" in notice.inner_text() and "missing_vgg.pth" in notice.inner_text()
        served.shot("6-no-weights")
        served.page.click("#stylize-button")
        assert "not available" in served.error_text()
        served.page.get_by_role("tab", name="Colour transfer").click()
        served.upload("rc-content", files / "content.png")
        served.upload("rc-palette", files / "palette.png")
        served.page.click("#recolor-button")
        got = served.result_png("rc-result-file")
        served.shot("7-colour-transfer")
        assert np.array_equal(got, pixels(recolor(files / "content.png", files / "palette.png")))
        assert served.elsewhere == []
    finally:
        served.close()
