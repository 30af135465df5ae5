"""The documentation site builds, and its pages render in a browser.

The site (docs/, Sphinx) is built once per session into a temporary folder, with
warnings as errors, or taken from ``CYMLP_DOCS_BUILD`` (the html folder of a build CI
made with ``make -C docs html``, so that it is not built twice). Then:

- every internal link, image, stylesheet and script of every built page points at a
  file that exists (and a ``#fragment`` at an element of that page);
- the index page and a gallery page, opened in headless Chromium, have their title and
  heading, and every image on them loaded (``naturalWidth > 0``). Chromium is driven
  through the DevTools protocol over a pipe (``--remote-debugging-pipe``), which needs
  no extra Python package. Without a Chromium binary (Debian's ``chromium``; or
  ``CYMLP_CHROMIUM=/path/to/chrome``) these tests are skipped, except under CI
  (``CI`` set), where that is a failure.

Needs the ``docs`` extra (skipped without Sphinx).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytest.importorskip("sphinx")
for _name in ("numpydoc", "sphinx_gallery", "myst_parser", "pydata_sphinx_theme"):
    pytest.importorskip(_name)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


def _find_chromium():
    given = os.environ.get("CYMLP_CHROMIUM")
    if given:
        return given
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no Chromium binary (apt-get install chromium, or set CYMLP_CHROMIUM)",
)


# ----------------------------------------------------------------------------- the site
@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The folder of the built site (its index.html at the top)."""
    given = os.environ.get("CYMLP_DOCS_BUILD")
    if given:
        html = Path(given).resolve()
        assert (html / "index.html").is_file(), f"CYMLP_DOCS_BUILD={given} has no index.html"
        return html
    out = tmp_path_factory.mktemp("docs")
    html, doctrees = out / "html", out / "doctrees"
    command = [
        sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
        "-d", str(doctrees), str(DOCS), str(html),
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, (
        f"the docs build failed ({seconds:.0f} s):\n"
        f"{result.stdout[-5000:]}\n{result.stderr[-10000:]}"
    )
    return html


class _Page(HTMLParser):
    """The links, ids, title and headings of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []  # (tag, url)
        self.ids = set()
        self.title = ""
        self.h1 = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        url = {"a": "href", "link": "href", "img": "src", "script": "src"}.get(tag)
        if url and attrs.get(url) is not None:
            self.links.append((tag, attrs[url]))
        if tag in ("title", "h1"):
            self._in = tag
            if tag == "h1":
                self.h1.append("")

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1[-1] += data


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _pages(site):
    """The site's pages (not the theme's templates among its static files)."""
    return sorted(p for p in site.rglob("*.html") if p.relative_to(site).parts[0] != "_static")


def _gallery_pages(site):
    return sorted((site / "auto_examples").glob("plot_*.html"))


def test_every_page_has_a_title_and_a_heading(site):
    pages = _pages(site)
    assert len(pages) > 20, [p.name for p in pages]
    for path in pages:
        page = _parse(path)
        assert page.title.strip(), f"{path.relative_to(site)} has no <title>"
        if path.name not in ("genindex.html", "search.html", "py-modindex.html"):
            assert any(h.strip() for h in page.h1), f"{path.relative_to(site)} has no <h1>"


def test_no_broken_internal_links(site):
    parsed = {}

    def page(path):
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    broken = []
    n_checked = 0
    for path in _pages(site):
        for tag, url in page(path).links:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:")):
                continue  # external: not checked (the build has no network)
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            n_checked += 1
            where = f"{path.relative_to(site)}: <{tag}> {url}"
            if not target.is_file():
                broken.append(f"{where} -> missing file")
            elif tag == "img" and target.stat().st_size == 0:
                broken.append(f"{where} -> empty image")
            elif parts.fragment and target.suffix == ".html":
                fragment = unquote(parts.fragment)
                if fragment not in page(target).ids:
                    broken.append(f"{where} -> no element with id {fragment!r}")
    assert n_checked > 500
    assert not broken, "\n".join(broken[:50])


def test_gallery_has_every_example(site):
    """Every examples/plot_*.py has a gallery page showing at least one of its plots."""
    if not EXAMPLES:
        pytest.skip("no examples/plot_*.py yet")
    pages = {p.stem for p in _gallery_pages(site)}
    assert pages == {p.stem for p in EXAMPLES}
    for path in _gallery_pages(site):
        images = [url for tag, url in _parse(path).links if tag == "img" and "sphx_glr" in url]
        assert images, f"{path.name} shows no plot"


def test_api_reference_lists_the_public_api(site):
    import cymlp
    import cymlp.callbacks

    generated = {p.stem for p in (site / "generated").glob("*.html")}
    for name in ("MLPClassifier", "MLPRegressor", "load", "show_versions", "from_sklearn"):
        assert f"cymlp.{name}" in generated
    for name in cymlp.callbacks.__all__:
        assert f"cymlp.callbacks.{name}" in generated
    page = _parse(site / "generated" / "cymlp.MLPClassifier.html")
    assert "MLPClassifier" in page.title
    ids = page.ids
    for method in ("fit", "partial_fit", "predict_proba", "summary", "save", "to_sklearn"):
        assert f"cymlp.MLPClassifier.{method}" in ids, method
    # scikit-learn's own methods are scikit-learn's to document
    assert "cymlp.MLPClassifier.set_fit_request" not in ids


# ----------------------------------------------------------------------- in a browser
class _DevTools:
    """Chromium, headless, driven through the DevTools protocol over a pipe: JSON
    messages separated by NUL bytes, written to its fd 3 and read from its fd 4."""

    def __init__(self, binary, profile):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # numbers above 4, so that putting them at 3 and 4 in the child clobbers neither
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)
        args = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--hide-scrollbars", "--window-size=1280,2000",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank",
        ]  # fmt: skip
        # a small Python launcher moves the pipe ends to fds 3 and 4 (a POSIX shell's
        # redirections only take single-digit fds) and execs Chromium
        launcher = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4)"
        launcher += "; os.execvp(sys.argv[3], sys.argv[3:])"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", launcher, str(child_r), str(child_w), *args],
            pass_fds=(child_r, child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(child_r)
        os.close(child_w)
        self._out, self._in = to_chrome_w, from_chrome_r
        self._buffer = b""
        self._events = []
        self._id = 0

    def _read(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium exited (status {self.proc.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, session=None, timeout=60, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_event(self, method, session, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self._events.pop(i)
            self._events.append(self._read(deadline))

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)


# Waits for every image (lazy ones made eager) to load or fail, then reports the page.
_INSPECT = """
(async () => {
  const images = Array.from(document.images);
  images.forEach(img => { if (img.loading === "lazy") img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener("load", done);
                            img.addEventListener("error", done); })));
  return {
    title: document.title,
    h1: Array.from(document.querySelectorAll("h1"), h => h.textContent.trim()),
    text: document.body.innerText.length,
    images: images.map(img => ({src: img.currentSrc || img.src, complete: img.complete,
                                width: img.naturalWidth, height: img.naturalHeight})),
  };
})()
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.fail("CI: no Chromium binary; .ci/run installs Debian's chromium package")
    devtools = _DevTools(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    yield devtools
    devtools.close()


def _render(browser, path, screenshot):
    """Open `path` in a new tab; what _INSPECT reports, and a screenshot saved."""
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    try:
        browser.call("Page.enable", session)
        browser.call("Page.navigate", session, url=path.as_uri())
        browser.wait_event("Page.loadEventFired", session)
        result = browser.call(
            "Runtime.evaluate", session, expression=_INSPECT, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        report = result["result"]["value"]
        png = base64.b64decode(browser.call("Page.captureScreenshot", session)["data"])
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
        screenshot.write_bytes(png)
        return report
    finally:
        browser.call("Target.closeTarget", targetId=target)


def _check_rendered(report, name):
    assert report["title"].strip(), f"{name}: empty title"
    assert "cymlp" in report["title"], report["title"]
    assert any(report["h1"]), f"{name}: no heading"
    assert report["text"] > 200, f"{name}: almost no text"
    failed = [img for img in report["images"] if not (img["complete"] and img["width"] > 0)]
    assert not failed, f"{name}: images not loaded: {failed}"


@needs_chromium
def test_index_page_renders(site, browser, tmp_path):
    report = _render(browser, site / "index.html", tmp_path / "index.png")
    _check_rendered(report, "index.html")
    assert report["h1"][0].startswith("cymlp")


@needs_chromium
def test_gallery_pages_render_with_their_plots(site, browser, tmp_path):
    if not EXAMPLES:
        pytest.skip("no examples/plot_*.py yet")
    index = _render(browser, site / "auto_examples" / "index.html", tmp_path / "gallery.png")
    _check_rendered(index, "auto_examples/index.html")
    thumbnails = [img for img in index["images"] if "sphx_glr" in img["src"]]
    assert len(thumbnails) == len(EXAMPLES)

    page = _gallery_pages(site)[0]
    report = _render(browser, page, tmp_path / "example.png")
    _check_rendered(report, page.name)
    plots = [img for img in report["images"] if "sphx_glr" in img["src"]]
    assert plots, f"{page.name} shows no plot"
    assert all(img["width"] >= 100 and img["height"] >= 100 for img in plots), plots
