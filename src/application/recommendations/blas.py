"""One BLAS thread for the recommender's dense algebra.

OpenBLAS threads collapse when other threads or processes share the cores. Measured on 2 busy
cores: 1,000 EASE refit solves of ~100×100 took 5 s instead of 0.08 s, and the 5,000-item inverse
24 s instead of 10 s (an idle machine loses 2× on that inverse, 1.7 vs 3.4 s); a feed ranking's
ALS term (one small solve, one product over 50,000 vectors) took 10.6 ms instead of 2.1 ms, the
threads' wake-up costing more than the work.

One controller for the process: building one inspects every loaded library (0.3 ms), while
entering its limit costs 10 µs, cheap enough for every ranking. Limits are process-wide, so two
threads entering at once may restore each other's setting early: only speed depends on it.
"""

from __future__ import annotations

import contextlib
from functools import cache
from typing import Any


@cache
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded() -> contextlib.AbstractContextManager[object]:
    """A context in which BLAS runs on the calling thread alone."""
    limiter: contextlib.AbstractContextManager[object] = _controller().limit(limits=1, user_api="blas")
    return limiter
