"""The composition root.

- ``adapters``: the one place that picks an adapter for each port, from the settings;
- ``use_cases``: each feature's typed bundle of use cases (``entrypoints.bundles``) on those adapters;
- ``container``: both, plus what runs beside the requests (job runner, schedule, outbox relay,
  readiness, metric sources) and the process's start-up and shutdown.

Only the process entry points import it (``entrypoints.http.app``, ``entrypoints.worker``,
``entrypoints.cli``); everything else is handed the bundles it needs (import-linter keeps it so).
"""

from entrypoints.wiring.container import Container

__all__ = ["Container"]
