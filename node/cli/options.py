"""Options every command shares, and the context object they build. The convention:

- the shared options are defined here once (DATADIR_OPTION, IPFS_API_OPTION, JSON_OPTION; the
  set `node_options` for commands that reach the chain, `store_option` for the store);
- results go to stdout: with --json exactly one JSON object (`NodeContext.emit`), else text;
- progress and logs go to stderr (`NodeContext.note`, logging), never into the JSON;
- user errors (TrainchainError) are one line (and `{"error": ...}` on stdout with --json).

    @click.command()
    @node_options                       # --datadir --rpc --deployment --account --password-file --json -v
    def status(node: NodeContext): ...

`node_options` passes a `NodeContext` as the first argument: the config (flags > env >
config file), the keystore, the unlocked account, the chain client, the content store,
and `emit()` for text-or-JSON output. User errors (TrainchainError and the engine/store
errors) become one-line messages; with --json also `{"error": ...}` on stdout. Nothing
here imports torch.
"""
from __future__ import annotations

import functools
import json
import logging
import re
import sys
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any, Callable

import click

from node.errors import AmountError, KeystoreError, TrainchainError, UnknownAccount

# ---------------------------------------------------------------- amounts
UNITS = {"eth": 10**18, "ether": 10**18, "gwei": 10**9, "wei": 1}
MAX_WEI = 2**256 - 1
_AMOUNT = re.compile(r"^\s*(?P<num>[0-9][0-9_]*(?:\.[0-9]+)?|\.[0-9]+)\s*(?P<unit>[a-zA-Z]*)\s*$")


def parse_amount(text: str, allow_zero: bool = False) -> int:
    """'1.5' / '1.5eth' / '1000000gwei' / '10wei' -> wei. AmountError in words otherwise."""
    raw = str(text)
    if raw.strip().startswith("-"):
        raise AmountError(f"amount {raw!r} is negative")
    m = _AMOUNT.match(raw)
    if not m:
        raise AmountError(f"malformed amount {raw!r}: use a number of ether with an optional unit, e.g. 1.5, 1.5eth, 1000000gwei")
    unit = m["unit"].lower() or "eth"
    if unit not in UNITS:
        raise AmountError(f"unknown unit {m['unit']!r} in {raw!r}: use eth, gwei or wei")
    digits = m["num"].replace("_", "")
    with localcontext(prec=len(digits) + 30):  # exact: the default 28 digits would round big amounts
        try:
            value = Decimal(digits) * UNITS[unit]
        except InvalidOperation:
            raise AmountError(f"malformed amount {raw!r}") from None
        if value != value.to_integral_value():
            raise AmountError(f"amount {raw!r} is not a whole number of wei")
        wei = int(value)
    if wei == 0 and not allow_zero:
        raise AmountError(f"amount {raw!r} is zero")
    if wei > MAX_WEI:
        raise AmountError(f"amount {raw!r} is out of range (more than 2**256-1 wei)")
    return wei


class AmountType(click.ParamType):
    name = "AMOUNT"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_amount(value)
        except AmountError as e:
            self.fail(str(e), param, ctx)


AMOUNT = AmountType()


# ---------------------------------------------------------------- context
class NodeContext:
    """What a command needs, built lazily from the shared flags."""

    def __init__(self, flags: dict[str, Any], as_json: bool, verbose: int):
        self.flags = flags
        self.as_json = as_json
        self.verbose = verbose
        self._config = None
        self._account = None
        self._chain = None

    # ------------------------------------------------------------ config
    @property
    def config(self):
        if self._config is None:
            from node.config import load_config

            self._config = load_config(**self.flags)
        return self._config

    @property
    def datadir(self) -> Path:
        return self.config.datadir

    def keystore(self, light_kdf: bool = False):
        from node.keys import LIGHT_KDF, STANDARD_KDF, Keystore

        return Keystore(self.datadir, scrypt_n=LIGHT_KDF if light_kdf else STANDARD_KDF)

    # ------------------------------------------------------------ keys
    def account_address(self) -> str:
        """--account, else the config's, else the only key in the keystore."""
        from node.keys import normalize_address

        if self.config.account:
            return normalize_address(self.config.account)
        known = self.keystore().list()
        if len(known) == 1:
            return known[0]
        if not known:
            raise UnknownAccount(
                f"no keys in {self.datadir / 'keystore'}: create one with `trainchain keys new` "
                "or import one with `trainchain keys import`"
            )
        raise UnknownAccount(f"several keys in the keystore, pick one with --account: {', '.join(known)}")

    def password(self, address: str, confirm: bool = False) -> str:
        """From --password-file (headless), else a hidden prompt."""
        from node.keys import read_password_file

        if self.config.password_file:
            return read_password_file(self.config.password_file)
        return click.prompt(f"Password for {address}", hide_input=True, confirmation_prompt=confirm, err=True)

    def unlock(self):
        """The signing account, decrypted once."""
        if self._account is None:
            address = self.account_address()
            keystore = self.keystore()
            keystore.export(address)  # UnknownAccount before asking for a password
            self._account = keystore.unlock(address, self.password(address))
        return self._account

    # ------------------------------------------------------------ chain, store
    def chain(self, sign: bool = False, require_deployment: bool = True):
        from node.chain.client import ChainClient

        account = self.unlock() if sign else None
        if self._chain is None or (sign and self._chain.account is None):
            self._chain = ChainClient.from_config(self.config, account, require_deployment=require_deployment)
            if require_deployment:
                self._chain.check_chain()
        return self._chain

    def store(self):
        """The node's store; once the chain is open, one that fetches what it lacks from the
        peers advertised on-chain and the configured gateways (node.store.peers)."""
        from node.store import open_store

        local = open_store(self.datadir, self.config.ipfs_api)
        if self._chain is None or self._chain.deployment is None:
            return local
        from node.store.peers import fetching_store

        return fetching_store(self.config, self._chain, local)

    # ------------------------------------------------------------ output
    def emit(self, data: Any, text: str | Callable[[], str] | None = None) -> None:
        """JSON (--json) or human text (default: the JSON, indented)."""
        if self.as_json:
            click.echo(json.dumps(data, default=_json_default))
        else:
            click.echo(text() if callable(text) else text if text is not None else json.dumps(data, indent=2, default=_json_default))

    def note(self, message: str) -> None:
        """Progress for humans, on stderr (never mixed into --json output)."""
        click.echo(message, err=True)


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def hexstr(value: bytes) -> str:
    return "0x" + bytes(value).hex()


# ---------------------------------------------------------------- errors
def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a user can act on: one root, TrainchainError (engine, store, contracts and
    node errors all derive from it)."""
    return (TrainchainError,)


def fail(node: NodeContext | None, message: str) -> None:
    if node is not None and node.as_json:
        click.echo(json.dumps({"error": message}))
    raise click.ClickException(message)


# ---------------------------------------------------------------- the options
DATADIR_OPTION = click.option("--datadir", type=click.Path(file_okay=False, path_type=Path), default=None,
                              help="Data dir (keys, deployment.json, db, ipfs/). Env TRAINCHAIN_DATADIR; default per OS.")
IPFS_API_OPTION = click.option("--ipfs-api", default=None, metavar="ADDR",
                               help="Kubo RPC API (e.g. /ip4/127.0.0.1/tcp/5001/http; env TRAINCHAIN_IPFS_API); "
                                    "default: the embedded store.")
JSON_OPTION = click.option("--json", "as_json", is_flag=True,
                           help="Machine-readable: one JSON object on stdout (progress stays on stderr).")

_OPTIONS = [
    DATADIR_OPTION,
    click.option("--rpc", "rpc_urls", multiple=True, metavar="URL",
                 help="RPC endpoint; repeat for failover. Default: the deployment's."),
    click.option("--deployment", "deployment_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="deployment.json (default <datadir>/deployment.json)."),
    click.option("--account", default=None, help="Address of the keystore to use."),
    click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Read the keystore password from this file (headless runs)."),
    JSON_OPTION,
    click.option("-v", "--verbose", count=True, help="More logging (-vv: debug)."),
]


def store_option(f: Callable) -> Callable:
    """--ipfs-api for commands that use the content store (put it below @node_options)."""
    return IPFS_API_OPTION(f)


def node_options(f: Callable) -> Callable:
    """Add the shared options; call f(node: NodeContext, **its own options); map user errors."""

    @functools.wraps(f)
    def wrapper(datadir, rpc_urls, deployment_file, account, password_file, as_json, verbose, **kwargs):
        flags = {"datadir": datadir, "rpc_urls": rpc_urls or None, "deployment_file": deployment_file,
                 "account": account, "password_file": password_file}
        if "ipfs_api" in kwargs:  # from @store_option
            flags["ipfs_api"] = kwargs.pop("ipfs_api")
        if verbose:
            flags["log_level"] = "DEBUG" if verbose > 1 else "INFO"
        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        node = NodeContext(flags, as_json, verbose)
        try:
            return f(node, **kwargs)
        except click.ClickException:
            raise
        except user_errors() as e:
            fail(node, str(e))

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


__all__ = ["node_options", "store_option", "NodeContext", "AMOUNT", "parse_amount", "hexstr", "fail",
           "DATADIR_OPTION", "IPFS_API_OPTION", "JSON_OPTION"]
