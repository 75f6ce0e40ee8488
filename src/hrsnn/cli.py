"""Command-line interface: ``hrsnn train | runs list | runs show | lyapunov | lnp | demo``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hrsnn.config import deep_update, parse_overrides, read_config_file
from hrsnn.dynamics.cli import add_lyapunov_parser
from hrsnn.errors import ConfigError, DataNotFoundError, NonFiniteError, RunInterrupted, Terminated
from hrsnn.experiments.lnp import add_lnp_parser
from hrsnn.experiments.runner import ExperimentConfig, RunResult, run_experiment
from hrsnn.experiments.store import RunNotFoundError, RunStore, format_run, format_runs_table


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
    train.add_argument("--task", help="task name (ecg, digits); default digits")
    train.add_argument("--name")
    train.add_argument("--seed", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--tbptt", type=int, help="truncated-BPTT window (steps)")
    train.add_argument("--patience", type=int, help="early-stopping patience (epochs)")
    train.add_argument("--device", choices=["cpu", "cuda", "auto"])
    train.add_argument("--threads", type=int, help="torch intra-op threads (default: automatic)")
    train.add_argument("--data-dir", help="data folder holding qtdb/ (default: $HRSNN_DATA or ../shared/data)")
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

    add_lyapunov_parser(sub)
    add_lnp_parser(sub)

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
