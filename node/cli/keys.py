"""`trainchain keys new|import|list|export`: encrypted keystores in <datadir>/keystore."""
from __future__ import annotations

import click

from node.cli.options import NodeContext, node_options
from node.errors import KeystoreError

LIGHT_KDF_HELP = "Cheap scrypt (devnets and tests only; like geth --lightkdf)."


@click.group()
def keys() -> None:
    """Create, import, list and export encrypted keys."""


@keys.command("new")
@click.option("--light-kdf", is_flag=True, help=LIGHT_KDF_HELP)
@node_options
def new(node: NodeContext, light_kdf: bool) -> None:
    """Create a random key, encrypted with a password (prompted twice, or --password-file)."""
    password = node.password("the new key", confirm=True)
    if not password:
        raise KeystoreError("refusing an empty password")
    ks = node.keystore(light_kdf)
    address = ks.new(password)
    node.emit({"address": address, "path": str(ks.path(address))}, f"created {address}\n  {ks.path(address)}")


@keys.command("import")
@click.option("--private-key-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Read the hex private key from this file (else prompted, hidden).")
@click.option("--light-kdf", is_flag=True, help=LIGHT_KDF_HELP)
@node_options
def import_(node: NodeContext, private_key_file: str | None, light_kdf: bool) -> None:
    """Encrypt an existing private key into the keystore."""
    if private_key_file:
        with open(private_key_file) as f:
            key = f.read().strip()
    else:
        key = click.prompt("Private key (hex)", hide_input=True, err=True).strip()
    password = node.password("the imported key", confirm=True)
    if not password:
        raise KeystoreError("refusing an empty password")
    ks = node.keystore(light_kdf)
    address = ks.import_key(key, password)
    node.emit({"address": address, "path": str(ks.path(address))}, f"imported {address}\n  {ks.path(address)}")


@keys.command("list")
@node_options
def list_(node: NodeContext) -> None:
    """Addresses of the keys in the data dir."""
    ks = node.keystore()
    addresses = ks.list()
    node.emit(
        [{"address": a, "path": str(ks.path(a))} for a in addresses],
        lambda: "\n".join(addresses) if addresses else f"no keys in {ks.dir}",
    )


@keys.command("export")
@click.argument("address")
@click.option("--private-key", "show_private_key", is_flag=True,
              help="Print the raw private key instead of the encrypted keystore (asks the password).")
@node_options
def export(node: NodeContext, address: str, show_private_key: bool) -> None:
    """Print the encrypted keystore JSON of ADDRESS (a backup), or its raw private key."""
    import json

    ks = node.keystore()
    keyfile = ks.export(address)
    if show_private_key:
        account = ks.unlock(address, node.password(address))
        node.note("warning: anyone who sees this private key controls the account")
        node.emit({"address": account.address, "private_key": "0x" + account.key.hex()}, "0x" + account.key.hex())
    else:
        node.emit({"address": keyfile.get("address"), "keystore": keyfile}, json.dumps(keyfile, indent=2))
