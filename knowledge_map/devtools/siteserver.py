"""Serve a built site on loopback: used by the browser tests, the benchmark and the screenshot.

The site's static files (``site/``: index.html, js/, css/) are tracked in
git; its data (``site/data/``: ``index.json`` and one folder per model's map)
is built by the workflow.  :func:`assemble_site` puts both into one folder, and :func:`serve` serves a folder from a
background thread on 127.0.0.1 with an OS-chosen port, the way any static
server (``python -m http.server -d site``) would.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parents[2] / "site"
STATIC_PARTS = ("index.html", "js", "css")
#: Debian's Chromium (browser downloads are impossible offline) and the flags that keep it
#: headless and off the network, shared by the browser tests, the benchmark and the screenshot.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def assemble_site(data_dir: str | Path, dest: str | Path, site_dir: str | Path = SITE_DIR) -> Path:
    """Copy the static site from ``site_dir`` and a site/data folder ``data_dir`` (as ``data/``) into ``dest``; return ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for part in STATIC_PARTS:
        source = Path(site_dir) / part
        if source.is_dir():
            shutil.copytree(source, dest / part, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / part)
    shutil.copytree(data_dir, dest / "data", dirs_exist_ok=True)
    return dest


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log every request to stderr."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(directory: str | Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (free port) while the block runs; yield the base URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
