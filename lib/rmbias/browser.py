"""The rendered book, checked as a reader would see it, in headless Chromium.

For every page of a built book (``_build/html``): Chromium loads it (JavaScript included) and
returns the resulting DOM, which must contain no error traceback; every image it shows must be a
non-empty PNG, JPEG or SVG file that exists, and a PNG must be opaque (a transparent figure loses its
black axes and labels on the theme's dark background); every link to another page of the book must
resolve; every interactive (plotly) figure must have been drawn; and a screenshot of the page is
saved under ``<html>/screenshots/``. One chapter is also opened in the theme's dark mode
(:func:`check_dark_mode`). Chromium is Debian's ``chromium`` package (``make chromium`` installs it).

    python -m rmbias.browser _build/html          # check every page, take screenshots
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
    "--no-first-run",
    "--disable-extensions",
]
TRACEBACK_MARKERS = ("Traceback (most recent call last)", "output traceback", 'class="output error"')


def find_chromium() -> str:
    """The Chromium executable, or a RuntimeError saying how to install it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        "headless Chromium is needed to check the rendered book: run `make chromium` "
        "(Debian/Ubuntu: apt-get install chromium)"
    )


DARK = ["--force-dark-mode"]  # the reader's system asks for dark pages; the theme (mode "auto") follows


def _run(args: list[str], timeout: int = 120, dark: bool = False) -> str:
    done = subprocess.run(
        [find_chromium(), *FLAGS, *(DARK if dark else []), *args], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-500:]}")
    return done.stdout


def dump_dom(page: Path, dark: bool = False) -> str:
    """The page's DOM after Chromium has loaded it and run its scripts."""
    return _run(["--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()], dark=dark)


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 2400, dark: bool = False) -> Path:
    """A PNG of the top of the page as a reader's browser draws it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            "--virtual-time-budget=5000",
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
            page.resolve().as_uri(),
        ],
        dark=dark,
    )
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def image_size(path: Path) -> tuple[int, int] | None:
    """Width and height of a PNG (from its header); (1, 1) for another non-empty image; None if empty
    or not an image."""
    data = path.read_bytes()[:32]
    if not data:
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = struct.unpack(">II", data[16:24])
        return (width, height) if width and height else None
    if data[:3] == b"\xff\xd8\xff" or path.suffix == ".svg":
        return (1, 1)
    return None


def is_opaque(path: Path) -> bool:
    """Whether every pixel of an image is fully opaque (images without an alpha channel always are)."""
    from PIL import Image  # Pillow comes with matplotlib

    with Image.open(path) as image:
        if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
            return True
        return image.convert("RGBA").getchannel("A").getextrema()[0] == 255


def luminance(path: Path, xy: tuple[int, int]) -> float:
    """The brightness (0 black to 1 white) of one pixel of an image."""
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("L").getpixel(xy) / 255


def check_dark_mode(page: Path, shots: Path | None = None) -> list[str]:
    """The page in the theme's dark mode: the theme must switch (``data-theme="dark"``) and the page's
    background must be dark; its figures were already required to be opaque, so their axes stay on
    the figure's own white. The screenshot goes to ``<shots>/<page>--dark.png``."""
    dom = dump_dom(page, dark=True)
    problems = [] if 'data-theme="dark"' in dom else [f"{page.name}: the theme did not switch to dark mode"]
    if shots is not None:
        shot = screenshot(page, shots / f"{page.stem}--dark.png", dark=True)
        if image_size(shot) is None:
            problems.append(f"{page.name}: the dark-mode screenshot is empty")
        elif luminance(shot, (2, 2)) > 0.5:
            problems.append(f"{page.name}: in dark mode the page background is still light")
    return problems


def _local(page: Path, reference: str) -> Path | None:
    """The file a relative reference points at (None for external, data and in-page references)."""
    parsed = urlparse(reference)
    if parsed.scheme in ("http", "https", "mailto", "data", "javascript") or not parsed.path:
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return (page.parent / unquote(parsed.path)).resolve()


def check_page(page: Path, html_root: Path, shots: Path | None = None) -> list[str]:
    """What is wrong with one page as a browser shows it (an empty list when nothing is)."""
    problems = []
    dom = dump_dom(page)
    if "<body" not in dom:
        return [f"{page.name}: Chromium returned no page"]
    for marker in TRACEBACK_MARKERS:
        if marker in dom:
            problems.append(f"{page.name}: shows an error ({marker!r})")
    figures = dom.count('class="plotly-graph-div')
    drawn = dom.count('class="plotly-graph-div js-plotly-plot"')  # plotly.js adds the class once it drew
    if drawn < figures:
        problems.append(f"{page.name}: {figures - drawn} of its {figures} interactive figures were not drawn")
    found = _Links()
    found.feed(dom)
    for src in found.images:
        target = _local(page, src)
        if target is None:
            continue
        if not target.is_file():
            problems.append(f"{page.name}: image {src} is missing")
        elif image_size(target) is None:
            problems.append(f"{page.name}: image {src} is empty or not an image")
        elif target.suffix == ".png" and not is_opaque(target):
            problems.append(f"{page.name}: image {src} has a transparent background (unreadable in dark mode)")
    for href in found.links:
        target = _local(page, href)
        if target is None or target.suffix != ".html" or html_root.resolve() not in target.parents:
            continue
        if not target.is_file():
            problems.append(f"{page.name}: link {href} does not resolve")
    if shots is not None:
        shot = screenshot(
            page, shots / f"{page.relative_to(html_root).with_suffix('').as_posix().replace('/', '--')}.png"
        )
        if image_size(shot) is None:
            problems.append(f"{page.name}: the screenshot is empty")
    return problems


def pages(html_root: Path) -> list[Path]:
    """The book's content pages: every page under ``book/`` (``index.html`` only redirects to one)."""
    return sorted(Path(html_root).glob("book/*.html"))


def check_book(
    html_root: Path, screenshots: bool = True, dark_page: str | None = "02_rm_scoring.html"
) -> dict[str, list[str]]:
    """:func:`check_page` on every page of a built book, and :func:`check_dark_mode` on ``dark_page``
    (reported as ``<page> (dark mode)``) when the book has it; screenshots go to ``<html>/screenshots/``."""
    html_root = Path(html_root)
    if not (html_root / "index.html").is_file():
        raise FileNotFoundError(f"{html_root} holds no built book (no index.html); run `make html` first")
    shots = html_root / "screenshots" if screenshots else None
    report = {page.name: check_page(page, html_root, shots) for page in pages(html_root)}
    dark = html_root / "book" / dark_page if dark_page else None
    if dark is not None and dark.is_file():
        report[f"{dark_page} (dark mode)"] = check_dark_mode(dark, shots)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rmbias.browser", description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, nargs="?", default=Path("_build/html"))
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args(argv)
    report = check_book(args.html, screenshots=not args.no_screenshots)
    bad = {name: problems for name, problems in report.items() if problems}
    for name in report:
        print(f"{'FAIL' if name in bad else 'ok  '} {name}")
        for problem in bad.get(name, []):
            print(f"     {problem}")
    print(f"{len(report) - len(bad)} of {len(report)} pages pass")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
