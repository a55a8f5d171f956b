"""Exponential backoff with jitter, driven by an injectable random source (sleeping is the caller's)."""

from __future__ import annotations

import random


class Backoff:
    """Delays initial, initial*factor, ... capped at `maximum`, each stretched by up to `jitter`.

    `next()` returns the delay to wait now and advances; `reset()` starts over after a success.
    The random source is injected so tests get deterministic delays.
    """

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random,
    ) -> None:
        if initial <= 0 or maximum < initial or factor < 1 or jitter < 0:
            raise ValueError("invalid backoff parameters")
        self._initial = initial
        self._maximum = maximum
        self._factor = factor
        self._jitter = jitter
        self._rng = rng
        self._current = initial

    def next(self) -> float:
        delay = self._current * (1.0 + self._jitter * self._rng.random())
        self._current = min(self._current * self._factor, self._maximum)
        return min(delay, self._maximum * (1.0 + self._jitter))

    def reset(self) -> None:
        self._current = self._initial
