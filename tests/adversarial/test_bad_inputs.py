"""Bad input: a clear error in words, no traceback, nothing of the user's lost.

Through the real code paths: TaskSpec parsing and `trainchain spec show`, the engine's
state loader and the verifier's checkpoint check, the content store and `trainchain store
get`, keystores and `trainchain keys`, and click's validation of every numeric flag.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import cli as trainchain

PASSWORD = "correct horse"


def cli(*args, env: dict | None = None):
    """Run `trainchain ARGS` in process (the real click command); returns click's Result."""
    return CliRunner().invoke(trainchain, [str(a) for a in args], env=env, catch_exceptions=True)


def first_line(result) -> str:
    """The line a user reads: click's 'Error: ...' line if there is one, else the last line."""
    text = (result.output or "").strip() or str(result.exception)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error")]
    return (errors or lines or [""])[0]


def assert_clean_failure(result) -> None:
    """A non-zero exit with a message, and no Python traceback shown to the user."""
    assert result.exit_code != 0, f"exit 0: {result.output}"
    assert "Traceback" not in (result.output or "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}")


# ---------------------------------------------------------------- specs
def spec_variants() -> dict[str, bytes]:
    from node.engine.spec import TaskSpec

    good = json.loads(TaskSpec.default().canonical_json())

    def mutate(**changes) -> bytes:
        data = json.loads(json.dumps(good))
        for path, value in changes.items():
            node = data
            keys = path.split("__")
            for k in keys[:-1]:
                node = node[k]
            node[keys[-1]] = value
        return json.dumps(data).encode()

    return {
        "not JSON": b'{"version": 1, "name": ',
        "unknown field": mutate(evil=1),
        "wrong type (steps_per_round as a string)": mutate(steps_per_round="64"),
        "steps_per_round not a multiple of segment_steps": mutate(steps_per_round=65),
        "quorum above committee size": mutate(protocol__quorum=9),
        "non-deterministic runtime": mutate(runtime__deterministic=False),
        "negative learning rate": mutate(lr__max_lr=-1.0),
        "vocab other than 256": mutate(model__vocab_size=50257),
    }


@pytest.mark.parametrize("variant", list(spec_variants()))
def test_malformed_spec(tmp_path, case, variant):
    c = case(f"malformed spec: {variant}", "SpecError 'spec: ...' naming the problem; CLI exits non-zero without a "
                                           "traceback; the file is untouched")
    from node.engine.errors import SpecError
    from node.engine.spec import TaskSpec

    raw = spec_variants()[variant]
    path = tmp_path / "spec.json"
    path.write_bytes(raw)
    with pytest.raises(SpecError) as e:
        TaskSpec.from_json(raw)
    result = cli("spec", "show", path)
    assert str(e.value).startswith("spec:")
    assert_clean_failure(result)
    assert path.read_bytes() == raw
    c.observe(f"SpecError: {str(e.value)[:160]}; CLI exit {result.exit_code}: {first_line(result)[:120]}")


# ---------------------------------------------------------------- safetensors
@pytest.fixture(scope="module")
def good_state(tmp_path_factory) -> tuple[Path, bytes]:
    from node.engine.genesis import make_genesis
    from node.engine.spec import TaskSpec

    path = tmp_path_factory.mktemp("state") / "genesis.safetensors"
    h = make_genesis(TaskSpec.preset("tiny"), path)
    return path, h


def _split(raw: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _join(header: dict, data: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def _first_tensor(header: dict) -> str:
    return sorted(k for k in header if k.startswith("model."))[0]


def hostile_states(raw: bytes) -> dict[str, bytes]:
    header, data = _split(raw)
    name = _first_tensor(header)

    def edit(**entry) -> bytes:
        h = json.loads(json.dumps(header))
        h[name].update(entry)
        return _join(h, data)

    start = header[name]["data_offsets"][0]
    nan_data = data[:start] + b"\xff" * 4 + data[start + 4:]
    dropped = {k: v for k, v in header.items() if not k.startswith("optim.")} | {"__metadata__": header.get("__metadata__", {})}
    return {
        "truncated to 4 bytes": raw[:4],
        "random bytes": os.urandom(4096),
        "header length past the end of the file": struct.pack("<Q", len(raw)) + raw[8:],
        "oversized header (declares 1 TiB)": struct.pack("<Q", 1 << 40) + raw[8:],
        "header is not JSON": struct.pack("<Q", 16) + b"{not json at all" + data,
        "tensor offsets past the data": edit(data_offsets=[0, len(data) + 4096]),
        "shape does not match its bytes (2^31 x 2^31)": edit(shape=[2**31, 2**31]),
        "dtype not allowed (F64)": edit(dtype="F64"),
        "NaN in a weight": _join(header, nan_data),
        "optimizer state missing": _join(dropped, data),
    }


HOSTILE = ["truncated to 4 bytes", "random bytes", "header length past the end of the file",
           "oversized header (declares 1 TiB)", "header is not JSON", "tensor offsets past the data",
           "shape does not match its bytes (2^31 x 2^31)", "dtype not allowed (F64)", "NaN in a weight",
           "optimizer state missing"]


@pytest.mark.parametrize("variant", HOSTILE)
def test_hostile_safetensors(good_state, tmp_path, store, case, variant):
    c = case(f"malformed/oversized safetensors: {variant}",
             "load_state raises StateError 'state: ...' (a hostile header before any tensor is read); a verifier "
             "given it as a checkpoint flags the check false (no crash); the file is untouched")
    from node.engine.errors import StateError
    from node.engine.state import load_state
    from verifier.replay import check_final

    good_path, good_hash = good_state
    raw = hostile_states(good_path.read_bytes())[variant]
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(raw)
    with pytest.raises(StateError) as e:
        load_state(path)
    cid = store.put_bytes(raw)
    flagged = check_final(store, cid, good_hash, tmp_path / "verifier")
    assert str(e.value).startswith("state:")
    assert flagged is False
    assert path.read_bytes() == raw
    c.observe(f"StateError: {str(e.value).replace(str(path), '<file>')[:150]}; verifier final_ok={flagged}")


def test_state_that_is_not_the_committed_one(good_state, tmp_path, case):
    c = case("valid safetensors whose state hash is not the expected one",
             "StateError 'hashes to 0x..., expected 0x...'")
    from node.engine.errors import StateError
    from node.engine.state import load_state

    path, h = good_state
    with pytest.raises(StateError) as e:
        load_state(path, expected_hash=hashlib.sha256(h).digest())
    ok = load_state(path, expected_hash=h)
    assert "expected 0x" in str(e.value) and ok is not None
    c.observe(f"StateError: {str(e.value).replace(str(path), '<file>')[:120]}...; the right hash loads")


# ---------------------------------------------------------------- CIDs
CIDS = {
    "not a CID": "hello-world",
    "CIDv1 with a bad base32 character": "bafybei!!!invalid",
    "truncated CIDv1": "bafkreigh2akiscaildc",
    "well-formed CID of content nobody has": None,  # computed in the test
}


@pytest.mark.parametrize("variant", list(CIDS))
def test_wrong_cid(store, tmp_path, case, variant):
    c = case(f"wrong CID: {variant}", "CIDError / NotFound in words; `store get` exits non-zero and leaves an existing "
                                      "output file untouched")
    from node.store import CIDError, NotFound, compute_cid

    cid = CIDS[variant] or compute_cid(os.urandom(100))
    with pytest.raises((CIDError, NotFound)) as e:
        store.get_bytes(cid)
    out = tmp_path / "keep.bin"
    out.write_bytes(b"precious")
    result = cli("store", "get", cid, "-o", out, "--datadir", store_datadir(store))
    assert_clean_failure(result)
    assert out.read_bytes() == b"precious"
    c.observe(f"{type(e.value).__name__}: {str(e.value)[:100]}; CLI exit {result.exit_code}: {first_line(result)[:100]}; "
              f"output file kept")


def store_datadir(store) -> Path:
    return Path(store.root).parent if hasattr(store, "root") else Path(store.dir).parent


# ---------------------------------------------------------------- keystores
@pytest.fixture
def keyed(tmp_path):
    from node.keys import LIGHT_KDF, Keystore

    datadir = tmp_path / "datadir"
    ks = Keystore(datadir, scrypt_n=LIGHT_KDF)
    address = ks.new(PASSWORD)
    return datadir, ks, address


@pytest.mark.parametrize("variant", ["not JSON",
                                     "JSON but not a keystore",
                                     "keystore with a corrupted ciphertext"])
def test_garbage_keystore(keyed, case, variant):
    c = case(f"garbage keystore: {variant}", "KeystoreError in words on unlock; the other keys still list and unlock; "
                                             "no file is rewritten")
    from eth_account import Account

    from node.errors import KeystoreError
    from node.keys import LIGHT_KDF, Keystore

    datadir, ks, good = keyed
    victim = Account.create()
    path = ks.path(victim.address)
    if variant == "not JSON":
        raw = b"\x00garbage\xff" * 10
    elif variant == "JSON but not a keystore":
        raw = json.dumps({"address": victim.address[2:].lower(), "hello": "world"}).encode()
    else:
        keyfile = Account.encrypt(victim.key, PASSWORD, kdf="scrypt", iterations=LIGHT_KDF)
        keyfile["crypto"]["ciphertext"] = "00" * 32
        raw = json.dumps(keyfile).encode()
    path.write_bytes(raw)
    good_raw = ks.path(good).read_bytes()
    with pytest.raises(KeystoreError) as e:
        Keystore(datadir).unlock(victim.address, PASSWORD)
    listed = cli("keys", "list", "--json", "--datadir", datadir)
    unlocked = Keystore(datadir).unlock(good, PASSWORD).address
    assert listed.exit_code == 0 and good in listed.output
    assert unlocked == good
    assert path.read_bytes() == raw and ks.path(good).read_bytes() == good_raw
    c.observe(f"{type(e.value).__name__}: {str(e.value)[:120]}; `keys list` exit {listed.exit_code} still shows the good "
              f"key; good key unlocks; files unchanged")


def test_wrong_password(keyed, tmp_path, case):
    c = case("wrong password (password file)", "BadPassword 'wrong password for 0x...'; CLI exits non-zero, no "
                                               "traceback, no key printed; keystore unchanged")
    from node.errors import BadPassword

    datadir, ks, address = keyed
    raw = ks.path(address).read_bytes()
    with pytest.raises(BadPassword) as e:
        ks.unlock(address, PASSWORD + "x")
    pw = tmp_path / "pw.txt"
    pw.write_text("not the password\n")
    result = cli("keys", "export", address, "--private-key", "--password-file", pw, "--datadir", datadir)
    assert_clean_failure(result)
    assert "0x" + ks.unlock(address, PASSWORD).key.hex() not in result.output
    assert ks.path(address).read_bytes() == raw
    c.observe(f"BadPassword: {e.value}; CLI exit {result.exit_code}: {first_line(result)[:120]}")


def test_empty_and_missing_password_file(keyed, tmp_path, case):
    c = case("password file missing or empty", "KeystoreError / BadPassword in words; CLI exits non-zero")
    datadir, ks, address = keyed
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    outs = []
    for pw in (tmp_path / "nope.txt", empty):
        result = cli("keys", "export", address, "--private-key", "--password-file", pw, "--datadir", datadir)
        assert_clean_failure(result)
        outs.append(f"exit {result.exit_code}: {first_line(result)[:90]}")
    c.observe("; ".join(outs))


# ---------------------------------------------------------------- CLI values
OUT_OF_RANGE = {
    "stake a negative amount": ["stake", "trainer", "--", "-1"],
    "stake a malformed amount": ["stake", "verifier", "1.5 bananas"],
    "stake an unknown role": ["stake", "miner", "1"],
    "unstake zero": ["unstake", "0"],
    "trainer run --task 0": ["trainer", "run", "--task", "0"],
    "trainer run --rounds -3": ["trainer", "run", "--task", "1", "--rounds", "-3"],
    "verifier run --metrics-port 70000": ["verifier", "run", "--metrics-port", "70000"],
    "verifier run --task -1": ["verifier", "run", "--task", "-1"],
    "spec init --threads 0": ["spec", "init", "--threads", "0", "--out", "{tmp}/s.json"],
    "spec init --segment-steps 0": ["spec", "init", "--segment-steps", "0", "--out", "{tmp}/s.json"],
    "replay --steps -1": ["replay", "--spec", "{tmp}/s.json", "--checkpoint", "{tmp}/s.json", "--steps", "-1"],
    "dataset build --shard-bytes 0": ["dataset", "build", "--demo", "--shard-bytes", "0"],
}


@pytest.mark.parametrize("variant", list(OUT_OF_RANGE))
def test_out_of_range_cli_value(tmp_path, case, variant):
    c = case(f"out-of-range CLI value: {variant}", "exit non-zero before any work, the message names the bad value; "
                                                   "nothing written")
    (tmp_path / "s.json").write_text("{}")
    args = [a.replace("{tmp}", str(tmp_path)) for a in OUT_OF_RANGE[variant]]
    datadir = tmp_path / "datadir"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = cli(*args, env={"TRAINCHAIN_DATADIR": str(datadir)})
    assert_clean_failure(result)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not datadir.exists() or not any(datadir.rglob("*.json"))
    c.observe(f"exit {result.exit_code}: {first_line(result)[:140]}")
