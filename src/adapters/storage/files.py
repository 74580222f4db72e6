"""Report files in a directory (``REPORTS_DIR``); file I/O runs in threads, off the event loop."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class FileReportStorage:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        # Names come from our own code (report ids), but never let one escape the directory.
        if not _SAFE_NAME.fullmatch(name) or ".." in name:
            raise ValueError(f"unsafe report file name: {name!r}")
        return self.directory / name

    async def save(self, name: str, content: bytes) -> None:
        await asyncio.to_thread(self._save, self._path(name), content)

    def _save(self, path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write a temporary file and rename it over the target: readers see the old or the new
        # file, never half of one, and a retried job simply replaces the earlier attempt.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def exists(self, name: str) -> bool:
        return await asyncio.to_thread(self._path(name).is_file)

    async def read(self, name: str, *, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self._path(name).open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()
