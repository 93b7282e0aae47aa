"""The local stand-in for R2: large payloads as files under ``<state>/blobs/``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..engine.errors import StorageError


class FileBlobs:
    """`flareflow.durable_objects.ports.Blobs` on the file system; keys map to relative paths.

    A put writes a temporary file and renames it into place, so a payload is whole or absent: a full
    disk or an I/O error mid-write raises `StorageError` and leaves no partial file behind. Messages
    name the key, never the absolute path of the store.
    """

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.root = root
        self.fsync = fsync

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise StorageError(f"invalid blob key {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, text: str) -> None:
        path = self._path(key)
        if path.exists():
            return  # content-addressed: already there
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageError(f"cannot store payload {key} ({exc.strerror or exc})") from None

    def get(self, key: str) -> str:
        try:
            return self._path(key).read_text(encoding="utf-8")
        except OSError as exc:
            raise StorageError(f"payload {key} is not readable ({exc.strerror or exc})") from None

    def delete(self, keys: list[str]) -> None:
        """Remove payloads (a deleted run's), and the folders they leave empty; missing ones are fine."""
        for key in keys:
            path = self._path(key)
            try:
                path.unlink(missing_ok=True)
                folder = path.parent
                while folder != self.root and not any(folder.iterdir()):
                    folder.rmdir()
                    folder = folder.parent
            except OSError as exc:
                raise StorageError(f"cannot remove payload {key} ({exc.strerror or exc})") from None
