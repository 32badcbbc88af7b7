// The page: a form (or ?rpc=…&oracle=…), the latest canonical model of every task with
// its history, the stake overview, and live updates on CanonicalModelUpdated.
import { formatEther } from 'viem';
import { DappError, connect, loadAbis, readModelUpdates, readStake, readTask, readTaskIds, watchBlocks } from './oracle.js';

const $ = (sel, root = document) => root.querySelector(sel);
const params = new URLSearchParams(location.search);
// Where CID links point: the local `dapp serve` store by default, any gateway by ?gateway=.
const gateway = params.get('gateway') || '/ipfs/';
let session = null; // { conn, stop() } of the current connection
let attempt = 0; // a newer Connect supersedes a connection still loading

// ---------------------------------------------------------------- status line
function setStatus(state, message, kind = '') {
  const el = $('#status');
  el.dataset.state = state;
  el.dataset.error = kind;
  el.textContent = message;
}

function showError(e) {
  const kind = e instanceof DappError ? e.kind : 'unexpected';
  setStatus('error', e.message || String(e), kind);
  if (kind === 'unexpected') console.error(e);
}

// ---------------------------------------------------------------- rendering
const fmtTime = (ts) => new Date(Number(ts) * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
const fmtRound = (id) => (id === 0n ? 'genesis' : `#${id}`);

function cidLink(cid) {
  const a = document.createElement('a');
  a.href = gateway + encodeURIComponent(cid);
  a.textContent = cid;
  a.className = 'cid';
  a.target = '_blank';
  a.rel = 'noopener';
  return a;
}

function renderTask(task) {
  const { taskId, latest, history } = task;
  let card = $(`article.task[data-task-id="${taskId}"]`);
  if (!card) {
    card = $('#task-template').content.firstElementChild.cloneNode(true);
    card.dataset.taskId = String(taskId);
    $('.task-id', card).textContent = String(taskId);
    const list = $('#task-list');
    const after = [...list.children].find((c) => BigInt(c.dataset.taskId) > taskId);
    list.insertBefore(card, after ?? null);
  }
  card.dataset.version = String(latest.version);
  $('dl.latest .cid-cell', card).replaceChildren(cidLink(latest.cid));
  $('.version-badge', card).textContent = `v${latest.version}`;
  $('.state-hash', card).textContent = latest.stateHash;
  $('.version', card).textContent = String(latest.version);
  $('.round', card).textContent = fmtRound(latest.roundId);
  $('.time', card).textContent = `${fmtTime(latest.timestamp)} (block ${latest.blockNumber})`;
  const rows = history.map((m) => {
    const tr = document.createElement('tr');
    tr.dataset.version = String(m.version);
    for (const text of [String(m.version), fmtRound(m.roundId), String(m.blockNumber), fmtTime(m.timestamp)]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement('td');
    td.append(cidLink(m.cid));
    tr.append(td);
    return tr;
  });
  $('.history tbody', card).replaceChildren(...rows);
  return card;
}

function renderStake(stake) {
  const row = (role, s, active) => {
    const tr = document.createElement('tr');
    tr.dataset.role = role;
    for (const text of [role, String(s.stakers), `${formatEther(s.bonded)} ETH`, `${formatEther(s.pending)} ETH`, active]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  };
  $('#stake-rows').replaceChildren(
    row('trainer', stake.trainer, '—'),
    row('verifier', stake.verifier, String(stake.verifier.active)),
  );
  $('#stake').hidden = false;
}

function renderChain(conn) {
  $('#chain-id').textContent = String(conn.chainId);
  $('#addr-oracle').textContent = conn.oracle;
  $('#addr-registry').textContent = conn.registry;
  $('#addr-stake').textContent = conn.stakeManager;
  $('#chain').hidden = false;
}

function clearPage() {
  for (const id of ['#chain', '#stake', '#tasks']) $(id).hidden = true;
  $('#task-list').replaceChildren();
}

// ---------------------------------------------------------------- live session
async function showUpdates(conn, logs) {
  if (logs.length === 0) return;
  for (const id of new Set(logs.map((l) => l.args.task_id))) {
    if (!$('#task-list article')) $('#task-list').replaceChildren(); // drop "No task…"
    const card = renderTask(await readTask(conn, id));
    card.classList.remove('updated');
    void card.offsetWidth; // restart the highlight animation
    card.classList.add('updated');
  }
  const { task_id: task, version, round_id: round } = logs[logs.length - 1].args;
  const source = round === 0n ? 'genesis' : `round ${round}`;
  setStatus('live', `Task ${task} is now at version ${version} (${source}, block ${logs[logs.length - 1].blockNumber}); ` +
    'watching for CanonicalModelUpdated.');
}

class Superseded extends Error {}

async function start(rpc, oracle) {
  const mine = ++attempt;
  const still = (value) => {
    if (mine !== attempt) throw new Superseded();
    return value;
  };
  session?.stop();
  session = null;
  clearPage();
  setStatus('loading', `Connecting to ${rpc}…`);
  const abis = still(await loadAbis());
  const conn = still(await connect({ rpc, oracle, abis }));
  renderChain(conn);
  // Everything after this block is replayed from the logs, so nothing is missed while loading.
  let seen = still(await conn.client.getBlockNumber());
  const tasks = still(await Promise.all((await readTaskIds(conn)).map((id) => readTask(conn, id))));
  tasks.forEach(renderTask);
  $('#tasks').hidden = false;
  if (tasks.length === 0) $('#task-list').textContent = 'No task has been created yet.';
  renderStake(still(await readStake(conn, seen)));
  const live = () => setStatus('live', `Connected to chain ${conn.chainId}; watching for CanonicalModelUpdated.`);
  live();

  let busy = false;
  let lost = false;
  const onError = (e) => {
    lost = true;
    setStatus('error', `Lost the RPC at ${rpc}; retrying… (${e?.shortMessage || e?.message || e})`, 'dead-rpc');
  };
  const onBlock = async (block) => {
    $('#chain-block').textContent = String(block);
    if (busy || block <= seen) return;
    busy = true;
    try {
      const logs = await readModelUpdates(conn, seen + 1n, block);
      await showUpdates(conn, logs);
      renderStake(await readStake(conn, block)); // as of the block #chain-block shows
      seen = block;
      if (lost) {
        lost = false;
        live();
      }
    } catch (e) {
      onError(e); // `seen` stays: the next block retries the same range
    } finally {
      busy = false;
    }
  };
  const unwatch = watchBlocks(conn, onBlock, onError);
  session = { conn, stop: unwatch };
  window.trainchainSession = session; // for debugging from the console
}

function connectFromForm(event) {
  event?.preventDefault();
  const rpc = $('#rpc').value.trim();
  const oracle = $('#oracle').value.trim();
  const url = new URL(location.href);
  url.searchParams.set('rpc', rpc);
  url.searchParams.set('oracle', oracle);
  history.replaceState(null, '', url);
  start(rpc, oracle).catch((e) => {
    if (e instanceof Superseded) return; // a newer Connect owns the page now
    session?.stop();
    session = null;
    clearPage();
    showError(e);
  });
}

async function main() {
  $('#connect').addEventListener('submit', connectFromForm);
  let defaults = {};
  try {
    defaults = await (await fetch('/config.json')).json();
  } catch {
    // served by a plain static server: no defaults
  }
  $('#rpc').value = params.get('rpc') ?? defaults.rpc ?? '';
  $('#oracle').value = params.get('oracle') ?? defaults.oracle ?? '';
  document.body.dataset.ready = 'true'; // form prefilled: tests and users may type now
  if (params.has('rpc') || params.has('oracle')) connectFromForm();
}

main();
