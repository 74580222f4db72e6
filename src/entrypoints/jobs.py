"""Job handlers shared by the SAQ worker and the in-process runner."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from entrypoints.container import Container

log = logging.getLogger(__name__)


async def run_job(container: Container, kind: str, payload: dict[str, Any]) -> None:
    log.info("job %s received (no handler wired yet)", kind)
