"""The web console's files, served as the same bytes by the local server and by the Worker.

The console is a dependency-free single-page app kept in ``static/`` inside the package; ``flareflow
build`` vendors this package into the Worker like the rest of flareflow's Worker-side code, so both
hosts answer ``GET /`` and ``GET /console/...`` from one `Assets` table (no CDN, no network).

Every asset but the page itself is served under a content-hashed name (``app.3f9a1c2b7d4e.js``)
with an immutable cache header; the page names them by hash (its references, and the ``./x.js``
imports inside the scripts, are rewritten here), so a new flareflow is never mixed with a cached
old script. The page is served ``no-cache`` and with a strict Content-Security-Policy.

Standard library only: this module runs inside a Python Worker.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Final

#: Where the console's assets are served; ``GET /`` is the page itself.
PREFIX: Final = "/console/"

#: The page may load only what this origin serves; no inline script or style, no framing.
CSP: Final = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
              "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_PAGE: Final = "index.html"
#: A path the console may own: ``/console/`` and one plain file name (no slash, no ``..``).
_ASSET_PATH = re.compile(r"^/console/[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")
_HASH_CHARS: Final = 12
_REFERENCE = re.compile(r"""(?P<q>["'])(?:/console/|\./)(?P<name>[A-Za-z0-9_-]+\.(?:js|css|svg))(?P=q)""")
_SECURITY: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@dataclass(frozen=True)
class Asset:
    """One file as it goes on the wire."""

    body: bytes
    content_type: str
    cache_control: str

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": self.content_type, "cache-control": self.cache_control,
                **_SECURITY}

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def _hashed(name: str, body: bytes) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:_HASH_CHARS]}{dot}{ext}"


class Assets:
    """The console's files by the path they are served at (``/`` and ``/console/<hashed name>``)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        names: dict[str, str] = {}
        bodies: dict[str, bytes] = {}
        # scripts import one another: hash in dependency order so an importer's hash covers the
        # hashed names it imports (an import cycle is refused: the packaged table is built by a test)
        pending = sorted(n for n in files if n != _PAGE and "." + n.rpartition(".")[2] in _TYPES)
        while pending:
            progressed = False
            for name in list(pending):
                wanted = {m.group("name") for m in _REFERENCE.finditer(files[name].decode("utf-8"))}
                if (wanted & set(pending)) - {name}:
                    continue
                body = self._rewrite(files[name], names)
                names[name], bodies[name] = _hashed(name, body), body
                pending.remove(name)
                progressed = True
            if not progressed:  # a served module would import an unhashed name nobody serves
                raise ValueError("the console's modules import each other in a cycle: " + ", ".join(pending))
        self.names = names
        self._by_path: dict[str, Asset] = {}
        for name, body in bodies.items():
            content_type = _TYPES["." + name.rpartition(".")[2]]
            self._by_path[PREFIX + names[name]] = Asset(body, content_type, "public, max-age=31536000, immutable")
        if _PAGE in files:
            page = self._rewrite(files[_PAGE], names, absolute=True)
            self._by_path["/"] = Asset(page, _TYPES[".html"], "no-cache")

    @staticmethod
    def _rewrite(body: bytes, names: dict[str, str], *, absolute: bool = False) -> bytes:
        def swap(match: re.Match[str]) -> str:
            name = match.group("name")
            if name not in names:
                return match.group(0)
            quote = match.group("q")
            where = PREFIX if absolute or match.group(0)[1:].startswith(PREFIX) else "./"
            return f"{quote}{where}{names[name]}{quote}"

        return _REFERENCE.sub(swap, body.decode("utf-8")).encode("utf-8")

    def get(self, path: str) -> Asset | None:
        """The asset served at ``path`` (``/`` or ``/console/...``), or None."""
        return self._by_path.get(path)

    def paths(self) -> list[str]:
        return sorted(self._by_path)


_loaded: list[Assets] = []


def assets() -> Assets:
    """The packaged console (read once per process or isolate)."""
    if not _loaded:
        root = resources.files("flareflow.console").joinpath("static")
        files: dict[str, bytes] = {}
        if root.is_dir():
            for entry in root.iterdir():
                if entry.is_file() and not entry.name.startswith("."):
                    files[entry.name] = entry.read_bytes()
        _loaded.append(Assets(files))
    return _loaded[0]


def is_console_path(path: str) -> bool:
    """Paths the console owns: public, like ``/health`` (the data calls need the token)."""
    return path == "/" or _ASSET_PATH.match(path) is not None


__all__ = ["CSP", "PREFIX", "Asset", "Assets", "assets", "is_console_path"]
