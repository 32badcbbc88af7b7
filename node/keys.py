"""Encrypted keystores (eth-account, Web3 Secret Storage v3) and the one-process-per-key lock.

    ks = Keystore(datadir)
    address = ks.new("pw")
    account = ks.unlock(address, "pw")        # LocalAccount; BadPassword on a wrong one
    with NodeLock(datadir, address):          # NodeLocked if another process runs this key
        ...

Files live in `<datadir>/keystore/<address>.json`, mode 0600. Running the same key
twice is how validators get slashed, hence the lock (an flock, released by the OS
even when the holder is killed -9).
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from node.errors import BadPassword, KeystoreError, NodeLocked, UnknownAccount

# scrypt n: eth-account's default (2**18, ~1 s and 256 MiB per unlock) for real keys;
# LIGHT_KDF (geth's --lightkdf) for devnets and tests.
STANDARD_KDF = 2**18
LIGHT_KDF = 2**12


def read_password_file(path: str | os.PathLike) -> str:
    """The first line of a password file (a trailing newline is not part of the password)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise KeystoreError(f"cannot read password file {path}: {e.strerror}") from None
    return text.splitlines()[0] if text else ""


def normalize_address(address: str) -> str:
    if not isinstance(address, str) or not is_address(address):
        raise UnknownAccount(f"{address!r} is not an Ethereum address (0x + 40 hex digits)")
    return to_checksum_address(address)


class Keystore:
    """The encrypted keys of one data dir."""

    def __init__(self, datadir: str | os.PathLike, scrypt_n: int = STANDARD_KDF):
        self.dir = Path(datadir) / "keystore"
        self.scrypt_n = scrypt_n

    def path(self, address: str) -> Path:
        return self.dir / f"{normalize_address(address).lower()[2:]}.json"

    def new(self, password: str) -> str:
        """Create a random key; returns its checksummed address."""
        return self.import_key("0x" + secrets.token_hex(32), password)

    def import_key(self, private_key: str | bytes, password: str) -> str:
        """Encrypt a raw private key (hex or 32 bytes); refuses to overwrite an existing key."""
        try:
            account = Account.from_key(private_key)
        except (ValueError, TypeError) as e:
            raise KeystoreError(f"not a valid private key (expected 32 bytes of hex): {e}") from None
        path = self.path(account.address)
        if path.exists():
            raise KeystoreError(f"a keystore for {account.address} already exists at {path}")
        keyfile = Account.encrypt(account.key, password, kdf="scrypt", iterations=self.scrypt_n)
        self._write_private(path, json.dumps(keyfile).encode())
        return account.address

    def list(self) -> list[str]:
        """Checksummed addresses of every keystore, sorted."""
        if not self.dir.is_dir():
            return []
        out = []
        for f in sorted(self.dir.glob("*.json")):
            try:
                out.append(to_checksum_address(json.loads(f.read_text())["address"]))
            except (ValueError, KeyError, OSError):
                continue  # not a keystore: ignore rather than break listing
        return sorted(out)

    def export(self, address: str) -> dict:
        """The encrypted keystore JSON (for backup or another wallet)."""
        path = self.path(address)
        if not path.exists():
            raise UnknownAccount(self._unknown(address))
        try:
            keyfile = json.loads(path.read_text())
        except (OSError, ValueError) as e:  # ValueError covers bad UTF-8 and bad JSON
            raise KeystoreError(f"{path} is not a readable keystore file: {e}") from None
        if not isinstance(keyfile, dict) or "crypto" not in keyfile and "Crypto" not in keyfile:
            raise KeystoreError(f"{path} is not an encrypted keystore (no 'crypto' section)")
        return keyfile

    def unlock(self, address: str, password: str) -> LocalAccount:
        """Decrypt once at start; BadPassword if the password is wrong."""
        keyfile = self.export(address)
        try:
            key = Account.decrypt(keyfile, password)
        except ValueError as e:
            if "MAC mismatch" in str(e):
                raise BadPassword(f"wrong password for {normalize_address(address)}") from None
            raise KeystoreError(f"cannot decrypt keystore of {address}: {e}") from None
        except (KeyError, TypeError) as e:  # a keystore-shaped file with missing/mistyped fields
            raise KeystoreError(f"keystore of {address} is malformed: missing or bad field {e}") from None
        return Account.from_key(key)

    def _unknown(self, address: str) -> str:
        known = ", ".join(self.list()) or "none"
        return (
            f"no keystore for {normalize_address(address)} in {self.dir} (known: {known}); "
            "create one with `trainchain keys new` or `trainchain keys import`"
        )

    @staticmethod
    def _write_private(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # never a half-written keystore


class NodeLock:
    """`<datadir>/locks/<address>.lock`, held (flock) while a node runs with that key."""

    def __init__(self, datadir: str | os.PathLike, address: str):
        self.address = normalize_address(address)
        self.path = Path(datadir) / "locks" / f"{self.address.lower()[2:]}.lock"
        self._fd: int | None = None

    def acquire(self) -> "NodeLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise NodeLocked(
                f"account {self.address} is already in use by process {holder} "
                f"(lock file {self.path}); running one key twice gets it slashed"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "NodeLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
