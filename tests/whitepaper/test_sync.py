"""The whitepaper and the code cannot drift apart.

Every ```python reference block in whitepaper/*.md holds top-level definitions
copied from node/protocol.py; each must be character-for-character the source of
the same-named function (inspect.getsource) or constant. And the figures script
must run end to end on a tiny setting.
"""
from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from node import protocol

ROOT = Path(__file__).resolve().parents[2]
PAPER_DIR = ROOT / "whitepaper"
BLOCK = re.compile(r"^```python reference[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)

# The rules the paper must state normatively (DEVELOPERS.md: node/protocol.py).
REQUIRED_RULES = {
    "compute_leaf", "compute_parent", "compute_merkle_root", "is_valid_merkle_proof",
    "compute_seed", "compute_draw", "compute_samples", "compute_check_ends", "compute_committee_by_rejection", "compute_verdict_commitment",
    "is_contradicting", "compute_tally", "compute_slash", "compute_fraud_split", "compute_rewards",
    # disputes (§3.7, issue #15)
    "compute_dispute_outcome", "is_valid_span_hashes", "compute_jury_seed", "compute_jury_block", "is_jury_block_expired",
    "compute_jury", "compute_vote_commitment", "compute_vote_side", "compute_starts_answer",
    "is_trainer_winner", "compute_challenger_bond", "compute_dispute_payouts",
}


def reference_blocks() -> list[tuple[str, str]]:
    """(chapter file, block text) for every reference block of the paper."""
    blocks = []
    for md in sorted(PAPER_DIR.glob("*.md")):
        blocks += [(md.name, m.group(1)) for m in BLOCK.finditer(md.read_text())]
    return blocks


def split_definitions(block: str) -> dict[str, str]:
    """Top-level functions/classes/assignments of a block, by name -> exact source."""
    tree = ast.parse(block)
    lines = block.splitlines(keepends=True)
    out = {}
    for node in tree.body:
        start = (node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno) - 1
        text = "".join(lines[start:node.end_lineno])
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = text
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                assert isinstance(target, ast.Name), f"unsupported assignment in reference block: {text!r}"
                out[target.id] = text
        else:
            raise AssertionError(f"a reference block may hold only definitions, got: {text!r}")
    return out


def protocol_assignments() -> dict[str, str]:
    source = inspect.getsource(protocol)
    lines = source.splitlines(keepends=True)
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    out[target.id] = "".join(lines[node.lineno - 1:node.end_lineno])
    return out


def paper_definitions() -> dict[str, tuple[str, str]]:
    defs: dict[str, tuple[str, str]] = {}
    for chapter, block in reference_blocks():
        for name, text in split_definitions(block).items():
            assert name not in defs, f"{name} appears in two reference blocks ({defs[name][0]}, {chapter})"
            defs[name] = (chapter, text)
    return defs


def test_paper_has_reference_blocks():
    assert reference_blocks(), "no ```python reference blocks found in whitepaper/*.md"


def test_paper_states_required_rules():
    missing = REQUIRED_RULES - paper_definitions().keys()
    assert not missing, f"the whitepaper does not state these rules of node/protocol.py: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(paper_definitions()))
def test_reference_block_matches_code(name):
    chapter, text = paper_definitions()[name]
    if name in protocol_assignments():
        code = protocol_assignments()[name]
    else:
        obj = getattr(protocol, name, None)
        assert obj is not None, f"{chapter}: {name} is not defined in node/protocol.py"
        code = inspect.getsource(obj)
    assert textwrap.dedent(text).rstrip() == code.rstrip(), (
        f"{chapter}: the reference block for {name} differs from node/protocol.py; "
        "copy the current source into the paper (or change the code on purpose)"
    )


def test_split_definitions_catches_a_changed_body():
    """The comparison must be able to fail: one changed character is a difference."""
    real = inspect.getsource(protocol.compute_leaf)
    tampered = real.replace("keccak(", "keccak (", 1)
    assert split_definitions(tampered)["compute_leaf"].rstrip() != real.rstrip()
    assert split_definitions(real)["compute_leaf"].rstrip() == real.rstrip()


def test_figures_script_runs_on_a_tiny_setting(tmp_path):
    paper = tmp_path / "paper"
    paper.mkdir()
    for md in PAPER_DIR.glob("*.md"):
        (paper / md.name).write_text(md.read_text())
    out = subprocess.run(
        [sys.executable, str(PAPER_DIR / "make_figures.py"), "--tiny",
         "--figures", str(tmp_path / "figures"), "--paper-dir", str(paper)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    pngs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert len(pngs) >= 4, pngs
    for png in (tmp_path / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    # every fill marker got a value (or an explicit 'pending' naming its command)
    text = "".join(p.read_text() for p in paper.glob("*.md"))
    assert "<!-- fill:" in text
    assert not re.search(r"<!-- fill:[\w.-]+ -->\s*<!-- /fill -->", text), "an empty fill marker"
