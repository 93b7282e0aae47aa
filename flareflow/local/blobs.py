"""The local stand-in for R2: large payloads as files under ``<state>/blobs/``."""

from __future__ import annotations

import os
from pathlib import Path

from ..engine.errors import StorageError


class FileBlobs:
    """`flareflow.durable_objects.ports.Blobs` on the file system; keys map to relative paths."""

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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            if self.fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> str:
        try:
            return self._path(key).read_text(encoding="utf-8")
        except OSError as exc:
            raise StorageError(f"payload {key} is missing from {self.root} ({exc.strerror})") from None
