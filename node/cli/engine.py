"""Engine commands: task specs, datasets, local training and replay.

    trainchain spec init --out spec.json            # demo spec; demo corpus frozen into the store
    trainchain train-local --spec spec.json --steps 64 --out run/
    trainchain replay --spec spec.json --checkpoint run/state-00000008.safetensors --steps 8 --json

Commands that train or replay apply the spec's runtime pin before torch is imported
(ATEN_CPU_CAPABILITY, MKL_CBWR and thread counts are read when torch loads), so this
module imports torch only inside the commands, after `apply_runtime_pin`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from node.cli.options import DATADIR_OPTION, IPFS_API_OPTION, JSON_OPTION
from node.errors import TrainchainError


def _hx(b: bytes) -> str:
    return "0x" + b.hex()


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _open_store(datadir, ipfs_api):
    from node.store import open_store

    return open_store(datadir=datadir, api=ipfs_api)


def _load_spec(path: Path):
    from node.engine.spec import TaskSpec

    return TaskSpec.from_file(path)


def _pin(spec) -> None:
    """Apply the runtime pin before torch loads (re-exec if something loaded it already)."""
    from node.engine.runtime import apply_runtime_pin

    apply_runtime_pin(spec, reexec=True)


def _progress(total: int, enabled: bool):
    """A rich progress bar driven by the engine's progress(step, loss) callback."""
    if not enabled:
        return None, lambda step, loss: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(), transient=True)
    task = bar.add_task("training", total=total, loss=float("nan"))
    return bar, lambda step, loss: bar.update(task, advance=1, loss=loss)


# ------------------------------------------------------------------ spec
@click.group()
def spec() -> None:
    """Write and check task specs."""


@spec.command("init")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("spec.json"),
              show_default=True, help="Where to write the spec.")
@click.option("--preset", default="demo", show_default=True, help="demo | tiny | 875k | 10m | 100m")
@click.option("--dataset", "dataset_cid", default=None,
              help="Dataset manifest CID (default: build the demo corpus into the store).")
@click.option("--mode", type=click.Choice(["plain", "exact"]), default="plain", show_default=True,
              help="exact: operators whose bits do not depend on threads, CPU code path, BLAS or device "
                   "(any verifier hardware replays it; slower); plain: torch's kernels, pinned runtime.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="Pin this many threads.")
@click.option("--pin-local", is_flag=True,
              help="Pin this machine's runtime (torch version, CPU capability; GPU model and CUDA for cuda).")
@click.option("--steps-per-round", type=click.IntRange(1), default=None)
@click.option("--segment-steps", type=click.IntRange(1), default=None)
@click.option("--slots", type=click.IntRange(1, 16), default=None,
              help="An epoch task (verified DiLoCo, #14): N trainers' slots per epoch, each steps_per_round (H) steps.")
@click.option("--outer-lr", type=click.FloatRange(0, 2, min_open=True), default=None,
              help="With --slots: the outer step's learning rate (default DiLoCo's 0.7). Choose it with H: at the "
                   "demo scale 0.4 was best at H = 4 and too small at H = 16 and 64 (whitepaper §3.6).")
@click.option("--outer-momentum", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="With --slots: the outer step's Nesterov momentum (default DiLoCo's 0.9).")
@click.option("--inner-moments", type=click.Choice(["corrected", "average", "reset"]), default=None,
              help="With --slots: the inner AdamW moments after the outer step (default corrected: m averaged, v "
                   "the second moment data-parallel would have; bench/diloco-moments.md).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@DATADIR_OPTION
@IPFS_API_OPTION
@JSON_OPTION
def spec_init(out, preset, dataset_cid, mode, device, threads, pin_local, steps_per_round, segment_steps, slots,
              outer_lr, outer_momentum, inner_moments, force, datadir, ipfs_api, as_json):
    """Write a task spec (the demo preset by default)."""
    from node.engine.spec import TaskSpec

    if out.exists() and not force:
        raise click.ClickException(f"spec: {out} exists (use --force to overwrite)")
    if slots is None and (outer_lr is not None or outer_momentum is not None or inner_moments is not None):
        raise click.UsageError("--outer-lr / --outer-momentum / --inner-moments need --slots (an epoch task)")
    if mode == "exact" and (threads or pin_local or device != "cpu"):
        raise click.UsageError("--mode exact pins no device, threads or local runtime (any machine replays it)")
    try:
        if dataset_cid is None:
            from node.engine.dataset import build_dataset, demo_corpus_paths

            dataset_cid = build_dataset(demo_corpus_paths(), _open_store(datadir, ipfs_api))
        s = TaskSpec.preset(preset, dataset_cid)
        changes: dict = {}
        if steps_per_round:
            changes["steps_per_round"] = steps_per_round
        if segment_steps:
            changes["segment_steps"] = segment_steps
        if slots is not None:
            epochs = {"slots": slots}
            if outer_lr is not None:
                epochs["outer_lr"] = outer_lr
            if outer_momentum is not None:
                epochs["outer_momentum"] = outer_momentum
            if inner_moments is not None:
                epochs["inner_moments"] = inner_moments
            changes["epochs"] = epochs
        runtime = {"device": device}
        if mode == "exact":
            from node.engine.spec import RuntimePin

            runtime = RuntimePin.exact()
        elif threads:
            runtime["threads"] = threads
        if mode == "plain" and (pin_local or device == "cuda"):
            from node.engine.runtime import compute_pin_env, describe_runtime
            import os

            pin_env = compute_pin_env(s.runtime.model_copy(update={"threads": threads or s.runtime.threads}))
            pin_env.pop("ATEN_CPU_CAPABILITY")  # read the machine's own best path
            os.environ.update(pin_env)
            runtime = {**describe_runtime(device), **runtime}
        changes["runtime"] = runtime
        s = s.with_(**changes)
    except (TrainchainError, ValueError) as exc:
        raise _fail(exc) from None
    out.write_bytes(s.canonical_json() + b"\n")
    info = {"spec": str(out), "spec_hash": _hx(s.spec_hash()), "dataset": s.dataset.manifest_cid,
            "runtime": s.runtime.model_dump()}
    click.echo(json.dumps(info) if as_json else f"spec: wrote {out} (hash {info['spec_hash']}, dataset {dataset_cid})")


@spec.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@JSON_OPTION
def spec_show(path, as_json):
    """Validate a spec and print its hash."""
    try:
        s = _load_spec(path)
    except TrainchainError as exc:
        raise _fail(exc) from None
    from node.engine.model import count_parameters

    info = {"spec_hash": _hx(s.spec_hash()), "parameters": count_parameters(s.model),
            "segments_per_round": s.segments_per_round, "spec": json.loads(s.canonical_json())}
    if as_json:
        click.echo(json.dumps(info))
    else:
        click.echo(f"spec hash {info['spec_hash']}: {info['parameters']:,} parameters, "
                   f"{s.steps_per_round} steps/round in {s.segments_per_round} segments of {s.segment_steps}, "
                   + (f"runtime {s.runtime.device} {s.runtime.torch_version} {s.runtime.threads} thread(s)"
                      if s.runtime.mode == "plain" else f"exact mode (any hardware), torch {s.runtime.torch_version}.x"))


@spec.command("check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@JSON_OPTION
def spec_check(path, as_json):
    """Can this machine replay the spec bit-exactly? (exit 1 if not)"""
    from node.engine.runtime import RuntimeMismatch

    try:
        s = _load_spec(path)
        _pin(s)
        from node.engine.runtime import describe_pin

        ok, reason = True, describe_pin(s)
    except RuntimeMismatch as exc:
        ok, reason = False, str(exc)
    except TrainchainError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps({"ok": ok, "reason": reason}))
    else:
        click.echo(f"runtime: this machine matches the spec ({reason})" if ok else reason)
    if not ok:
        raise SystemExit(1)


# ------------------------------------------------------------------ dataset
@click.group()
def dataset() -> None:
    """Build a dataset into the content store."""


@dataset.command("build")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--demo", is_flag=True, help="The demo corpus: this Python's stdlib *.py files (~2 MB).")
@click.option("--pattern", default="*", show_default=True, help="File pattern inside directories, e.g. '*.py'.")
@click.option("--shard-bytes", type=click.IntRange(1), default=1 << 20, show_default=True)
@DATADIR_OPTION
@IPFS_API_OPTION
@JSON_OPTION
def dataset_build(paths, demo, pattern, shard_bytes, datadir, ipfs_api, as_json):
    """Turn text files into shards + a manifest in the store; print the manifest CID."""
    from node.engine.dataset import Dataset, build_dataset, demo_corpus_paths

    if bool(paths) == demo:
        raise click.UsageError("give PATH... or --demo (one of them)")
    try:
        store = _open_store(datadir, ipfs_api)
        cid = build_dataset(demo_corpus_paths() if demo else paths, store, shard_bytes=shard_bytes, pattern=pattern)
        manifest = Dataset.load(cid, store).manifest
    except (TrainchainError, OSError) as exc:
        raise _fail(exc) from None
    info = {"manifest_cid": cid, "total_bytes": manifest.total_bytes, "shards": len(manifest.shards),
            "files": len(manifest.sources)}
    click.echo(json.dumps(info) if as_json else
               f"dataset: {cid} ({info['total_bytes']:,} bytes, {info['files']} files, {info['shards']} shards)")


@dataset.command("show")
@click.argument("manifest_cid")
@DATADIR_OPTION
@IPFS_API_OPTION
@JSON_OPTION
def dataset_show(manifest_cid, datadir, ipfs_api, as_json):
    """Fetch and verify a dataset; print its manifest."""
    from node.engine.dataset import Dataset

    try:
        ds = Dataset.load(manifest_cid, _open_store(datadir, ipfs_api))
    except TrainchainError as exc:
        raise _fail(exc) from None
    m = ds.manifest
    if as_json:
        click.echo(json.dumps(m.model_dump(mode="json")))
    else:
        click.echo(f"dataset {manifest_cid}: {m.total_bytes:,} bytes in {len(m.shards)} shards, verified")


# ------------------------------------------------------------------ train / replay
@click.command("train-local")
@click.option("--spec", "spec_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--steps", type=click.IntRange(1), default=None, help="Steps (a multiple of segment_steps; default S).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--base", "base", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Base state (default: make the genesis state in OUT).")
@click.option("--trainers", type=click.IntRange(1, 16), default=None,
              help="Epochs mode: N slots per epoch (default: the spec's epochs.slots).")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="Epochs mode: train E epochs of N slots x steps_per_round steps, each closed by the outer step.")
@DATADIR_OPTION
@IPFS_API_OPTION
@JSON_OPTION
def train_local(spec_path, steps, out_dir, base, trainers, epochs, datadir, ipfs_api, as_json):
    """Train locally: boundary checkpoints + trace.json (boundary hashes, data root, trace root)."""
    try:
        s = _load_spec(spec_path)
        _pin(s)
        from node.engine.dataset import Dataset
        from node.engine.genesis import make_genesis
        from node.engine.trace import train_round

        ds = Dataset.for_spec(s, _open_store(datadir, ipfs_api))
        out_dir.mkdir(parents=True, exist_ok=True)
        if base is None:
            base = out_dir / "genesis.safetensors"
            make_genesis(s, base)
        if trainers is not None or epochs is not None:
            return _train_epochs(s, ds, base, out_dir, trainers, epochs or 1, steps, as_json)
        n = steps or s.steps_per_round
        bar, progress = _progress(n, not as_json)
        started = time.perf_counter()
        if bar:
            with bar:
                trace = train_round(s, ds, base, out_dir, progress=progress, steps=n)
        else:
            trace = train_round(s, ds, base, out_dir, steps=n)
        elapsed = time.perf_counter() - started
    except (TrainchainError, ValueError) as exc:
        raise _fail(exc) from None
    info = {"trace": str(out_dir / "trace.json"), "steps": n, "start_step": trace.start_step,
            "final_hash": _hx(trace.final_hash), "data_root": _hx(trace.data_root),
            "trace_root": _hx(trace.trace_root), "final_checkpoint": str(trace.final_checkpoint),
            "first_loss": trace.losses[0], "last_loss": trace.losses[-1], "seconds": round(elapsed, 3)}
    if as_json:
        click.echo(json.dumps(info))
    else:
        click.echo(f"trained {n} steps in {elapsed:.1f} s, loss {info['first_loss']:.3f} -> {info['last_loss']:.3f}")
        click.echo(f"trace root {info['trace_root']}\ndata root  {info['data_root']}\nfinal      {info['final_hash']}")


def _train_epochs(s, ds, base, out_dir, trainers, epochs, steps, as_json):
    """train-local --trainers N --epochs E: the local reference of a task's epochs (node/engine/outer.py)."""
    from node.engine.outer import train_epochs
    from node.engine.spec import EpochConfig

    if steps is not None:
        raise click.UsageError("--steps does not apply to epochs: a slot trains the spec's steps_per_round")
    config = s.epochs or EpochConfig.identity()
    if trainers is not None and s.epochs is not None and trainers != s.epochs.slots:
        raise click.UsageError(f"--trainers {trainers} contradicts the spec's epochs.slots {s.epochs.slots}")
    config = config.model_copy(update={"slots": trainers or config.slots})
    started = time.perf_counter()
    records = train_epochs(s, ds, base, out_dir, epochs, config)
    elapsed = time.perf_counter() - started
    info = {"epochs": epochs, "slots_per_epoch": config.slots, "steps_per_slot": s.steps_per_round,
            "outer": config.model_dump(mode="json"), "final_hash": _hx(records[-1].state_hash),
            "final_checkpoint": str(records[-1].checkpoint), "record": str(out_dir / "epochs.json"),
            "seconds": round(elapsed, 3)}
    if as_json:
        click.echo(json.dumps(info))
    else:
        click.echo(f"trained {epochs} epochs x {config.slots} slots x {s.steps_per_round} steps in {elapsed:.1f} s")
        click.echo(f"final {info['final_hash']}\nstate {info['final_checkpoint']}")


@click.command("replay")
@click.option("--spec", "spec_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--steps", type=click.IntRange(0), default=None, help="Steps to replay (default: segment_steps).")
@click.option("--expect", "expected", default=None, help="Refuse a checkpoint that does not hash to this (0x...).")
@DATADIR_OPTION
@IPFS_API_OPTION
@JSON_OPTION
def replay(spec_path, checkpoint, steps, expected, datadir, ipfs_api, as_json):
    """Replay K steps from a checkpoint; print the end state hash."""
    try:
        s = _load_spec(spec_path)
        expected_hash = bytes.fromhex(expected.removeprefix("0x")) if expected else None
        if expected_hash is not None and len(expected_hash) != 32:
            raise click.BadParameter("--expect must be 32 bytes of hex")
        _pin(s)
        from node.engine.dataset import Dataset
        from node.engine.replay import replay_segment

        ds = Dataset.for_spec(s, _open_store(datadir, ipfs_api))
        k = s.segment_steps if steps is None else steps
        started = time.perf_counter()
        end = replay_segment(s, ds, checkpoint, k, expected_hash=expected_hash)
        elapsed = time.perf_counter() - started
    except (TrainchainError, ValueError) as exc:
        if isinstance(exc, click.ClickException):
            raise
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps({"end_hash": _hx(end), "steps": k, "checkpoint": str(checkpoint),
                               "seconds": round(elapsed, 3)}))
    else:
        click.echo(_hx(end))
