"""The reader page in a real browser (headless Chromium) on a real server:
highlighted code is visible in the light and the dark scheme, and a title
holding a ``<script>`` is shown as text and never runs.

Without Chromium these tests skip, unless ``HEPCORE_REQUIRE_BROWSER=1``
(set in CI, which installs Chromium): then they fail.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
XSS_TITLE = ("<script>document.body.appendChild(document.createElement('div')).id='pwned'"
             "</script> & <b>bold</b>")
CODE = '''\
import json
from pathlib import Path


class Inventory:
    """Items on the shelf, by name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: dict[str, int] = {}

    def load(self) -> None:
        # Start empty when the file is missing.
        if self.path.exists():
            self.items = json.loads(self.path.read_text())

    def add(self, name: str, count: int = 1) -> int:
        self.items[name] = self.items.get(name, 0) + count
        return self.items[name]


def main() -> None:
    shelf = Inventory(Path("shelf.json"))
    shelf.load()
    print("hammers:", shelf.add("hammer", 3))


if __name__ == "__main__":
    main()
'''


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("HEPCORE_REQUIRE_BROWSER") == "1":
        pytest.fail("Chromium is required (HEPCORE_REQUIRE_BROWSER=1) and is not installed")
    pytest.skip("Chromium is not installed (set HEPCORE_REQUIRE_BROWSER=1 to make this fail)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    chromium()
    data = tmp_path_factory.mktemp("browser")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--data", str(data), "init"]) == 0
        (data / "hepcore.toml").write_text('[services.paste]\nprefix = "/"\n'
                                           '[services.uploader]\nprefix = "/uploader"\n')
        assert main(["--data", str(data), "accounts", "create", "viewer"]) == 0
        assert main(["--data", str(data), "keys", "create", "--service", "paste",
                     "--account", "viewer"]) == 0
    key = out.getvalue().strip().splitlines()[-1]
    with run_server(data, "wsgi", workers=1, threads=4) as srv:
        yield srv, key


def browse(url: str, tmp: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}", *flags, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


def screenshot(url: str, tmp: Path, scheme: str) -> Image.Image:
    path = tmp / f"{scheme}.png"
    dark = "0" if scheme == "dark" else "1"
    proc = browse(url, tmp, f"--screenshot={path}", "--window-size=1000,760",
                  f"--blink-settings=preferredColorScheme={dark}")
    assert path.exists(), proc.stderr[-2000:]
    return Image.open(path).convert("RGB")


def create(server: tuple[RunningServer, str], **body: object) -> str:
    srv, key = server
    r = requests.post(srv.url + "/api/paste", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["url"])


def count(img: Image.Image, test) -> int:  # type: ignore[no-untyped-def]
    data = img.tobytes()
    return sum(1 for i in range(0, len(data), 3) if test(data[i], data[i + 1], data[i + 2]))


def luminance(px: tuple[int, int, int]) -> float:
    return 0.2126 * px[0] + 0.7152 * px[1] + 0.0722 * px[2]


def test_highlighted_code_in_light_and_dark(server, tmp_path: Path) -> None:
    url = create(server, title="inventory.py", content=CODE, language="python")
    light = screenshot(url, tmp_path, "light")
    dark = screenshot(url, tmp_path, "dark")
    # The page background (top-left corner) follows the scheme.
    assert luminance(light.getpixel((5, 5))) > 230
    assert luminance(dark.getpixel((5, 5))) < 50
    # Light ("default" style): green keywords, blue function names.
    assert count(light, lambda r, g, b: g > 100 and r < 60 and b < 60) > 200
    assert count(light, lambda r, g, b: b > 200 and r < 60 and g < 60) > 100
    # Dark ("monokai"): cyan keywords, yellow strings, green names on a dark ground.
    assert count(dark, lambda r, g, b: b > 200 and g > 180 and r < 140) > 200
    assert count(dark, lambda r, g, b: r > 200 and g > 200 and b < 150) > 100
    assert count(dark, lambda r, g, b: g > 200 and r > 140 and b < 80) > 50


def test_script_in_title_is_text_and_does_not_run(server, tmp_path: Path) -> None:
    url = create(server, title=XSS_TITLE, content="plain text\n" * 3)
    proc = browse(url, tmp_path, "--dump-dom")
    dom = proc.stdout
    assert "<h1>" in dom, proc.stderr[-2000:]
    assert 'id="pwned"' not in dom
    assert "<b>bold</b>" not in dom
    assert ("&lt;script&gt;document.body.appendChild(document.createElement('div')).id="
            "'pwned'&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;</h1>") in dom
