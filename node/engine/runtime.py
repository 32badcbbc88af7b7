"""The runtime pin: make this process the runtime a spec was trained in, or refuse.

Bit-exact replay holds only for the same torch build, thread count, CPU code path
(ATEN_CPU_CAPABILITY), MKL code path (MKL_CBWR) and, on GPUs, the same GPU model,
CUDA version and cuBLAS workspace config (../shared/notes/determinism.md).

ATen and MKL read their environment variables when torch loads, so the pin has to be
applied BEFORE `import torch`. The CLI entry points (node/cli/engine.py, the trainer
and verifier) call `apply_runtime_pin(spec)` first thing; if torch is already loaded
with other settings, `apply_runtime_pin` raises RuntimeMismatch (or, with
`reexec=True`, restarts the process with the right environment).

Exact mode (spec.runtime.mode == "exact", node/engine/exact/) computes every operator so
that its bits do not depend on any of those: its pin names only torch's major version and
the dtype, sets no environment, and the process picks its own device (TRAINCHAIN_DEVICE,
default cpu) and thread count.
"""
from __future__ import annotations

import functools
import os
import sys

from .errors import RuntimeMismatch
from .spec import RuntimePin, TaskSpec

REEXEC_GUARD = "TRAINCHAIN_RUNTIME_REEXEC"  # set in a re-exec'd process: never loop


DEVICE_ENV = "TRAINCHAIN_DEVICE"  # exact mode: where this process computes (cpu | cuda); not part of the spec


def compute_pin_env(pin: RuntimePin) -> dict[str, str]:
    """Environment variables torch must see when it loads (none in exact mode)."""
    if pin.mode == "exact":
        return {}
    env = {
        "OMP_NUM_THREADS": str(pin.threads),
        "MKL_NUM_THREADS": str(pin.threads),
        "ATEN_CPU_CAPABILITY": pin.cpu_capability.lower(),
        "MKL_CBWR": pin.mkl_cbwr,
    }
    if pin.device == "cuda":
        env["CUBLAS_WORKSPACE_CONFIG"] = pin.cublas_workspace_config or ""
    return env


def _env_mismatches(pin: RuntimePin) -> list[str]:
    return [
        f"{k}={os.environ.get(k)!r} but the spec needs {v!r}"
        for k, v in compute_pin_env(pin).items()
        if os.environ.get(k) != v
    ]


def is_torch_loaded() -> bool:
    return "torch" in sys.modules


def apply_runtime_pin(spec: TaskSpec | RuntimePin, reexec: bool = False) -> None:
    """Pin this process to the spec's runtime, then check it (raises RuntimeMismatch).

    Call before torch is imported. If torch is already loaded with another environment,
    either re-exec this same command line with the pinned environment (reexec=True; for
    CLI entry points) or refuse.
    """
    pin = spec.runtime if isinstance(spec, TaskSpec) else spec
    mismatches = _env_mismatches(pin)
    if mismatches:
        if is_torch_loaded():
            if reexec and not os.environ.get(REEXEC_GUARD):
                env = {**os.environ, **compute_pin_env(pin), REEXEC_GUARD: "1"}
                sys.stdout.flush()
                sys.stderr.flush()
                # orig_argv keeps `-c code` / `-m module`, which sys.argv loses
                os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
            raise RuntimeMismatch(
                "runtime: torch was loaded before the runtime pin was applied: "
                + "; ".join(mismatches)
                + " (start a fresh process, or call apply_runtime_pin before importing torch)"
            )
        os.environ.update(compute_pin_env(pin))
    import torch

    if pin.mode == "plain":
        torch.set_num_threads(pin.threads)
    set_deterministic_algorithms(pin.deterministic)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    check_runtime(pin)


def set_deterministic_algorithms(mode: bool) -> None:
    """torch.use_deterministic_algorithms(mode) without its import of torch._inductor.config (which pulls in
    torch._dynamo, sympy and torch.distributed: ~1.3 s of CPU in every node process at start-up). That function
    sets the same ATen flag and Inductor's `deterministic`, which only torch.compile reads: the engine never
    compiles, and if Inductor was loaded already its flag is set all the same."""
    import torch

    torch._C._set_deterministic_algorithms(mode, warn_only=False)
    inductor_config = sys.modules.get("torch._inductor.config")
    if inductor_config is not None:
        inductor_config.deterministic = mode


def describe_runtime(device: str = "cpu") -> dict:
    """What this process actually runs: the values a spec would pin (for `spec init`)."""
    import torch

    out = {
        "torch_version": torch.__version__,
        "device": device,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_cbwr": os.environ.get("MKL_CBWR", "AVX2"),
    }
    if device == "cuda":
        out["gpu_name"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
        out["cuda_version"] = torch.version.cuda
        out["cublas_workspace_config"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return out


# CPU flags each ATen code path needs (torch echoes ATEN_CPU_CAPABILITY even when the CPU lacks them)
CAPABILITY_FLAGS = {
    "default": set(),
    "avx2": {"avx2", "fma"},
    "avx512": {"avx512f", "avx512bw", "avx512vl", "avx512dq"},
    "avx512_vnni": {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"},
}


@functools.lru_cache(maxsize=4)
def compute_machine_capabilities(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The ATen code paths this CPU can run (lower case), or None where /proc/cpuinfo is absent."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None
    return frozenset(cap for cap, need in CAPABILITY_FLAGS.items() if need <= set(flags))


def compute_device(spec: TaskSpec | RuntimePin) -> str:
    """The device this process computes a spec on: the pinned one in plain mode; in exact mode
    this process's choice ($TRAINCHAIN_DEVICE, default cpu), which cannot change the bits."""
    pin = spec.runtime if isinstance(spec, TaskSpec) else spec
    if pin.mode == "plain":
        return pin.device
    device = os.environ.get(DEVICE_ENV, "cpu")
    if device not in ("cpu", "cuda"):
        raise RuntimeMismatch(f"runtime: {DEVICE_ENV}={device!r}: exact mode runs on cpu or cuda")
    return device


def describe_pin(spec: TaskSpec | RuntimePin) -> str:
    """What the spec's pin requires of a process, in words (printed by `trainchain spec check`)."""
    pin = spec.runtime if isinstance(spec, TaskSpec) else spec
    if pin.mode == "exact":
        return (f"exact mode: bits do not depend on thread count, CPU code path, BLAS/MKL path or device; "
                f"the pin requires only torch {pin.torch_version}.x and {pin.dtype}")
    where = pin.device if pin.device == "cpu" else f"{pin.device} {pin.gpu_name} CUDA {pin.cuda_version}"
    return (f"plain mode: bit-exact only in this runtime: torch {pin.torch_version} on {where}, {pin.threads} "
            f"thread(s), ATEN_CPU_CAPABILITY={pin.cpu_capability}, MKL_CBWR={pin.mkl_cbwr}")


def _exact_problems(pin: RuntimePin) -> list[str]:
    import torch

    problems = []
    major = torch.__version__.split(".")[0]
    if major != pin.torch_version:
        problems.append(f"torch {torch.__version__} but the spec pins torch {pin.torch_version}.x (exact mode)")
    try:
        if compute_device(pin) == "cuda" and not torch.cuda.is_available():
            problems.append(f"{DEVICE_ENV}=cuda but no CUDA GPU is available")
    except RuntimeMismatch as exc:
        problems.append(str(exc).removeprefix("runtime: "))
    if pin.deterministic and not torch.are_deterministic_algorithms_enabled():
        problems.append("deterministic algorithms are off")
    return problems


def check_runtime(spec: TaskSpec | RuntimePin) -> None:
    """Raise RuntimeMismatch, in words, if this process differs from the pinned runtime.

    Exact mode checks only what its bits depend on (torch's major version) and that the
    chosen device exists; thread count, CPU code path and MKL path are free.
    """
    pin = spec.runtime if isinstance(spec, TaskSpec) else spec
    if pin.mode == "exact":
        problems = _exact_problems(pin)
        if problems:
            raise RuntimeMismatch("runtime: this process cannot replay the spec: " + "; ".join(problems))
        return
    problems = list(_env_mismatches(pin))
    import torch

    if torch.__version__ != pin.torch_version:
        problems.append(f"torch {torch.__version__} but the spec pins {pin.torch_version}")
    if torch.get_num_threads() != pin.threads:
        problems.append(f"{torch.get_num_threads()} threads but the spec pins {pin.threads}")
    capability = torch.backends.cpu.get_cpu_capability()
    if capability.lower() != pin.cpu_capability.lower():
        problems.append(f"CPU capability {capability} but the spec pins {pin.cpu_capability}")
    supported = compute_machine_capabilities()
    known = pin.cpu_capability.lower() in CAPABILITY_FLAGS
    if supported is not None and known and pin.cpu_capability.lower() not in supported:
        problems.append(f"this CPU cannot run the {pin.cpu_capability} code path (it has {sorted(supported)})")
    if pin.deterministic and not torch.are_deterministic_algorithms_enabled():
        problems.append("deterministic algorithms are off")
    if pin.device == "cuda":
        if not torch.cuda.is_available():
            problems.append("the spec needs a CUDA GPU and none is available")
        else:
            if torch.cuda.get_device_name() != pin.gpu_name:
                problems.append(f"GPU {torch.cuda.get_device_name()!r} but the spec pins {pin.gpu_name!r}")
            if torch.version.cuda != pin.cuda_version:
                problems.append(f"CUDA {torch.version.cuda} but the spec pins {pin.cuda_version}")
            if torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32:
                problems.append("TF32 is on")
            if torch.backends.cudnn.benchmark or not torch.backends.cudnn.deterministic:
                problems.append("cudnn benchmark is on or cudnn is not deterministic")
    if problems:
        raise RuntimeMismatch("runtime: this process cannot replay the spec: " + "; ".join(problems))
