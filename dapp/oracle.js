// Chain reads for the dapp: everything from one RPC URL and the ModelOracle address.
// No DOM here. The other contracts are found from the oracle itself:
//   ModelOracle.authorized_callers(0) (its writer) -> TaskRegistry -> .stake_manager() -> StakeManager
// ABIs come from the compiled contracts (`trainchain dapp serve` serves /abi/<Name>.json).
import { createPublicClient, getAddress, http, isAddress } from 'viem';

export const TRAINER = 1n;
export const VERIFIER = 2n;
const ZERO = '0x0000000000000000000000000000000000000000';

// A failure the page explains in words; `kind` drives the error state the page shows.
export class DappError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const short = (e) => e?.shortMessage || e?.message || String(e);

export async function loadAbis(base = '/abi/') {
  const names = ['ModelOracle', 'TaskRegistry', 'StakeManager'];
  const abis = {};
  for (const name of names) {
    let res;
    try {
      res = await fetch(`${base}${name}.json`);
    } catch (e) {
      throw new DappError('no-abi', `Cannot load the ${name} ABI from ${base}: ${short(e)}`);
    }
    if (!res.ok) {
      throw new DappError('no-abi', `Cannot load the ${name} ABI (${res.status}): ${(await res.text()).trim()}`);
    }
    abis[name] = await res.json();
  }
  return abis;
}

function checkRpcUrl(rpc) {
  let url;
  try {
    url = new URL(rpc);
  } catch {
    throw new DappError('bad-rpc', `"${rpc}" is not a URL: enter an RPC URL such as http://127.0.0.1:8545.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DappError('bad-rpc', `The RPC URL must start with http:// or https:// (got ${url.protocol}).`);
  }
}

// Connect and find the three contracts. Throws DappError with kind:
//   bad-rpc, bad-address, dead-rpc, no-contract (chain without the contracts),
//   not-oracle (wrong address: a contract, but not a ModelOracle), no-abi.
export async function connect({ rpc, oracle, abis, pollingInterval = 1000 }) {
  checkRpcUrl(rpc);
  if (!isAddress(oracle ?? '', { strict: false })) {
    throw new DappError('bad-address', `"${oracle}" is not an address: a ModelOracle address is 0x followed by 40 hex digits.`);
  }
  const address = getAddress(oracle);
  const client = createPublicClient({
    transport: http(rpc, { batch: { batchSize: 256, wait: 0 }, retryCount: 0, timeout: 5000 }),
    pollingInterval,
  });
  let chainId;
  try {
    chainId = await client.getChainId();
  } catch (e) {
    throw new DappError('dead-rpc', `No answer from the RPC at ${rpc}: is the node running and the URL right? (${short(e)})`);
  }
  const code = await client.getCode({ address });
  if (!code || code === '0x') {
    throw new DappError('no-contract',
      `Chain ${chainId} has no contract at ${address}: a wrong address, or the trainchain contracts are not ` +
      'deployed on this chain (wrong chain, or a devnet that was restarted?).');
  }
  // blockNumber (a bigint, optional): the state as of that block, so what a page shows agrees with the block it names
  const read = (contract, abi, functionName, args = [], blockNumber = undefined) =>
    client.readContract({ address: contract, abi, functionName, args, blockNumber });
  let registry;
  try {
    // the oracle's first (and only) authorized writer is the task registry of its deployment
    registry = getAddress(await read(address, abis.ModelOracle, 'authorized_callers', [0n]));
    if (registry === ZERO) throw new Error('its writer is not set');
    const back = getAddress(await read(registry, abis.TaskRegistry, 'oracle'));
    if (back !== address) throw new Error(`its writer ${registry} reports the oracle ${back}`);
  } catch (e) {
    throw new DappError('not-oracle',
      `${address} on chain ${chainId} is a contract, but not a trainchain ModelOracle: wrong address? (${short(e)})`);
  }
  const stakeManager = getAddress(await read(registry, abis.TaskRegistry, 'stake_manager'));
  return { client, rpc, chainId, abis, read, oracle: address, registry, stakeManager };
}

function toModel([cid, stateHash, version, roundId, blockNumber, timestamp]) {
  return { cid, stateHash, version, roundId, blockNumber, timestamp };
}

// One task: latest(task) and the whole history at(task, 0..version).
export async function readTask(conn, taskId) {
  const { read, oracle, abis } = conn;
  const latest = toModel(await read(oracle, abis.ModelOracle, 'latest', [taskId]));
  const history = await Promise.all(
    Array.from({ length: Number(latest.version) + 1 }, (_, v) =>
      read(oracle, abis.ModelOracle, 'at', [taskId, BigInt(v)]).then(toModel)),
  );
  return { taskId, latest, history: history.reverse() };
}

export async function readTaskIds(conn) {
  const n = await conn.read(conn.registry, conn.abis.TaskRegistry, 'task_count');
  return Array.from({ length: Number(n) }, (_, i) => BigInt(i + 1));
}

// Stake by role as of `block` (the block the page shows; a later block may be mined while it reads): every
// address that staked by then (Staked events), read at that block.
export async function readStake(conn, block) {
  const { client, read, stakeManager, abis } = conn;
  const logs = await client.getContractEvents({
    address: stakeManager, abi: abis.StakeManager, eventName: 'Staked', fromBlock: 0n, toBlock: block,
  });
  const who = [...new Set(logs.map((l) => getAddress(l.args.who)))];
  const [stakers, active] = await Promise.all([
    Promise.all(who.map((a) => read(stakeManager, abis.StakeManager, 'stakers', [a], block))),
    read(stakeManager, abis.StakeManager, 'active_verifier_list', [], block),
  ]);
  const totals = new Map([[TRAINER, { stakers: 0, bonded: 0n, pending: 0n }], [VERIFIER, { stakers: 0, bonded: 0n, pending: 0n }]]);
  for (const s of stakers) {
    const [role, amount, pending] = Array.isArray(s) ? s : [s.role, s.amount, s.pending];
    const t = totals.get(role);
    if (!t) continue;
    if (amount > 0n) t.stakers += 1;
    t.bonded += amount;
    t.pending += pending;
  }
  return { trainer: totals.get(TRAINER), verifier: { ...totals.get(VERIFIER), active: active.length } };
}

// CanonicalModelUpdated logs in blocks from..to (inclusive), oldest first. The page asks
// for each new block range itself rather than through a node-side filter, so an update
// that lands while the page is still loading is never missed.
export function readModelUpdates(conn, fromBlock, toBlock) {
  return conn.client.getContractEvents({
    address: conn.oracle, abi: conn.abis.ModelOracle, eventName: 'CanonicalModelUpdated', fromBlock, toBlock,
  });
}

export function watchBlocks(conn, onBlock, onError) {
  return conn.client.watchBlockNumber({ onBlockNumber: onBlock, onError, emitOnBegin: true, poll: true });
}
