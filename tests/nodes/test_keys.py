"""Keystores: encrypted, 0600, a clear error on a bad password; one process per key."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
from eth_account import Account

from node.errors import BadPassword, KeystoreError, NodeLocked, UnknownAccount
from node.keys import LIGHT_KDF, Keystore, NodeLock, read_password_file

KEY = "0x" + "4c" * 32


@pytest.fixture
def ks(tmp_path):
    return Keystore(tmp_path, scrypt_n=LIGHT_KDF)


def test_new_unlock_round_trip_and_file_mode(ks):
    address = ks.new("correct horse")
    path = ks.path(address)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ks.list() == [address]
    account = ks.unlock(address.lower(), "correct horse")  # any case of the address works
    assert account.address == address
    assert "correct horse" not in path.read_text() and account.key.hex() not in path.read_text()


def test_import_export_and_refuse_duplicate(ks):
    address = ks.import_key(KEY, "pw")
    assert address == Account.from_key(KEY).address
    exported = ks.export(address)
    assert Account.decrypt(exported, "pw") == bytes.fromhex(KEY[2:])
    with pytest.raises(KeystoreError, match="already exists"):
        ks.import_key(KEY, "other")
    assert Account.decrypt(ks.export(address), "pw") == bytes.fromhex(KEY[2:])  # untouched


def test_bad_password_is_a_clear_error(ks):
    address = ks.import_key(KEY, "pw")
    with pytest.raises(BadPassword, match=f"wrong password for {address}"):
        ks.unlock(address, "nope")


@pytest.mark.parametrize("bad", ["0x1234", "zz" * 32, ""])
def test_bad_private_key(ks, bad):
    with pytest.raises(KeystoreError, match="not a valid private key"):
        ks.import_key(bad, "pw")
    assert ks.list() == []


def test_unknown_account_lists_known_ones(ks):
    known = ks.import_key(KEY, "pw")
    other = Account.create().address
    with pytest.raises(UnknownAccount, match=known):
        ks.unlock(other, "pw")
    with pytest.raises(UnknownAccount, match="not an Ethereum address"):
        ks.unlock("0xnothex", "pw")


def test_password_file_first_line(tmp_path):
    (tmp_path / "pw").write_text("secret\n")
    assert read_password_file(tmp_path / "pw") == "secret"
    with pytest.raises(KeystoreError, match="cannot read password file"):
        read_password_file(tmp_path / "missing")


def test_node_lock_excludes_a_second_process(tmp_path):
    address = Account.from_key(KEY).address
    with NodeLock(tmp_path, address):
        code = textwrap.dedent(f"""
            from node.keys import NodeLock
            from node.errors import NodeLocked
            try:
                NodeLock({str(tmp_path)!r}, {address!r}).acquire()
            except NodeLocked as e:
                print("LOCKED", e)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert out.stdout.startswith("LOCKED") and str(os.getpid()) in out.stdout, out.stderr
        with pytest.raises(NodeLocked, match="already in use"):
            NodeLock(tmp_path, address).acquire()  # a second holder in the same process too
    with NodeLock(tmp_path, address):  # released: free again
        pass


def test_lock_released_when_holder_is_killed(tmp_path):
    address = Account.from_key(KEY).address
    code = f"from node.keys import NodeLock; import time; NodeLock({str(tmp_path)!r}, {address!r}).acquire(); print('held', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(NodeLocked, match=str(proc.pid)):
            NodeLock(tmp_path, address).acquire()
        proc.kill()
        proc.wait(10)
        with NodeLock(tmp_path, address):
            pass
    finally:
        proc.kill()
        proc.wait()


from hypothesis import given, settings
from hypothesis import strategies as st

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@settings(max_examples=15, deadline=None)
@given(key=st.integers(min_value=1, max_value=SECP256K1_N - 1), password=st.text(min_size=1, max_size=40))
def test_any_key_and_password_round_trip(tmp_path_factory, key, password):
    ks = Keystore(tmp_path_factory.mktemp("ks"), scrypt_n=LIGHT_KDF)
    address = ks.import_key(key.to_bytes(32, "big"), password)
    assert ks.unlock(address, password).key == key.to_bytes(32, "big")
    with pytest.raises(BadPassword):
        ks.unlock(address, password + "x")
