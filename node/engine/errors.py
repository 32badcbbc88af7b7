"""Engine errors: all are TrainchainError, so the CLI prints them in one line."""
from __future__ import annotations

from node.errors import TrainchainError


class EngineError(TrainchainError):
    """Root of the engine's errors."""


class SpecError(EngineError, ValueError):
    """A task spec that cannot be read or is not valid."""


class RuntimeMismatch(EngineError, RuntimeError):
    """This process cannot reproduce the spec's runtime; the message says why."""


class DatasetError(EngineError, ValueError):
    """A dataset that cannot be built, fetched or verified."""


class StateError(EngineError, ValueError):
    """A state file or object that is malformed, hostile or does not match its hash."""
