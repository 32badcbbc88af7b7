"""The dapp page in headless Chromium against a devnet with a finalized round.

DAPP_SCREENSHOT=docs/dapp.png .venv/bin/pytest tests/dapp   # also refreshes the README's screenshot
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from node import protocol
from node.chain.records import format_ether
from node.chain.devnet import Anvil
from node.tools import free_port
from roundkit import SMALL_TASK  # tests/ is on sys.path (conftest)

REPO = Path(__file__).resolve().parents[2]
TRAINCHAIN = str(Path(sys.executable).with_name("trainchain"))
TASK = 'article.task[data-task-id="{}"]'
LIVE = '#status[data-state="live"]'
ERROR = '#status[data-state="error"]'


def model_latest(devnet, task_id: int) -> dict:
    """What `trainchain model latest --task ID --json` says (the node's own reading of ModelOracle)."""
    out = subprocess.run([TRAINCHAIN, "model", "latest", "--task", str(task_id), "--json", "--datadir", str(devnet.datadir)],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["task_id"] == task_id
    return info


def open_page(page, dapp, **params) -> None:
    page.goto(dapp["url"] + ("?" + urlencode(params) if params else ""))


def page_errors(page) -> list[str]:
    return [line for line in page.log() if line.startswith(("pageerror", "error"))]


def test_page_shows_the_latest_canonical_model(devnet, dapp, page):
    open_page(page, dapp, rpc=devnet.anvil.url, oracle=devnet.kit.addresses["ModelOracle"])
    page.wait_text(LIVE)
    card = TASK.format(devnet.task_id)
    want = model_latest(devnet, devnet.task_id)

    assert want["cid"] == devnet.first_round.final_cid
    assert page.text(f"{card} dl.latest a.cid") == want["cid"]
    assert page.text(f"{card} .state-hash") == want["state_hash"]
    assert page.text(f"{card} .version") == str(want["version"]) == "1"
    assert page.text(f"{card} .round") == f"#{want['round']}"
    assert f"block {want['block']}" in page.text(f"{card} .time")
    # History: every version, newest first, down to the genesis.
    genesis_cid = devnet.oracle.functions.at(devnet.task_id, 0).call()[0]
    rows = page.eval(f"""[...document.querySelectorAll('{card} .history tbody tr')]
                         .map(tr => [tr.dataset.version, tr.querySelector('a.cid').textContent])""")
    assert rows == [["1", want["cid"]], ["0", genesis_cid]]
    # The CID link works on a local setup: its bytes hash to the state hash on chain.
    fetched = page.eval(f"""(async () => {{
        const res = await fetch(document.querySelector('{card} dl.latest a.cid').href);
        const digest = await crypto.subtle.digest('SHA-256', await res.arrayBuffer());
        return [res.status, '0x' + [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('')];
    }})()""")
    assert fetched == [200, want["state_hash"]]
    # Stake overview from StakeManager: 1 trainer and 3 verifiers of 2 ETH each.
    assert page.eval("""[...document.querySelectorAll('#stake-rows tr')]
                        .map(tr => [...tr.cells].map(td => td.textContent))""") == [
        ["trainer", "1", "2 ETH", "0 ETH", "—"],
        ["verifier", "3", "6 ETH", "0 ETH", "3"],
    ]
    assert page_errors(page) == []


def test_page_updates_live_when_a_round_finalizes(devnet, dapp, page, tmp_path):
    open_page(page, dapp, rpc=devnet.anvil.url, oracle=devnet.kit.addresses["ModelOracle"])
    page.wait_text(LIVE)
    card = TASK.format(devnet.task_id)
    before = int(page.text(f"{card} .version"))
    page.eval("window.__sameDocument = 'no reload happened'")

    second = devnet.kit.run_round(devnet.task_id)
    assert second.outcome == 1
    page.wait_text(f"{card} dl.latest a.cid", second.final_cid, timeout=20)

    assert page.eval("window.__sameDocument") == "no reload happened"
    want = model_latest(devnet, devnet.task_id)
    assert want["cid"] == second.final_cid and want["version"] == before + 1
    assert page.text(f"{card} .version") == str(before + 1)
    assert page.text(f"{card} .state-hash") == want["state_hash"]
    assert page.eval(f"document.querySelectorAll('{card} .history tbody tr').length") == before + 2

    # A task created while the page is open shows up too (its genesis is version 0).
    new_task = devnet.kit.create_task()
    page.wait_text(f"{TASK.format(new_task)} .version", "0", timeout=20)
    assert page.text(f"{TASK.format(new_task)} dl.latest a.cid") == model_latest(devnet, new_task)["cid"]
    assert page_errors(page) == []

    page.screenshot(tmp_path / "dapp.png")
    assert (tmp_path / "dapp.png").stat().st_size > 10_000
    if os.environ.get("DAPP_SCREENSHOT"):
        page.screenshot(os.environ["DAPP_SCREENSHOT"])


@pytest.fixture(scope="module")
def empty_chain():
    """A chain without the contracts."""
    with Anvil(block_time=None) as anvil:
        yield anvil


@pytest.mark.parametrize("case", ["bad-address", "dead-rpc", "no-contract", "not-oracle"])
def test_error_states_render(devnet, dapp, page, empty_chain, case):
    oracle = devnet.kit.addresses["ModelOracle"]
    params, words = {
        "bad-address": ({"rpc": devnet.anvil.url, "oracle": "0x1234"}, "is not an address"),
        "dead-rpc": ({"rpc": f"http://127.0.0.1:{free_port()}", "oracle": oracle}, "No answer from the RPC"),
        "no-contract": ({"rpc": empty_chain.url, "oracle": oracle}, "has no contract at"),
        # A contract, but not a ModelOracle: the StakeManager's address.
        "not-oracle": ({"rpc": devnet.anvil.url, "oracle": devnet.kit.addresses["StakeManager"]}, "not a trainchain ModelOracle"),
    }[case]
    open_page(page, dapp, **params)
    message = page.wait_text(ERROR, timeout=20)
    assert words in message
    assert page.eval("document.querySelector('#status').dataset.error") == case
    assert page.eval("document.querySelector('#tasks').hidden") is True
    assert [line for line in page.log() if line.startswith("pageerror")] == []


def test_form_connects_and_reports_a_bad_address(devnet, dapp, page):
    open_page(page, dapp)  # no query: the form is prefilled from the node's deployment.json
    page.wait_text('body[data-ready="true"]')
    assert page.eval("document.querySelector('#oracle').value") == devnet.kit.addresses["ModelOracle"]
    page.fill("#oracle", "not-an-address")
    page.click("#connect button")
    assert "is not an address" in page.wait_text(ERROR)
    page.fill("#oracle", devnet.kit.addresses["ModelOracle"])
    page.click("#connect button")
    page.wait_text(LIVE)
    assert page.text(f"{TASK.format(devnet.task_id)} dl.latest a.cid") == model_latest(devnet, devnet.task_id)["cid"]
    assert "oracle=" + devnet.kit.addresses["ModelOracle"] in page.eval("location.search")


def test_readme_viem_snippet_reads_latest_and_watches(devnet):
    """The README's snippet, run as written by Node against the devnet."""
    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"## Read the canonical model from a dapp.*?```js\n(.*?)```", readme, re.S).group(1)
    snippet = snippet.replace("http://127.0.0.1:8545", devnet.anvil.url)
    snippet = re.sub(r"0x[0-9a-fA-F]{40}", devnet.kit.addresses["ModelOracle"], snippet, count=1)
    # The watcher polls every 4 s by default; a quicker poll keeps the test short.
    snippet = snippet.replace("createPublicClient({", "createPublicClient({ pollingInterval: 200,", 1)
    proc = subprocess.Popen(["node", "--input-type=module", "-e", snippet], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, proc.kill)  # a hung snippet fails the test, never hangs it
    watchdog.start()
    try:
        want = model_latest(devnet, 1)
        assert proc.stdout.readline().strip() == f"task 1 v{want['version']}: {want['cid']} {want['state_hash']}"
        time.sleep(1)  # let the watcher install its filter before the round
        result = devnet.kit.run_round(1)
        assert proc.stdout.readline().strip() == result.final_cid
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert "Error" not in stderr, stderr


def test_page_survives_an_rpc_outage(dapp, page, tmp_path):
    """The RPC goes away mid-session: the page says so, then recovers by itself."""
    from node.localnet import LocalNet
    from node.store import open_store

    from roundkit import RoundKit

    with LocalNet(tmp_path / "net", block_time=None) as net:
        anvil = net.anvil
        kit = RoundKit.on(net, net.dev[1], net.dev[2:5], open_store(tmp_path / "node"))
        first = kit.create_task()
        open_page(page, dapp, rpc=anvil.url, oracle=kit.addresses["ModelOracle"])
        page.wait_text(LIVE)
        assert page.text(f"{TASK.format(first)} .version") == "0"

        anvil.stop()  # SIGTERM: anvil dumps its state
        assert "Lost the RPC" in page.wait_text(ERROR, timeout=20)
        assert page.eval("document.querySelector('#status').dataset.error") == "dead-rpc"

        anvil.start()  # same port, same chain
        second = kit.create_task()
        page.wait_text(LIVE, timeout=20)
        page.wait_text(f"{TASK.format(second)} .version", "0", timeout=20)
        assert page.text(f"{TASK.format(first)} .version") == "0"  # what it showed before is still there


def test_a_fraudulent_round_changes_stake_not_the_model(devnet, dapp, page):
    """Every verifier contradicts: fraud. The canonical model stays; the trainer's stake drops, live."""
    open_page(page, dapp, rpc=devnet.anvil.url, oracle=devnet.kit.addresses["ModelOracle"])
    page.wait_text(LIVE)
    card = TASK.format(devnet.task_id)
    before = model_latest(devnet, devnet.task_id)
    trainer_bonded = '#stake-rows tr[data-role="trainer"] td:nth-child(3)'
    assert page.text(trainer_bonded) == "2 ETH"

    committee = devnet.kit.contract("StakeManager").functions.active_verifier_list().call()
    fraud = devnet.kit.run_round(devnet.task_id, verdicts={v: "contradict" for v in committee})
    assert fraud.outcome == 2  # Outcome.FRAUD
    # the fraud slash is a fraction of the round's reservation (#13): the task's minimum, at least the deployment's
    sm, params = devnet.kit.contract("StakeManager").functions, SMALL_TASK
    reservation = protocol.compute_trainer_reservation(params.min_trainer_stake_wei, sm.min_stake(protocol.TRAINER).call())
    left = format_ether(2 * 10**18 - protocol.compute_slash(reservation, params.trainer_slash_bps))
    page.wait_text(trainer_bonded, left, timeout=20)
    assert page.text(trainer_bonded) == left != "2 ETH"

    # The page has seen the finalize block, and the model did not move.
    assert int(page.text("#chain-block")) >= fraud.receipts["finalize"]["blockNumber"]
    assert model_latest(devnet, devnet.task_id) == before
    assert page.text(f"{card} dl.latest a.cid") == before["cid"] != fraud.final_cid
    assert page.text(f"{card} .version") == str(before["version"])
