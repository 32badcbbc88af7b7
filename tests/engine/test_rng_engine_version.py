"""The engine version in the runtime pin: a spec made for another engine is refused in words,
never replayed into silently different bits (issue #19 changed how dropout is drawn)."""
from __future__ import annotations

import json

import pytest

from node.engine.errors import SpecError
from node.engine.spec import ENGINE_VERSION, TaskSpec

from engine_helpers import write_spec


def old_spec_json(spec: TaskSpec) -> str:
    """The canonical JSON a spec had before runtime.engine existed (engine 1)."""
    data = json.loads(spec.canonical_json())
    del data["runtime"]["engine"]
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def test_the_current_spec_pins_this_engine_and_round_trips():
    spec = TaskSpec.default()
    assert spec.runtime.engine == ENGINE_VERSION == 2
    assert json.loads(spec.canonical_json())["runtime"]["engine"] == ENGINE_VERSION
    assert TaskSpec.from_json(spec.canonical_json()) == spec
    assert spec.with_(runtime={"threads": 2}).runtime.engine == ENGINE_VERSION


def test_a_spec_from_before_the_engine_version_is_refused_in_words(tiny_spec):
    with pytest.raises(SpecError, match=r"runtime.engine 1 \(dropout masks drew from torch's global RNG") as err:
        TaskSpec.from_json(old_spec_json(tiny_spec))
    assert "predates engine 2" in str(err.value) and "trainchain spec init" in str(err.value)


@pytest.mark.parametrize("engine, words", [(1, "global RNG"), (3, "unknown to this node"), (0, "unknown")])
def test_another_engine_version_is_refused(tiny_spec, engine, words):
    data = json.loads(tiny_spec.canonical_json())
    data["runtime"]["engine"] = engine
    with pytest.raises(SpecError, match=f"runtime.engine {engine} .*{words}.*runs engine {ENGINE_VERSION}"):
        TaskSpec.from_json(json.dumps(data))


def test_the_cli_refuses_an_old_spec_in_one_line(cli, tmp_path, tiny_spec):
    path = tmp_path / "old.json"
    path.write_text(old_spec_json(tiny_spec))
    proc = cli("spec", "show", path, check=False)
    assert proc.returncode != 0
    assert "runtime.engine 1" in proc.stderr and "Traceback" not in proc.stderr
    ok = cli("spec", "show", write_spec(tmp_path / "new.json", tiny_spec), "--json")
    assert json.loads(ok.stdout)["spec"]["runtime"]["engine"] == ENGINE_VERSION
