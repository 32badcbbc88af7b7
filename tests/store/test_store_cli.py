"""`trainchain store ...` through click's CliRunner, on a temp data dir."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from node.cli import cli
from node.store import compute_cid, compute_cid_v0
from store_helpers import vector_bytes


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINCHAIN_DATADIR", str(tmp_path / "dd"))
    monkeypatch.delenv("TRAINCHAIN_IPFS_API", raising=False)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["store", *map(str, args)], input=input, catch_exceptions=False)

    return invoke


def test_add_get_cid_roundtrip_json(run, tmp_path):
    data = vector_bytes("cli", 700_000)
    src = tmp_path / "w.bin"
    src.write_bytes(data)
    added = run("add", src, "--json")
    assert added.exit_code == 0, added.output
    info = json.loads(added.stdout)
    assert info["cid"] == compute_cid(data) and info["size"] == len(data) and info["pinned"]
    computed = json.loads(run("cid", src, "--v0", "--json").stdout)
    assert (computed["cid"], computed["cidv0"]) == (info["cid"], compute_cid_v0(data))
    out = tmp_path / "out" / "w.bin"
    got = run("get", info["cid"], "-o", out, "--json")
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["size"] == len(data) and out.read_bytes() == data
    assert run("has", info["cid"]).stdout.strip() == "yes"


def test_plain_output_and_stdin(run, tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello")
    assert run("add", src).stdout.strip() == compute_cid(b"hello")
    assert run("cid", "-", input=b"hello").stdout.strip() == compute_cid(b"hello")


def test_car_export_import(run, tmp_path):
    src = tmp_path / "m.bin"
    src.write_bytes(vector_bytes("car", 300_000))
    cid = run("add", src).stdout.strip()
    assert run("export", cid, "-o", tmp_path / "m.car").exit_code == 0
    result = run("import", tmp_path / "m.car", "--json", "--datadir", tmp_path / "other")
    assert json.loads(result.stdout)["roots"] == [cid]


@pytest.mark.parametrize("args, words", [
    (["get", "not-a-cid", "-o", "{tmp}/x"], "not a valid CID"),
    (["get", "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba", "-o", "{tmp}/x"], "not in the local store"),
    (["add", "{tmp}/missing.bin"], "not a readable file"),
    (["cid", "{tmp}/missing.bin"], "not a readable file"),
    (["import", "{tmp}/missing.car"], "not a readable file"),
    (["get", "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba", "-o", "{tmp}/x",
      "--ipfs-api", "/ip4/127.0.0.1/tcp/1/http"], "not reachable"),
])
def test_bad_input_is_one_clear_line_and_json_error(run, tmp_path, args, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run(*args, "--json")
    assert result.exit_code == 1
    assert words in json.loads(result.stdout.strip().splitlines()[-1])["error"]
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()
