"""Command-line interface: ``hrsnn train | runs | data | lyapunov | lnp | sweep | energy | nir | report | demo``.

Every sub-command's options are declared here; the handlers that need torch are imported only when their
sub-command runs, so ``hrsnn --help`` and ``hrsnn runs list`` start quickly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hrsnn import interchange, report
from hrsnn.config import deep_update, parse_overrides, read_config_file
from hrsnn.errors import ConfigError, DataNotFoundError, NonFiniteError, RunInterrupted, Terminated
from hrsnn.experiments.store import RunNotFoundError, RunStore, format_run, format_runs_table
from hrsnn.experiments.sweep import add_parser as _add_sweep_parser

if TYPE_CHECKING:
    from hrsnn.experiments.runner import ExperimentConfig, RunResult

LYAPUNOV_METHODS = ("exact", "rate", "surrogate")
"""Readings of the spike nonlinearity (the keys of :data:`hrsnn.dynamics.snn.METHODS`; a test keeps them equal)."""

LYAPUNOV_DRIVES = ("constant", "gaussian", "poisson", "zeros")
"""Input kinds (the keys of :data:`hrsnn.dynamics.snn.DRIVES`)."""

LNP_TASKS = ("digits", "ecg", "lorenz", "mackey_glass", "rossler", "santafe_laser", "sunspots")
"""Tasks of the LNP experiment (the keys of :data:`hrsnn.experiments.lnp.TASKS`)."""

DEFAULT_TAU_M = '{"dist": "gamma", "shape": 3.0, "scale": 6.0, "floor": 2.0}'
"""``hrsnn lyapunov``'s membrane τ: gamma-distributed with mean 20 (k = 3, LNP spec §1.3), floor 2."""


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A handler that imports ``module`` only when its sub-command runs."""

    def handler(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), name)(args))

    handler.__qualname__ = f"{module}.{name}"
    return handler


def _cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    over: dict[str, Any] = {}
    if args.task is not None:
        over["task"] = {"name": args.task}
    if args.name is not None:
        over["name"] = args.name
    if args.seed is not None:
        over["seed"] = args.seed
    if args.threads is not None:
        over["threads"] = args.threads
    if args.arch is not None:
        over["arch"] = args.arch
    train = {
        k: v
        for k, v in {
            "epochs": args.epochs,
            "lr": args.lr,
            "batch_size": args.batch_size,
            "device": args.device,
            "tbptt": args.tbptt,
            "patience": args.patience,
        }.items()
        if v is not None
    }
    if args.quiet or args.json:
        train["progress"] = False
    if train:
        over["train"] = train
    return over


def _store(args: argparse.Namespace) -> RunStore:
    return RunStore(args.store)


def _runs_dir(args: argparse.Namespace, store: RunStore) -> Path:
    return Path(args.runs_dir) if args.runs_dir else store.path.parent / "runs"


def _experiment_from_args(args: argparse.Namespace) -> ExperimentConfig:
    from hrsnn.experiments.runner import ExperimentConfig

    data: dict[str, Any] = read_config_file(args.config) if args.config else {}
    data = deep_update(data, _cli_overrides(args))
    data = deep_update(data, parse_overrides(args.set))
    return ExperimentConfig.from_dict(data)


def _log(args: argparse.Namespace) -> Callable[[str], None] | None:
    if args.json:
        return lambda line: print(line, file=sys.stderr)
    return None if args.quiet else print


_RESUME_KEEPS = ("epochs", "threads", "data_dir", "json", "quiet")
"""Options that may accompany ``--resume``: --epochs extends the run; the others do not change its results."""


def _resumed_config(args: argparse.Namespace, store: RunStore) -> ExperimentConfig:
    """The stored config of run ``args.resume``, extended to ``--epochs``; other changes are refused."""
    from hrsnn.experiments.runner import ExperimentConfig

    for option, value in vars(args).items():
        if option in (*_RESUME_KEEPS, "resume", "func", "command", "store", "runs_dir"):
            continue
        if value not in (None, [], False):
            flag = "--" + option.replace("_", "-")
            raise ConfigError(flag, value, f"cannot change when resuming run {args.resume}; start a new run instead")
    record = store.get_run(args.resume)
    data = dict(record.config)
    if args.epochs is not None:
        data = deep_update(data, {"train": {"epochs": args.epochs}})
    if args.threads is not None:
        data["threads"] = args.threads
    if args.quiet or args.json:
        data = deep_update(data, {"train": {"progress": False}})
    return ExperimentConfig.from_dict(data)


def cmd_train(args: argparse.Namespace) -> int:
    """Handler of ``hrsnn train``."""
    from hrsnn.experiments.runner import run_experiment

    store = _store(args)
    config = _resumed_config(args, store) if args.resume is not None else _experiment_from_args(args)
    result = run_experiment(
        config,
        store=store,
        runs_dir=_runs_dir(args, store),
        data_dir=args.data_dir,
        resume_run=args.resume,
        log=_log(args),
    )
    _print_result(result, as_json=args.json)
    return 0


def _print_result(result: RunResult, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"run_id": result.run_id, **result.metrics, "model_path": str(result.model_path)}))
        return
    print(f"\nrun {result.run_id} finished; model saved to {result.model_path}")
    for key, value in result.metrics.items():
        print(f"  {key:24s} {value:.4f}" if isinstance(value, float) else f"  {key:24s} {value}")


def cmd_runs_list(args: argparse.Namespace) -> int:
    runs = _store(args).list_runs(limit=args.limit, kind=args.kind, status=args.status)
    if args.json:
        print(json.dumps([r.__dict__ for r in runs], default=str))
    else:
        print(format_runs_table(runs) if runs else "no runs recorded")
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    record = _store(args).get_run(args.run_id)
    if args.json:
        print(json.dumps(record.__dict__, default=str))
    else:
        print(format_run(record))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Train a small heterogeneous ALIF RSNN on sequential digits and print a result table."""
    from hrsnn.experiments.runner import ExperimentConfig, run_experiment

    data: dict[str, Any] = {"task": {"name": "digits"}, "name": "demo-digits"}
    if args.seed is not None:
        data["seed"] = args.seed
    if args.epochs is not None:
        data["train"] = {"epochs": args.epochs}
    if args.quiet:
        data = deep_update(data, {"train": {"progress": False}})
    config = ExperimentConfig.from_dict(data)
    store = _store(args)
    print(_demo_summary(config) + "\n")
    result = run_experiment(config, store=store, runs_dir=_runs_dir(args, store), log=None if args.quiet else print)
    m = result.metrics
    rows = [
        ("test accuracy", f"{m['test_accuracy']:.4f}"),
        ("validation accuracy (selected epoch)", f"{m['val_accuracy']:.4f}"),
        ("selected epoch / epochs run", f"{m['best_epoch']} / {m['epochs_run']}"),
        ("firing rate (spikes/neuron/step)", f"{m['test_firing_rate']:.4f}"),
        ("neurons / synapses", f"{m['neurons']} / {m['synapses']}"),
        ("training time", f"{m['train_time_s']:.1f} s"),
        ("run id (hrsnn runs show ID)", str(result.run_id)),
        ("saved model", str(result.model_path)),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n" + "-" * (width + 30))
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("-" * (width + 30))
    return 0


def _demo_summary(config: ExperimentConfig) -> str:
    """One readable paragraph saying what the demo trains."""
    options = config.task.options
    mode = options.get("mode", "row")
    reading = {
        "window": f"a window of {options.get('window', 8)} pixels sliding over the 64 pixels, one step per pixel",
        "row": "one row of 8 pixels per step (8 steps)",
        "pixel": "one pixel per step (64 steps)",
    }.get(mode, f"mode {mode}")
    layer = config.model["layers"][0]
    neuron = layer.get("neuron", {})
    tau = neuron.get("tau_m", {})
    epochs = config.train.epochs
    spread = f", τ_m {tau['dist']} in [{tau['low']:g}, {tau['high']:g}] steps" if {"low", "high"} <= set(tau) else ""
    return (
        "hrsnn demo: sequential digits\n"
        f"  data     scikit-learn's 8×8 handwritten digits (1797 images), read as {reading}\n"
        f"  network  {layer['size']} recurrent {neuron.get('kind', 'alif').upper()} neurons{spread}, "
        f"leaky-integrator readout\n"
        f"  training {epochs} epoch{'s' if epochs != 1 else ''} of BPTT with surrogate gradients "
        f"(Adam, lr {config.train.lr:g}), "
        f"seed {config.seed}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hrsnn", description="Heterogeneous recurrent spiking neural networks.")
    parser.add_argument(
        "--store", default=None, help="run store (SQLite); default $HRSNN_HOME/runs.sqlite or ./.hrsnn/runs.sqlite"
    )
    parser.add_argument("--runs-dir", default=None, help="where run artifacts go (default: beside the store)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a network on a task")
    train.add_argument("--config", help="TOML/YAML/JSON experiment config")
    train.add_argument(
        "--task", help="task: ecg, digits, shd, ssc, smnist, psmnist, cifar10 (each with its preset); default digits"
    )
    train.add_argument(
        "--arch", help="network: srnn (default), or a classical baseline lstm, gru, rnn (Elman); picks the preset"
    )
    train.add_argument("--name")
    train.add_argument("--seed", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--tbptt", type=int, help="truncated-BPTT window (steps)")
    train.add_argument("--patience", type=int, help="early-stopping patience (epochs)")
    train.add_argument("--device", choices=["cpu", "cuda", "auto"])
    train.add_argument("--threads", type=int, help="torch intra-op threads (default: automatic)")
    train.add_argument("--data-dir", help="data root holding qtdb/, shd/, mnist/, ... (default: see hrsnn data list)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.lr=0.005")
    train.add_argument(
        "--resume",
        type=int,
        metavar="RUN_ID",
        help="continue an interrupted, failed or crashed run from its last checkpoint; with --epochs M, extend it "
        "to M epochs (other options cannot change on resume)",
    )
    train.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=cmd_train)

    runs = sub.add_parser("runs", help="inspect the run store")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    lst = runs_sub.add_parser("list", help="list runs")
    lst.add_argument("--limit", type=int)
    lst.add_argument("--kind")
    lst.add_argument("--status", help="running, completed, failed, interrupted, crashed or stale")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_runs_list)
    show = runs_sub.add_parser("show", help="show one run")
    show.add_argument("run_id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_runs_show)

    _add_data_parser(sub)
    _add_lyapunov_parser(sub)
    _add_lnp_parser(sub)
    _add_sweep_parser(sub)
    _add_energy_parser(sub)
    interchange.add_parser(sub)
    report.add_parser(sub)

    demo = sub.add_parser("demo", help="train a small heterogeneous ALIF RSNN on sequential digits")
    demo.add_argument("--epochs", type=int, help="training epochs (default: the digits preset's 60)")
    demo.add_argument("--seed", type=int, help="seed of the network, data split and training (default 0)")
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=cmd_demo)
    return parser


_TERMINATING_SIGNALS = ("SIGTERM", "SIGHUP")
"""Signals handled like Ctrl-C (job schedulers send SIGTERM; a closed terminal sends SIGHUP)."""


@contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """Inside the block, SIGTERM/SIGHUP raise :class:`Terminated` (a KeyboardInterrupt) in the main thread."""

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in _TERMINATING_SIGNALS:
        if hasattr(signal, name):
            number = getattr(signal, name)
            previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _exit_code(exc: KeyboardInterrupt) -> int:
    """128 + the signal number, as shells report it (Ctrl-C: 130, SIGTERM: 143)."""
    cause = exc.__cause__ if isinstance(exc, RunInterrupted) else exc
    name = cause.signal_name if isinstance(cause, Terminated) else "SIGINT"
    return 128 + int(signal.Signals[name])


def _one_line(exc: BaseException) -> str:
    return "; ".join([str(exc), *getattr(exc, "__notes__", ())])


def _add_data_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``hrsnn data list`` and ``hrsnn data fetch NAME``."""
    data = subparsers.add_parser("data", help="data sets: where they are looked for, and downloads")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    lst = data_sub.add_parser("list", help="every data set, where it is looked for, whether present, its size")
    lst.add_argument("--data-dir", help="data root (default: $HRSNN_DATA, ../shared/data, ~/.hrsnn/data)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_lazy("hrsnn.tasks.catalog", "cmd_data_list"))
    fetch = data_sub.add_parser("fetch", help="download, verify and unpack a data set (needs the internet)")
    fetch.add_argument("name", help="data set name (see hrsnn data list)")
    fetch.add_argument("--data-dir", help="where to put it (default: $HRSNN_DATA, else ~/.hrsnn/data)")
    fetch.add_argument("--quiet", action="store_true", help="no progress output")
    fetch.set_defaults(func=_lazy("hrsnn.tasks.catalog", "cmd_data_fetch"))


def _add_lyapunov_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrsnn lyapunov`` (handler :func:`hrsnn.dynamics.cli.cmd_lyapunov`)."""
    p = subparsers.add_parser(
        "lyapunov",
        help="Lyapunov spectrum of a saved or generated RSNN",
        description="Top Lyapunov exponents of an RSNN by the Benettin/QR method (see hrsnn.dynamics.snn for the "
        "meaning of each --method). Without --model a one-layer network is generated.",
    )
    p.add_argument("--model", help="saved model (.safetensors from hrsnn train); default: generate a network")
    gen = p.add_argument_group("generated network (without --model)")
    gen.add_argument("--size", type=int, default=200, help="neurons (default 200)")
    gen.add_argument("--sparsity", type=float, default=0.9, help="fraction of absent synapses (default 0.9)")
    gen.add_argument("--kind", choices=["alif", "lif", "lif_hard"], default="alif", help="neuron model")
    gen.add_argument("--tau-m", default=DEFAULT_TAU_M, help=f"membrane τ distribution, JSON (default {DEFAULT_TAU_M})")
    gen.add_argument("--tau-adp", default=None, help="adaptation τ distribution, JSON (default: the core's)")
    gen.add_argument("--gain", type=float, default=1.0, help="recurrent weight gain ≈ spectral radius (default 1)")
    gen.add_argument("--inputs", type=int, default=20, help="input lines (default 20)")
    run = p.add_argument_group("analysis")
    run.add_argument(
        "--method", choices=LYAPUNOV_METHODS, default="surrogate", help="spike reading (default surrogate)"
    )
    run.add_argument("--steps", type=int, default=1000, help="accumulated steps (default 1000)")
    run.add_argument("--transient", type=int, default=100, help="discarded state steps (default 100)")
    run.add_argument("--align", type=int, default=100, help="tangent alignment steps (default 100)")
    run.add_argument("--ons", type=int, default=5, help="steps between QR re-orthonormalisations (default 5)")
    run.add_argument("--top", type=int, default=10, help="number of exponents m (default 10)")
    run.add_argument("--full", action="store_true", help="full spectrum (overrides --top)")
    run.add_argument("--batch", type=int, default=1, help="initial conditions (default 1)")
    run.add_argument("--probe-steps", type=int, default=1000, help="steps to fit the rate model (--method rate)")
    run.add_argument("--seed", type=int, default=0, help="seed of network, initial states and basis (default 0)")
    run.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: 1 below 512 neurons per layer, else all cores)"
    )
    drv = p.add_argument_group("drive")
    drv.add_argument("--drive", choices=LYAPUNOV_DRIVES, default="poisson", help="input kind (default poisson)")
    drv.add_argument("--drive-rate", type=float, default=0.05, help="Poisson spike probability per step")
    drv.add_argument("--drive-mean", type=float, default=0.0, help="constant value / Gaussian mean")
    drv.add_argument("--drive-std", type=float, default=1.0, help="Gaussian standard deviation")
    drv.add_argument("--drive-seed", type=int, default=0, help="seed of the drive (default 0)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    out.add_argument("--plot", help="write a PNG of the spectrum and of λ_max over time to this path")
    p.set_defaults(func=_lazy("hrsnn.dynamics.cli", "cmd_lyapunov"))


def _add_lnp_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrsnn lnp`` (handler :func:`hrsnn.experiments.lnp.cmd_lnp`)."""
    p = subparsers.add_parser(
        "lnp",
        help="Lyapunov Noise Pruning experiment: prune a dense HRSNN once, compare with dense/AP/random on tasks",
        description="The LNP experiment: prune one dense heterogeneous RSNN once with Lyapunov Noise Pruning, then "
        "read it out on several tasks, against dense, activity-pruned, random-pruned and homogeneous-τ variants.",
    )
    p.add_argument("--config", help="TOML/YAML/JSON file with LNPExperimentConfig fields (see examples/lnp.toml)")
    p.add_argument("--neurons", type=int, help="dense network size (default 1000)")
    p.add_argument("--seeds", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--tasks", help=f"comma-separated tasks from {', '.join(LNP_TASKS)} (default lorenz,digits)")
    p.add_argument(
        "--quick", action="store_true", help="smoke-test settings (60 neurons, 2 iterations, 1 seed), over --config"
    )
    p.add_argument("--out", help="artifact folder (default: the runs folder beside the store)")
    p.add_argument(
        "--sweep",
        action="store_true",
        help="sparsity sweep: LNP against random, magnitude, AP and IMP pruning at equal counts, paired over seeds",
    )
    p.add_argument("--sparsities", help="with --sweep: comma-separated neuron sparsities (default 0.3,0.5,0.7,0.9)")
    p.add_argument("--baselines", help="with --sweep: comma-separated baselines (default: all)")
    p.add_argument(
        "--resume",
        type=int,
        metavar="RUN_ID",
        help="continue a killed, interrupted or failed LNP run or sweep from its checkpoints",
    )
    p.add_argument("--threads", type=int, help="torch intra-op threads (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. lnp.q_node=0.02")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_lazy("hrsnn.experiments.lnp", "cmd_lnp"))


def _add_energy_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrsnn energy`` (handler :func:`hrsnn.experiments.energy.cmd_energy`)."""
    p = subparsers.add_parser(
        "energy",
        help="operations and energy of trained runs (SRNN, LSTM, GRU), alone or side by side",
        description="Counts each run's saved model on its task's test split (an RSNN from the spikes it emits, a "
        "classical RNN from its sizes) and prices the operations; several runs give a comparison whose 'x first' "
        "columns are energy multiples of the first run.",
    )
    p.add_argument("run_ids", type=int, nargs="+", metavar="RUN_ID", help="training runs (see hrsnn runs list)")
    p.add_argument(
        "--constants",
        action="append",
        choices=("float32_45nm", "int32_45nm"),
        help="energy constant set (repeatable; default both 45 nm sets)",
    )
    p.add_argument("--e-ac", type=float, help="a user constant set: energy of one accumulate, pJ (with --e-mac)")
    p.add_argument("--e-mac", type=float, help="... and of one multiply-accumulate, pJ")
    p.add_argument("--data-dir", help="data folder holding qtdb/ (default: $HRSNN_DATA or ../shared/data)")
    p.add_argument("--json", action="store_true", help="print one JSON list, one object per run")
    p.set_defaults(func=_lazy("hrsnn.experiments.energy", "cmd_energy"))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hrsnn`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _signals_as_interrupts():
            return int(args.func(args))
    except (ConfigError, DataNotFoundError, RunNotFoundError) as exc:
        print(f"hrsnn: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteError as exc:
        print(f"hrsnn: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"hrsnn: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt as exc:
        print("hrsnn: interrupted", file=sys.stderr)
        return _exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
