"""`trainchain keys` through CliRunner: prompts, --password-file, --json, errors without tracebacks."""
from __future__ import annotations

import json
import os
import stat

from eth_account import Account

KEY = "0x" + "5a" * 32


def test_new_with_prompt_list_export(cli_run, tmp_path):
    dd = ["--datadir", tmp_path]
    created = json.loads(cli_run("keys", "new", "--light-kdf", *dd, "--json", input="s3cret\ns3cret\n").stdout)
    address = created["address"]
    assert stat.S_IMODE(os.stat(created["path"]).st_mode) == 0o600
    assert json.loads(cli_run("keys", "list", *dd, "--json").stdout) == [created]
    assert cli_run("keys", "list", *dd).stdout.strip() == address
    keyfile = json.loads(cli_run("keys", "export", address, *dd).stdout)
    assert Account.from_key(Account.decrypt(keyfile, "s3cret")).address == address


def test_new_refuses_mismatched_confirmation(cli_run, tmp_path):
    r = cli_run("keys", "new", "--light-kdf", "--datadir", tmp_path, input="one\ntwo\n", ok=False)
    assert "do not match" in r.output
    assert json.loads(cli_run("keys", "list", "--datadir", tmp_path, "--json").stdout) == []


def test_import_from_file_and_export_private_key(cli_run, tmp_path):
    (tmp_path / "key").write_text(KEY + "\n")
    (tmp_path / "pw").write_text("pw\n")
    dd = ["--datadir", tmp_path / "dd", "--password-file", tmp_path / "pw"]
    imported = json.loads(cli_run("keys", "import", "--light-kdf", "--private-key-file", tmp_path / "key", *dd, "--json").stdout)
    assert imported["address"] == Account.from_key(KEY).address
    out = json.loads(cli_run("keys", "export", imported["address"], "--private-key", *dd, "--json").stdout)
    assert out == {"address": imported["address"], "private_key": KEY}
    r = cli_run("keys", "import", "--light-kdf", "--private-key-file", tmp_path / "key", *dd, ok=False)
    assert "already exists" in r.output


def test_import_prompted_bad_key(cli_run, tmp_path):
    (tmp_path / "pw").write_text("pw\n")
    r = cli_run("keys", "import", "--datadir", tmp_path, "--password-file", tmp_path / "pw", "--json",
                input="0xdeadbeef\n", ok=False)
    assert json.loads(r.stdout)["error"].startswith("not a valid private key")
    assert "Traceback" not in r.output


def test_export_errors(cli_run, tmp_path):
    (tmp_path / "pw").write_text("wrong\n")
    (tmp_path / "key").write_text(KEY)
    cli_run("keys", "import", "--light-kdf", "--private-key-file", tmp_path / "key", "--datadir", tmp_path,
            input="right\nright\n")
    address = Account.from_key(KEY).address
    r = cli_run("keys", "export", address, "--private-key", "--datadir", tmp_path, "--password-file", tmp_path / "pw", ok=False)
    assert f"wrong password for {address}" in r.output
    r = cli_run("keys", "export", Account.create().address, "--datadir", tmp_path, ok=False)
    assert "no keystore for" in r.output and address in r.output
    r = cli_run("keys", "export", "not-an-address", "--datadir", tmp_path, ok=False)
    assert "is not an Ethereum address" in r.output
    r = cli_run("keys", "export", address, "--private-key", "--datadir", tmp_path, "--password-file", tmp_path / "nope", ok=False)
    assert "cannot read password file" in r.output
