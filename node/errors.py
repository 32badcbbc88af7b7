"""One exception root for everything a user can cause or fix.

The CLI turns any `TrainchainError` into a one-line message (no traceback); anything
else is a bug and keeps its traceback. Messages say what went wrong and what to do.
"""
from __future__ import annotations


class TrainchainError(Exception):
    """Root of the errors a user can act on."""


class ConfigError(TrainchainError):
    """A bad config file, env variable or flag."""


class AmountError(TrainchainError, ValueError):
    """A malformed or out-of-range amount of ether."""


class KeystoreError(TrainchainError):
    """Keystore problems: unreadable files, duplicate keys, bad private keys."""


class UnknownAccount(KeystoreError):
    """No keystore for this address in the data dir."""


class BadPassword(KeystoreError):
    """The password does not decrypt the keystore."""


class NodeLocked(TrainchainError):
    """Another process already runs this key (lock file held)."""


class DeploymentError(TrainchainError):
    """No deployment.json, or one that does not match the chain."""


class ChainError(TrainchainError):
    """A transaction or call failed; for reverts `reason` is the contract's words."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


class RPCUnavailable(ChainError):
    """Every RPC endpoint failed (connection refused, timeout, HTTP error)."""


class TxTimeout(ChainError):
    """A transaction was not mined in time, even after replacement."""


class PreflightError(TrainchainError):
    """An action cannot happen now; the message says why (not staked, window closed...)."""


class DevnetError(TrainchainError):
    """The local devnet could not be started, found or stopped."""
