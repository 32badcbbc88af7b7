"""task create/list/show, model latest/pull, generate through CliRunner against anvil + the embedded store."""
from __future__ import annotations

import json

import pytest

from node.engine import TaskSpec

ETH = 10**18


def _j(result):
    return json.loads(result.stdout)


@pytest.fixture
def setup(keyed_datadir, tmp_path):
    devnet, addresses = keyed_datadir
    spec = TaskSpec.preset("tiny").with_(protocol={"samples": 1})  # M = 4 >= 2s+1
    (tmp_path / "spec.json").write_bytes(spec.canonical_json())
    (tmp_path / "corpus.txt").write_text("def add(a, b):\n    return a + b\n" * 200)
    opts = ["--datadir", devnet.datadir, "--password-file", devnet.datadir / "password.txt", "--account", addresses[0]]
    return devnet, opts, tmp_path


def test_create_list_show_latest_pull_generate(cli_run, setup):
    devnet, opts, tmp = setup
    created = _j(cli_run("task", "create", "--spec", tmp / "spec.json", "--fund", "2.5", "--data", tmp / "corpus.txt",
                         *opts, "--json"))
    assert created["task_id"] == 1 and created["pool"] == 5 * ETH // 2

    listed = _j(cli_run("task", "list", *opts, "--json"))
    assert [t["task_id"] for t in listed] == [1]
    assert listed[0]["canonical"] == {**listed[0]["canonical"], "cid": created["genesis_cid"],
                                      "state_hash": created["genesis_hash"], "version": 0}

    shown = _j(cli_run("task", "show", "1", *opts, "--json"))
    assert shown["spec"]["name"] == "tiny" and shown["spec"]["dataset"]["manifest_cid"] == created["dataset_cid"]
    assert shown["spec_hash"] == created["spec_hash"] and shown["params"]["samples"] == 1
    assert shown["params"]["steps_per_round"] == 16 and shown["rounds"] == []
    assert "task 1 by" in cli_run("task", "show", "1", *opts).stdout

    latest = _j(cli_run("model", "latest", "--task", "1", *opts, "--json"))
    assert (latest["cid"], latest["state_hash"], latest["version"]) == (created["genesis_cid"], created["genesis_hash"], 0)

    pulled = _j(cli_run("model", "pull", "--task", "1", "-o", tmp / "model", *opts, "--json"))
    assert pulled["verified"] and (tmp / "model" / "model.safetensors").exists()
    from node.engine import file_state_hash

    assert "0x" + file_state_hash(tmp / "model" / "model.safetensors").hex() == created["genesis_hash"]
    assert TaskSpec.from_json((tmp / "model" / "spec.json").read_bytes()).spec_hash().hex() == created["spec_hash"][2:]

    sample = _j(cli_run("generate", "--task", "1", "--prompt", "def ", "--max-tokens", "16", *opts, "--json"))
    assert sample["text"].startswith("def ") and len(sample["text"]) > len("def ")
    again = _j(cli_run("generate", "--task", "1", "--prompt", "def ", "--max-tokens", "16", *opts, "--json"))
    assert again["text"] == sample["text"]  # same seed, same weights: same text


def test_pull_refuses_a_state_that_does_not_match_the_oracle(cli_run, setup):
    """A task whose creator registered a genesis hash its file does not have: pull must refuse it."""
    devnet, opts, tmp = setup
    honest = _j(cli_run("task", "create", "--spec", tmp / "spec.json", "--fund", "1", "--data", tmp / "corpus.txt",
                        *opts, "--json"))
    from node.chain.records import TaskParams

    spec = TaskSpec.from_json(json.dumps(_j(cli_run("task", "show", "1", *opts, "--json"))["spec"]))
    chain = devnet.chain
    fn = chain.registry.functions.create_task(honest["spec_cid"], spec.spec_hash(), b"\x01" * 32, honest["genesis_cid"],
                                            TaskParams.from_spec(spec).as_tuple())
    chain.transact(fn, value=ETH)
    r = cli_run("model", "pull", "--task", "2", "-o", tmp / "bad", *opts, "--json", ok=False)
    assert "expected 0x" + "01" * 32 in _j(r)["error"]
    assert not (tmp / "bad" / "model.safetensors").exists() and not list((tmp / "bad").glob(".*partial"))


def test_task_and_model_errors(cli_run, setup):
    devnet, opts, tmp = setup
    r = cli_run("task", "create", "--spec", tmp / "spec.json", "--fund", "1", *opts, ok=False)
    assert "the spec has no dataset" in r.output
    (tmp / "broken.json").write_text('{"name": 3}')
    r = cli_run("task", "create", "--spec", tmp / "broken.json", "--fund", "1", *opts, ok=False)
    assert "invalid task spec" in r.output
    r = cli_run("task", "create", "--spec", tmp / "missing.json", "--fund", "1", *opts, ok=False)
    assert "cannot read" in r.output
    r = cli_run("task", "create", "--spec", tmp / "spec.json", "--fund", "lots", *opts, ok=False)
    assert "malformed amount 'lots'" in r.output
    few = TaskSpec.preset("tiny")  # 4 segments, 2 samples: the contract needs M >= 2s+1
    (tmp / "few.json").write_bytes(few.canonical_json())
    r = cli_run("task", "create", "--spec", tmp / "few.json", "--fund", "1", "--data", tmp / "corpus.txt", *opts, ok=False)
    assert "need at least 5" in r.output
    for args in (["model", "latest", "--task", "9"], ["task", "show", "9"], ["model", "pull", "--task", "9", "-o", tmp / "x"]):
        r = cli_run(*args, *opts, ok=False)
        assert "task 9 does not exist" in r.output and "Traceback" not in r.output
    assert _j(cli_run("task", "list", *opts, "--json")) == []
