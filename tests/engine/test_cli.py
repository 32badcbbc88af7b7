"""The engine's CLI commands that need no runtime pin, in-process (click's CliRunner)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from node.cli import cli
from node.engine.dataset import Dataset
from node.engine.spec import TaskSpec


def test_spec_init_show_and_dataset_build(tmp_path, datadir, store):
    runner = CliRunner()
    (tmp_path / "a.txt").write_text("some text " * 100)
    r = runner.invoke(cli, ["dataset", "build", str(tmp_path / "a.txt"), "--datadir", str(datadir), "--json"])
    assert r.exit_code == 0, r.output
    built = json.loads(r.output)
    assert built["total_bytes"] == 1000 and Dataset.load(built["manifest_cid"], store).manifest.total_bytes == 1000

    out = tmp_path / "spec.json"
    r = runner.invoke(cli, ["spec", "init", "--out", str(out), "--preset", "tiny", "--dataset",
                            built["manifest_cid"], "--json"])
    assert r.exit_code == 0, r.output
    spec = TaskSpec.from_file(out)
    assert spec.dataset.manifest_cid == built["manifest_cid"] and spec.name == "tiny"
    assert json.loads(r.output)["spec_hash"] == "0x" + spec.spec_hash().hex()

    r = runner.invoke(cli, ["spec", "init", "--out", str(out)])
    assert r.exit_code != 0 and "exists" in r.output  # never overwrites silently

    r = runner.invoke(cli, ["spec", "show", str(out), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["spec_hash"] == "0x" + spec.spec_hash().hex()


def test_spec_init_builds_the_demo_corpus_by_default(tmp_path, datadir, store):
    out = tmp_path / "spec.json"
    r = CliRunner().invoke(cli, ["spec", "init", "--out", str(out), "--datadir", str(datadir), "--json"])
    assert r.exit_code == 0, r.output
    spec = TaskSpec.from_file(out)
    assert spec == TaskSpec.preset("demo", spec.dataset.manifest_cid) and spec.steps_per_round == 2048
    assert Dataset.load(spec.dataset.manifest_cid, store).manifest.total_bytes > 1_000_000


def test_bad_input_gives_a_one_line_error(tmp_path, datadir):
    runner = CliRunner()
    bad = tmp_path / "bad.json"
    bad.write_text('{"batch_size": "8"}')
    r = runner.invoke(cli, ["spec", "show", str(bad)])
    assert r.exit_code != 0 and "spec: invalid task spec" in r.output
    r = runner.invoke(cli, ["dataset", "build", "--datadir", str(datadir)])
    assert r.exit_code != 0 and "PATH... or --demo" in r.output


def test_spec_init_epoch_task_takes_the_outer_optimizer_and_inner_moments(tmp_path, datadir, store):
    runner = CliRunner()
    (tmp_path / "a.txt").write_text("some text " * 100)
    cid = json.loads(runner.invoke(cli, ["dataset", "build", str(tmp_path / "a.txt"), "--datadir", str(datadir),
                                         "--json"]).output)["manifest_cid"]
    out = tmp_path / "epochs.json"
    r = runner.invoke(cli, ["spec", "init", "--out", str(out), "--preset", "tiny", "--dataset", cid, "--slots", "4",
                            "--outer-lr", "0.5", "--outer-momentum", "0.5"])
    assert r.exit_code == 0, r.output
    e = TaskSpec.from_file(out).epochs
    assert (e.slots, e.outer_lr, e.outer_momentum, e.inner_moments) == (4, 0.5, 0.5, "corrected")  # the default
    r = runner.invoke(cli, ["spec", "init", "--out", str(out), "--preset", "tiny", "--dataset", cid, "--slots", "4",
                            "--inner-moments", "average", "--force"])
    assert r.exit_code == 0, r.output
    assert TaskSpec.from_file(out).epochs.inner_moments == "average"
    r = runner.invoke(cli, ["spec", "init", "--out", str(tmp_path / "v1.json"), "--inner-moments", "reset"])
    assert r.exit_code != 0 and "need --slots" in r.output and not (tmp_path / "v1.json").exists()
    r = runner.invoke(cli, ["spec", "init", "--out", str(tmp_path / "x.json"), "--slots", "2", "--inner-moments", "mean"])
    assert r.exit_code != 0 and "mean" in r.output and not (tmp_path / "x.json").exists()
