"""The adversarial suite (make adversarial): cheaters lose stake, honest nodes never do.

    .venv/bin/python -m pytest -p no:pytest-brownie tests/adversarial     # what `make adversarial` runs

Every test declares its case with the `case` fixture and records what it measured:

    def test_x(case):
        c = case("trainer withholds start reveals", expected="trainer -10% stake; verifiers keep theirs")
        ...
        c.observe(f"trainer -{lost} wei ({bps} bps); verifiers unchanged")   # from chain reads
        assert ...

At the end of the session the records become bench/adversarial.md: one table row per case
(expected, observed, result). A test that fails shows its failure text as observed; a
skipped one shows "not run" and why. NOT_RUN lists cases the suite does not build, with the
reason: they appear in the table too, never with a made-up observation.

Fixtures here: `local` (node/localnet.py's LocalNet: anvil automining, the contracts deployed,
stopped at teardown), `dev` (anvil's funded dev accounts, as addresses: anvil keeps them
unlocked), `store`, `kit` (an AdversaryKit on `local`'s contracts with a real embedded content
store). Node-level cases start their own: nodekit.NodeNet.start(root) (a LocalNet too).
"""
from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from node.engine.runtime import apply_runtime_pin, compute_pin_env, is_torch_loaded
from node.engine.spec import TaskSpec

# The real engine runs in this process (node-level cases): pin it before anything imports torch.
if not is_torch_loaded():
    os.environ.update(compute_pin_env(TaskSpec.default().runtime))
apply_runtime_pin(TaskSpec.default())

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REPORT = REPO / "bench" / "adversarial.md"
sys.path.insert(0, str(HERE.parent))  # tests/: roundkit (shared round driver)

# Module -> group title, in report order.
GROUPS = {
    "test_trainers": "Trainers (contract level, toy replay)",
    "test_verifiers": "Verifiers (contract level, toy replay)",
    "test_node_adversaries": "Node adversaries (real TrainerNode / VerifierNode, real engine)",
    "test_faults": "Faults",
    "test_bad_inputs": "Bad inputs",
    "test_honest": "Honest rounds",
    "test_attacks": "Attacks of the outside review (issue #13)",
    "test_disputes": "Disputes (issue #15): contract level, the nodes' dispute duties, stand-in replays",
    "test_dispute_nodes": "Disputes (issue #15): real TrainerNode / VerifierNode, real engine",
    "test_appeal_nodes": "Appeals (issue #15): real node processes, real engine",
    "test_epoch_attacks": "Epochs (issue #14): real TrainerNode / VerifierNode, real engine",
    "test_epoch_contract_attacks": "Epochs (issue #14): contract level",
}

# Cases of issue #8 the suite does not run, with the reason (shown as "not run").
NOT_RUN: list[tuple[str, str, str, str]] = []  # (group, case, expected, reason)


# ---------------------------------------------------------------- case records
@dataclass
class CaseRecord:
    nodeid: str
    group: str
    case: str
    expected: str
    observed: list[str] = field(default_factory=list)
    result: str = "not run"
    seconds: float = 0.0

    def observe(self, text: str) -> None:
        """Append what the test measured (chain reads, caught error text). Keep it short."""
        self.observed.append(" ".join(str(text).split()))


_RECORDS: list[CaseRecord] = []


def _group_of(item) -> str:
    stem = Path(str(item.fspath)).stem
    return GROUPS.get(stem, stem)


@pytest.fixture
def case(request):
    """case(name, expected) -> CaseRecord; call .observe(text) with measured values."""

    def make(name: str, expected: str) -> CaseRecord:
        rec = CaseRecord(request.node.nodeid, _group_of(request.node), name, expected)
        _RECORDS.append(rec)
        request.node.stash.setdefault(_CASES_KEY, []).append(rec)
        return rec

    return make


_CASES_KEY = pytest.StashKey[list]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    recs = item.stash.get(_CASES_KEY, [])
    if report.when == "setup" and report.skipped and not recs:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        doc = (item.function.__doc__ or item.name).strip().splitlines()[0]
        rec = CaseRecord(item.nodeid, _group_of(item), doc, "-", [reason.removeprefix("Skipped: ")], "not run")
        _RECORDS.append(rec)
        return
    for rec in recs:
        if report.when == "call":
            rec.seconds = report.duration
            if report.passed:
                rec.result = "XPASS (hole closed?)" if hasattr(report, "wasxfail") else "pass"
            elif report.skipped and hasattr(report, "wasxfail"):
                rec.result = "KNOWN ISSUE (xfail)"
                if call.excinfo is not None and not rec.observed:
                    exc = call.excinfo.value
                    rec.observe(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
                rec.observe(f"[{report.wasxfail}]")
            elif report.skipped:
                rec.result = "not run"
                rec.observe(str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else "skipped")
            else:
                rec.result = "FAIL"
                msg = str(call.excinfo.value) if call.excinfo else "failed"
                rec.observe("failure: " + msg.splitlines()[0][:300] if msg else "failure")
        elif report.failed:  # setup / teardown error
            rec.result = "ERROR"
            rec.observe(f"{report.when} error: {str(call.excinfo.value).splitlines()[0][:300] if call.excinfo else ''}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(path: Path, records: list[CaseRecord], seconds: float) -> None:
    order = list(GROUPS.values())
    rows = sorted(records, key=lambda r: (order.index(r.group) if r.group in order else len(order), r.group))
    n_pass = sum(r.result == "pass" for r in rows)
    lines = [
        "# Adversarial suite report",
        "",
        "Generated by `make adversarial` (tests/adversarial/conftest.py) from what each test measured:",
        "balances and outcomes read from the chain, error text caught from the code under test.",
        "",
        f"- run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s, "
        f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- cases: {len(rows) + len(NOT_RUN)}; pass {n_pass}; "
        f"known issues {sum(r.result.startswith('KNOWN') for r in rows)}; "
        f"failed {sum(r.result in ('FAIL', 'ERROR') for r in rows)}; "
        f"not run {sum(r.result == 'not run' for r in rows) + len(NOT_RUN)}",
        "",
    ]
    findings = [r for r in rows if r.result != "pass"]
    if findings:
        lines += ["## Findings (every case whose result is not pass)", ""]
        lines += [f"- **{_cell(r.case)}** ({r.result}): {_cell('; '.join(r.observed) or '-')}" for r in findings]
        lines.append("")
    groups = list(dict.fromkeys([r.group for r in rows] + [g for g, *_ in NOT_RUN]))
    for group in groups:
        lines += [f"## {group}", "", "| case | expected | observed | result |", "|---|---|---|---|"]
        for r in rows:
            if r.group == group:
                lines.append(f"| {_cell(r.case)} | {_cell(r.expected)} | {_cell('; '.join(r.observed) or '-')} | {r.result} |")
        for g, name, expected, reason in NOT_RUN:
            if g == group:
                lines.append(f"| {_cell(name)} | {_cell(expected)} | - | not run: {_cell(reason)} |")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


_START = time.monotonic()


def _is_whole_suite(config) -> bool:
    """Only a run of the whole directory (no -k/-m, no single files) may replace bench/adversarial.md."""
    if config.option.keyword or config.option.markexpr:
        return False
    args = [Path(a.split("::")[0]).resolve() for a in config.args]
    return bool(args) and all(a in (HERE, HERE.parent, REPO) for a in args)


def pytest_sessionfinish(session, exitstatus):
    if not _RECORDS or os.environ.get("TRAINCHAIN_ADVERSARIAL_NO_REPORT"):
        return
    target = os.environ.get("TRAINCHAIN_ADVERSARIAL_REPORT")
    if target is None and not _is_whole_suite(session.config):
        target = str(REPORT.with_name("adversarial.partial.md"))  # a partial run never overwrites the table
    write_report(Path(target or REPORT), _RECORDS, time.monotonic() - _START)


# ---------------------------------------------------------------- environment
@pytest.fixture(autouse=True)
def _clean_trainchain_env(monkeypatch):
    """The developer's own TRAINCHAIN_* config never leaks into a test."""
    for key in list(os.environ):
        if key.startswith("TRAINCHAIN_") and not key.startswith("TRAINCHAIN_ADVERSARIAL"):
            monkeypatch.delenv(key)


# ---------------------------------------------------------------- chain fixtures
@pytest.fixture
def local(tmp_path):
    from node.localnet import LocalNet

    with LocalNet(tmp_path / "local", block_time=None) as net:
        yield net


@pytest.fixture(scope="session")
def dev() -> list[str]:
    """anvil's dev accounts as addresses (unlocked in anvil: fastest way to send)."""
    from node.chain.devnet import dev_accounts

    return [a.address for a in dev_accounts(10)]


@pytest.fixture
def store(tmp_path):
    from node.store import open_store

    return open_store(datadir=tmp_path / "store")


@pytest.fixture
def kit_factory(local, dev, store):
    """kit_factory(n_verifiers=5): contracts deployed; dev[1] trainer, dev[2] second trainer,
    dev[3..3+n) verifiers; everyone staked 2 ETH."""
    from advkit import AdversaryKit

    def make(n_verifiers: int = 5):
        k = AdversaryKit.on(local, trainer=dev[1], verifiers=dev[3:3 + n_verifiers], store=store)
        k.trainers = [dev[1], dev[2]]
        k.stake_all()
        k.tx("StakeManager", "stake", 1, sender=dev[2], value=2 * 10**18)
        return k

    return make


@pytest.fixture
def kit(kit_factory):
    """Five verifiers: committees of 3 are drawn among them."""
    return kit_factory(5)
