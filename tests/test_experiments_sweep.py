"""hrsnn sweep: grids and searches over recorded runs, conditional parameters, objectives read from the run store,
the Pareto front, pruning, lost trials after kill -9 and resume, the Ray backend, config errors and `sweep show`."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from hrsnn.config import deep_update, read_config_file
from hrsnn.errors import ConfigError, MissingDependencyError, RunInterrupted, Terminated
from hrsnn.experiments.store import RunStore, format_run
from hrsnn.experiments.sweep import (
    SweepConfig,
    _create,
    _StudyAccess,
    _suggest,
    _TrialStore,
    add_parser,
    grid_points,
    load_sweep,
    run_sweep,
    sweep_report,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep.toml"
TINY = {
    "task": {"name": "digits", "options": {"mode": "row", "val_fraction": 0.15}},
    "model": {"layers": [{"size": 8, "neuron": {"b0": 0.01}}]},
    "train": {"batch_size": 64, "epochs": 1},
}
ACCURACY = {"metric": "val_accuracy", "direction": "maximize"}
CONDITIONAL = {
    "train.scheduler": {"type": "categorical", "choices": ["none", "step"]},
    "train.step_size": {"type": "categorical", "choices": [1, 2], "when": {"train.scheduler": "step"}},
}


def _config(**fields) -> SweepConfig:
    return SweepConfig.from_dict({"base": TINY, "objective": ACCURACY, **fields})


def _parser() -> argparse.ArgumentParser:
    """The top level of `hrsnn` as cli.build_parser makes it, with only the sweep sub-command."""
    parser = argparse.ArgumentParser(prog="hrsnn")
    parser.add_argument("--store")
    parser.add_argument("--runs-dir")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _cli(tmp_path: Path, *args: str) -> int:
    parsed = _parser().parse_args(["--store", str(tmp_path / "runs.sqlite"), *args])
    return parsed.func(parsed)


def _trials(store: RunStore, sweep_id: int) -> list[optuna.trial.FrozenTrial]:
    return load_sweep(store, sweep_id)[1].get_trials()


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """One grid sweep with a conditional parameter: 2 sizes × (no scheduler, step scheduler × 2 step sizes)."""
    folder = tmp_path_factory.mktemp("grid")
    store = RunStore(folder / "runs.sqlite")
    config = _config(name="grid", sampler="grid", grid={"model.layers.0.size": [8, 12]}, space=CONDITIONAL, seeds=[3])
    lines: list[str] = []
    sweep_id = run_sweep(config, store=store, runs_dir=folder / "runs", log=lines.append)
    return store, sweep_id, lines


def test_grid_runs_exactly_the_grid_with_conditional_parameters_only_where_they_hold(grid_sweep):
    store, sweep_id, lines = grid_sweep
    trials = _trials(store, sweep_id)
    expected = [
        {"model.layers.0.size": size, **rest}
        for size in (8, 12)
        for rest in (
            {"train.scheduler": "none"},
            {"train.scheduler": "step", "train.step_size": 1},
            {"train.scheduler": "step", "train.step_size": 2},
        )
    ]
    assert [t.params for t in trials] == expected  # every point once, in grid order, nothing else
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for trial in trials:
        [run_id] = trial.user_attrs["run_ids"]
        record = store.get_run(run_id)
        # each trial is a normal training run, linked to its sweep and trial, with the point's values in its config
        assert (record.kind, record.status, record.seed) == ("train", "completed", 3)
        assert record.config["sweep"] == {"id": sweep_id, "trial": trial.number}
        assert trial.user_attrs["run_id"] == run_id and record.name == f"grid.trial{trial.number}"
        assert record.config["model"]["layers"][0]["size"] == trial.params["model.layers.0.size"]
        assert record.config["train"]["scheduler"] == trial.params["train.scheduler"]
        # the conditional parameter exists only with the step scheduler; otherwise the preset's value stays
        assert record.config["train"]["step_size"] == trial.params.get("train.step_size", 100)
        # the objective is the recorded final metric of the run
        assert trial.values == [record.final_metrics["val_accuracy"]]
        assert trial.user_attrs["seed_values"] == {"3": {"val_accuracy": record.final_metrics["val_accuracy"]}}
    sweep = store.get_run(sweep_id)
    best = max(trials, key=lambda t: t.values[0])
    assert (sweep.kind, sweep.status) == ("sweep", "completed")
    assert sweep.final_metrics["complete"] == 6 and sweep.final_metrics["best_trial"] == best.number
    assert "6/6 done" in lines[-1] and f"(trial {best.number})" in lines[-1]


def test_a_trial_run_reads_back_as_its_experiment_for_energy_and_reports(grid_sweep):
    from hrsnn.experiments.energy import run_efficiency
    from hrsnn.experiments.runner import ExperimentConfig

    store, sweep_id, _ = grid_sweep
    record = store.get_run(_trials(store, sweep_id)[0].user_attrs["run_id"])
    experiment = {k: v for k, v in record.config.items() if k != "sweep"}
    assert ExperimentConfig.from_dict(record.config).to_dict() == experiment  # the sweep link is no experiment field
    recorded = json.loads(Path(next(a["path"] for a in record.artifacts if a["kind"] == "efficiency")).read_text())
    assert run_efficiency(store, record.id).counts.to_dict() == recorded  # `hrsnn energy` recounts the trial's model


def test_sweep_show_prints_the_best_trial_importances_and_every_trial(grid_sweep, tmp_path, capsys):
    store, sweep_id, _ = grid_sweep
    trials = _trials(store, sweep_id)
    recorded = {t.number: store.get_run(t.user_attrs["run_id"]).final_metrics["val_accuracy"] for t in trials}
    best = max(recorded, key=recorded.__getitem__)
    args = ["--store", str(store.path), "sweep", "show", str(sweep_id)]

    parsed = _parser().parse_args([*args, "--json"])
    assert parsed.func(parsed) == 0
    report = json.loads(capsys.readouterr().out)
    assert [b["number"] for b in report["best"]] == [best]
    assert {t["number"]: t["values"]["val_accuracy"] for t in report["trials"]} == recorded
    ranked = set(report["importances"]["val_accuracy"])
    assert {"model.layers.0.size", "train.scheduler"} <= ranked <= {*report["params"]}

    parsed = _parser().parse_args([*args, "--csv"])
    assert parsed.func(parsed) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [int(r["trial"]) for r in rows] == sorted(recorded)
    assert {int(r["trial"]): float(r["val_accuracy"]) for r in rows} == recorded
    assert [r["train.step_size"] for r in rows] == ["", "1", "2", "", "1", "2"]

    parsed = _parser().parse_args(args)
    assert parsed.func(parsed) == 0
    text = capsys.readouterr().out
    assert f"sweep {sweep_id}: grid (train, completed; study sweep-{sweep_id})" in text
    best_line = text.split("best trial:")[1].splitlines()[3]
    assert best_line.split()[0] == str(best) and f"{recorded[best]:.4g}" in best_line
    assert "parameter importances (val_accuracy):" in text and "trials:" in text
    assert len(text.split("trials:\n")[1].splitlines()) == 2 + 6  # header, rule, one line per trial

    with pytest.raises(ConfigError, match=r"SWEEP_ID=2: is a 'train' run, not a sweep"):
        _cli(store.path.parent, "sweep", "show", "2")
    with pytest.raises(ConfigError, match=r"--csv=True: give --json or --csv, not both"):
        _cli(store.path.parent, "sweep", "show", str(sweep_id), "--json", "--csv")


def test_conditional_parameters_of_a_search_and_of_a_grid():
    config = _config(
        sampler="random",
        budget={"n_trials": 5},
        grid={"model.layers.0.neuron.kind": ["alif", "lif"]},
        space={
            **CONDITIONAL,
            "model.layers.0.neuron.beta": {
                "type": "uniform",
                "low": 0.5,
                "high": 3.0,
                "when": {"model.layers.0.neuron.kind": "alif"},
            },
            "train.lr": {"type": "loguniform", "low": 1e-3, "high": 1e-1},
        },
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        params = _suggest(study.ask(), config.params)
        seen.add((params["model.layers.0.neuron.kind"], params["train.scheduler"]))
        assert ("model.layers.0.neuron.beta" in params) == (params["model.layers.0.neuron.kind"] == "alif")
        assert ("train.step_size" in params) == (params["train.scheduler"] == "step")
        assert 1e-3 <= params["train.lr"] <= 1e-1
    assert len(seen) == 4  # every combination of the two conditions was drawn
    # a condition on a later-declared parameter is drawn after it; a grid of conditionals repeats no point
    reordered = _config(sampler="grid", space=dict(reversed(list(CONDITIONAL.items()))))
    assert grid_points(reordered.params) == [
        {"train.scheduler": "none"},
        {"train.scheduler": "step", "train.step_size": 1},
        {"train.scheduler": "step", "train.step_size": 2},
    ]


def test_multi_objective_sweep_reports_the_pareto_front_of_the_recorded_values(tmp_path):
    config = _config(
        name="pareto",
        grid={"model.layers.0.size": [4, 8, 12]},
        objective=[ACCURACY, {"metric": "synapses", "direction": "minimize"}],
        seeds=[0, 1],
    )
    store = RunStore(tmp_path / "runs.sqlite")
    sweep_id = run_sweep(config, store=store, runs_dir=tmp_path / "runs")
    report = sweep_report(store, sweep_id)
    points = {}
    for trial in report["trials"]:
        runs = [store.get_run(r) for r in trial["run_ids"]]
        assert [r.seed for r in runs] == [0, 1]
        accuracy = (runs[0].final_metrics["val_accuracy"] + runs[1].final_metrics["val_accuracy"]) / 2
        synapses = runs[0].final_metrics["synapses"]
        assert trial["values"] == {"val_accuracy": pytest.approx(accuracy, abs=1e-15), "synapses": synapses}
        assert trial["seed_values"]["1"] == {
            "val_accuracy": runs[1].final_metrics["val_accuracy"],
            "synapses": runs[1].final_metrics["synapses"],
        }
        points[trial["number"]] = (accuracy, synapses)
    # by hand: a trial is on the front unless another is at least as accurate with at most as many synapses, and
    # strictly better in one of the two
    front = [
        n
        for n, (acc, syn) in points.items()
        if not any(a >= acc and s <= syn and (a > acc or s < syn) for m, (a, s) in points.items() if m != n)
    ]
    assert [b["number"] for b in report["best"]] == front
    assert 0 in front  # the smallest network has the fewest synapses
    assert store.get_run(sweep_id).final_metrics["pareto_trials"] == front


def test_an_lnp_sweep_runs_one_lnp_experiment_per_seed_with_the_point_set(tmp_path, monkeypatch):
    import hrsnn.experiments.lnp as lnp

    def fake(config, *, store, out_dir):  # a stand-in recording what it was given (a real LNP run takes ~15 s)
        run_id = store.create_run(name=config.name, kind="lnp", config=config.to_dict(), seed=config.seeds[0])
        score = 100 * config.lnp["q_node"] + config.seeds[0]
        store.finish_run(run_id, final_metrics={"lorenz.lnp.nrmse_mean": score})

    monkeypatch.setattr(lnp, "run_lnp_experiment", fake)
    config = _config(
        kind="lnp",
        base={"quick": True, "tasks": ["lorenz"]},
        grid={"lnp.q_node": [0.1, 0.2]},
        objective={"metric": "lorenz.lnp.nrmse_mean", "direction": "minimize"},
        seeds=[0, 1],
    )
    store = RunStore(tmp_path / "runs.sqlite")
    sweep_id = run_sweep(config, store=store, runs_dir=tmp_path / "runs")
    trials = _trials(store, sweep_id)
    assert [t.values for t in trials] == [[10.5], [20.5]]  # mean over seeds 0 and 1 of 100 q + seed
    for trial in trials:
        runs = [store.get_run(r) for r in trial.user_attrs["run_ids"]]
        assert [(r.kind, r.config["seeds"], r.config["sweep"]["trial"]) for r in runs] == [
            ("lnp", [0], trial.number),
            ("lnp", [1], trial.number),
        ]
        assert all(r.config["lnp"] == {**lnp.QUICK_PRESET["lnp"], "q_node": trial.params["lnp.q_node"]} for r in runs)
        assert lnp.LNPExperimentConfig.from_dict(runs[0].config).seeds == (0,)  # as `hrsnn lnp --resume` reads it
    assert store.get_run(sweep_id).final_metrics["best_trial"] == 0


def test_pruning_stops_a_bad_trial_and_records_its_run_as_pruned(tmp_path):
    config = _config(
        grid={"train.lr": [0.05, 1e-6]},
        base=deep_update(TINY, {"train": {"epochs": 2}}),
        pruner={"kind": "median", "options": {"n_startup_trials": 1, "n_warmup_steps": 0}},
    )
    store = RunStore(tmp_path / "runs.sqlite")
    sweep_id = run_sweep(config, store=store, runs_dir=tmp_path / "runs")
    good, bad = _trials(store, sweep_id)
    assert good.state == optuna.trial.TrialState.COMPLETE and len(store.epochs(good.user_attrs["run_id"])) == 2
    # lr 1e-6 is far below the first trial after epoch 1 (the median of one trial): pruned after that epoch
    assert bad.state == optuna.trial.TrialState.PRUNED and bad.intermediate_values.keys() == {1}
    record = store.get_run(bad.user_attrs["run_id"])
    assert record.status == "failed" and len(record.epochs) == 1
    reason = "pruned by the median pruner after epoch 1 of seed 0: val_accuracy"
    assert record.reason.startswith(f"TrialPruned: {reason}")
    assert bad.user_attrs["reason"].startswith(reason)
    row = sweep_report(store, sweep_id)["trials"][1]
    assert row["state"] == "PRUNED" and row["reason"].startswith(reason)


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_a_trial_whose_process_died_is_run_again_on_resume_and_finished_ones_are_kept(tmp_path):
    config = _config(name="lost", grid={"model.layers.0.size": [8, 12]})
    store = RunStore(tmp_path / "runs.sqlite")
    sweep_id = _create(config, store)
    access = _StudyAccess(store, sweep_id, print)
    trial, _ = access.claim(None)
    assert trial.user_attrs["owner"]["pid"] == os.getpid()
    dead = _dead_pid()
    trial.set_user_attr("owner", {"host": socket.gethostname(), "pid": dead, "pid_start": None})
    lines: list[str] = []
    assert run_sweep(None, store=store, runs_dir=tmp_path / "runs", resume=sweep_id, log=lines.append) == sweep_id
    lost, *rest = _trials(store, sweep_id)
    assert lost.state == optuna.trial.TrialState.FAIL and lost.params == {"model.layers.0.size": 8}
    assert lost.user_attrs["lost"] == f"its process (pid {dead} on {socket.gethostname()}) died"
    assert f"sweep {sweep_id}: trial 0 lost (its process (pid {dead}" in lines[1]
    again = [t for t in rest if t.user_attrs.get("requeued_from") == 0]
    assert len(again) == 1 and again[0].params == lost.params and again[0].user_attrs["attempt"] == 2
    assert sorted(t.params["model.layers.0.size"] for t in rest if t.state.name == "COMPLETE") == [8, 12]
    assert store.get_run(sweep_id).final_metrics | {"lost": 1, "complete": 2} == store.get_run(sweep_id).final_metrics
    assert sweep_report(store, sweep_id)["trials"][0]["state"] == "LOST"


def test_an_interrupted_sweep_says_how_to_resume_and_runs_the_interrupted_point_again(tmp_path, monkeypatch):
    config = _config(name="stop", grid={"model.layers.0.size": [8, 12]})
    store = RunStore(tmp_path / "runs.sqlite")
    log_epoch = _TrialStore.log_epoch

    def terminated(self, run_id, epoch, metrics):  # SIGTERM arrives after the first epoch
        log_epoch(self, run_id, epoch, metrics)
        raise Terminated("SIGTERM")

    monkeypatch.setattr(_TrialStore, "log_epoch", terminated)
    with pytest.raises(RunInterrupted, match=r"^run 1 terminated by SIGTERM; resume it with `hrsnn sweep --resume 1`$"):
        run_sweep(config, store=store, runs_dir=tmp_path / "runs")
    monkeypatch.undo()
    assert (store.get_run(1).status, store.get_run(2).status) == ("interrupted", "interrupted")
    stopped = _trials(store, 1)[0]
    assert stopped.user_attrs["lost"] == "terminated by SIGTERM"
    run_sweep(None, store=store, runs_dir=tmp_path / "runs", resume=1)
    trials = _trials(store, 1)
    [again] = [t for t in trials if t.user_attrs.get("requeued_from") == stopped.number]
    assert (again.state.name, again.params, again.user_attrs["attempt"]) == ("COMPLETE", stopped.params, 1)
    done = [t for t in trials if t.state.name == "COMPLETE"]  # an interruption is no failed attempt
    assert sorted(t.params["model.layers.0.size"] for t in done) == [8, 12]


def test_two_sweeps_do_not_mix_and_a_resume_refuses_another_config(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    a = _config(name="a", grid={"model.layers.0.size": [8]})
    b = _config(name="b", grid={"model.layers.0.size": [12]})
    first = run_sweep(a, store=store, runs_dir=tmp_path / "runs")
    second = run_sweep(b, store=store, runs_dir=tmp_path / "runs")
    for sweep_id, size in ((first, 8), (second, 12)):
        study = load_sweep(store, sweep_id)[1]
        assert study.study_name == f"sweep-{sweep_id}"
        [trial] = study.get_trials()
        record = store.get_run(trial.user_attrs["run_id"])
        assert record.config["sweep"]["id"] == sweep_id and record.config["model"]["layers"][0]["size"] == size
    with pytest.raises(ConfigError, match=r"--resume=1: was started with another config \(it differs at grid"):
        run_sweep(b, store=store, runs_dir=tmp_path / "runs", resume=first)
    with pytest.raises(ConfigError, match=r"--resume=1: is already completed"):
        run_sweep(SweepConfig.from_dict({**a.to_dict(), "workers": 3}), store=store, runs_dir=tmp_path, resume=first)
    with pytest.raises(ConfigError, match=r"--resume=2: is a 'train' run, not a sweep"):
        run_sweep(None, store=store, runs_dir=tmp_path / "runs", resume=2)


def test_the_time_budget_stops_claiming_trials(tmp_path):
    config = _config(
        sampler="random",
        space={"train.lr": {"type": "loguniform", "low": 1e-3, "high": 1e-1}},
        budget={"timeout_s": 1e-3},
    )
    store = RunStore(tmp_path / "runs.sqlite")
    sweep_id = run_sweep(config, store=store, runs_dir=tmp_path / "runs")
    assert _trials(store, sweep_id) == [] and store.list_runs(kind="train") == []
    assert store.get_run(sweep_id).status == "completed" and store.get_run(sweep_id).final_metrics["trials"] == 0


def test_an_objective_the_runs_do_not_record_stops_the_sweep_naming_it(tmp_path):
    config = _config(grid={"model.layers.0.size": [8, 12]}, objective={"metric": "val_acc", "direction": "maximize"})
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(ConfigError, match=r"objective.metric='val_acc': run 2 does not record it; recorded: \[.*"):
        run_sweep(config, store=store, runs_dir=tmp_path / "runs")
    sweep = store.get_run(1)
    assert sweep.status == "failed" and "objective.metric='val_acc'" in sweep.reason
    assert len(store.list_runs(kind="train")) == 1  # it stopped after the first run, not after every point
    with pytest.raises(ConfigError, match=r"objective=\['val_acc'\]: objective.metric='val_acc'"):
        run_sweep(None, store=store, runs_dir=tmp_path / "runs", resume=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grid": {"train.lrr": [0.1]}}, r"grid.\"train.lrr\"=0.1: does not fit the base experiment: base.train.lrr"),
        ({"grid": {"model.layers.3.size": [8]}}, r"model.layers is a list of 1; '3' is not an index in it"),
        ({"grid": {"model.layers": [[1]]}}, r"grid.\"model.layers\"=\[\[1\]\]: values must be numbers, strings"),
        ({"grid": {"train.lr": [0.1, 0.1]}}, r"grid.\"train.lr\"=\[0.1, 0.1\]: values must be distinct"),
        ({"grid": {"train.scheduler": ["step", "weekly"]}}, r"grid.\"train.scheduler\"='weekly': does not fit"),
        ({"space": {"train.lr": {"type": "logunif", "low": 1, "high": 2}}}, r"space.\"train.lr\".type='logunif'"),
        ({"space": {"train.lr": {"type": "loguniform", "low": 0, "high": 1}}}, r"space.\"train.lr\".low=0"),
        ({"space": {"train.lr": {"type": "uniform", "low": 1}}}, r"space.\"train.lr\".high=None: is required"),
        ({"space": {"train.epochs": {"type": "int", "low": 1, "high": 2.5}}}, r"space.\"train.epochs\".high=2.5"),
        ({"space": {"train.lr": {"type": "uniform", "low": 0.1, "high": 0.2, "lo": 3}}}, r"space.\"train.lr\".lo=3"),
        (
            {"space": {"train.step_size": {"type": "int", "low": 1, "high": 5, "when": {"train.sched": "step"}}}},
            r"space.\"train.step_size\".when='train.sched': must name another parameter",
        ),
        (
            {
                "sampler": "grid",
                "space": {
                    **CONDITIONAL,
                    "train.step_size": {**CONDITIONAL["train.step_size"], "when": {"train.scheduler": "cosine"}},
                },
            },
            r"space.\"train.step_size\".when.train.scheduler='cosine': is not one of \['none', 'step'\]",
        ),
        ({"objective": {"metric": "val_accuracy"}}, r"objective.direction=None: is required and missing"),
        ({"objective": {"metric": "val_accuracy", "direction": "up"}}, r"objective.direction='up': must be one of"),
        ({"objective": [ACCURACY, ACCURACY]}, r"objective=.*: names a metric twice"),
        ({"sampler": "cmaes"}, r"sweep.sampler='cmaes': must be one of"),
        ({"sampler": "tpe"}, r"budget=\{\}: the tpe sampler needs n_trials and/or timeout_s"),
        ({"sampler": "tpe", "budget": {"n_trials": 2}, "sampler_options": {"n_startup": 1}}, r"sampler_options="),
        ({"budget": {"n_trials": 5}}, r"budget.n_trials=5: is more than the grid's 2 points"),
        ({"budget": {"timeout_s": -1.0}}, r"budget.timeout_s=-1.0: must be a finite number of seconds > 0"),
        ({"pruner": "bogus"}, r"pruner='bogus': must be one of"),
        ({"pruner": {"kind": "median", "metric": "synapses"}}, r"pruner.metric='synapses': must be a per-epoch"),
        ({"pruner": {"kind": "median", "options": {"warmup": 1}}}, r"pruner.options=\{'warmup': 1\}: MedianPruner"),
        (
            {"pruner": "median", "objective": [ACCURACY, {"metric": "synapses", "direction": "minimize"}]},
            r"pruner='median': Optuna prunes single-objective sweeps only",
        ),
        ({"kind": "lnp", "base": {"quick": True}, "pruner": "median"}, r"pruner='median': prunes on per-epoch"),
        ({"base": {"train": {"lr": "fast"}}}, r"^base.train.lr=.fast.: must be a number"),
        ({"base": {**TINY, "seed": 4}}, r"base.seed=4: set the seeds with the sweep's `seeds`"),
        ({"grid": {"seed": [1, 2]}}, r"grid.\"seed\"='seed': cannot be varied"),
        ({"seeds": []}, r"seeds=\[\]: must be a non-empty list of distinct seeds"),
        ({"seeds": [-1]}, r"seeds\[0\]=-1: must be an integer seed"),
        ({"workers": 0}, r"workers=0: must be >= 1"),
        ({"gridd": {}}, r"sweep.gridd=\{\}: unknown field"),
        ({"grid": {}}, r"grid=\{\}: a sweep needs at least one parameter"),
    ],
)
def test_config_errors_name_the_field(change, message):
    data = {"base": TINY, "objective": ACCURACY, "grid": {"train.lr": [0.01, 0.02]}, **change}
    with pytest.raises(ConfigError, match=message):
        SweepConfig.from_dict(data)


def test_cli_errors_and_the_ray_extra(tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'objective = { metric = "val_accuracy", direction = "maximize" }\n[base]\ntask.name = "digits"\n'
        '[grid]\n"train.lr" = "fast"\n'
    )
    with pytest.raises(ConfigError, match=r"grid.\"train.lr\"='fast': must be a non-empty list"):
        _cli(tmp_path, "sweep", str(bad))
    with pytest.raises(ConfigError, match=r"CONFIG=None: give a sweep config"):
        _cli(tmp_path, "sweep")
    with pytest.raises(ConfigError, match=r"--address='x:1': needs --backend ray"):
        _cli(tmp_path, "sweep", str(EXAMPLE), "--address", "x:1")
    with pytest.raises(ConfigError, match=r"--workers=2: is not an option of sweep show"):
        _cli(tmp_path, "sweep", "show", "1", "--workers", "2")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails
    with pytest.raises(MissingDependencyError) as info:
        _cli(tmp_path, "sweep", str(EXAMPLE), "--backend", "ray")
    text = str(info.value)
    assert "\n" not in text and text.startswith("--backend='ray': needs the package 'ray'")
    assert "pip install 'hrsnn[ray]'" in text
    assert not (tmp_path / "runs.sqlite").exists() or RunStore(tmp_path / "runs.sqlite").list_runs() == []


def test_registering_the_command_imports_neither_torch_nor_optuna():
    code = (
        "import sys, argparse; from hrsnn.experiments.sweep import add_parser; "
        "add_parser(argparse.ArgumentParser().add_subparsers()); print('torch' in sys.modules, 'optuna' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_example_parses_and_runs_shrunk(tmp_path, capsys):
    data = read_config_file(EXAMPLE)
    config = SweepConfig.from_dict(data)
    assert (config.kind, config.sampler_kind, config.pruning.kind, config.budget.n_trials) == (
        "train",
        "tpe",
        "median",
        16,
    )
    small = deep_update(
        data,
        {"base": deep_update(TINY, {"model": {"layers": [{"size": 8}]}}), "budget": {"n_trials": 1}, "seeds": [0]},
    )
    small["base"]["task"] = TINY["task"]
    path = tmp_path / "small.json"
    path.write_text(json.dumps(small))
    assert _cli(tmp_path, "sweep", str(path), "--workers", "1", "--json") == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert [t["state"] for t in report["trials"]] == ["COMPLETE"]
    assert math.isfinite(report["trials"][0]["values"]["val_accuracy"])


# --------------------------------------------------------------------------------------- kill -9 and resume

_SCRIPT = (
    "import sys, argparse; from hrsnn.experiments.sweep import add_parser; p = argparse.ArgumentParser(); "
    "p.add_argument('--store'); p.add_argument('--runs-dir'); add_parser(p.add_subparsers()); "
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
)


def _wait(condition, proc: subprocess.Popen[str], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if condition():
            return
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"timed out waiting for {what}: {proc.communicate()}")


def _training(store: RunStore, exclude: set[int]) -> list:
    """Training runs (not in ``exclude``) that are running and have logged an epoch."""
    return [r for r in store.list_runs(kind="train", status="running") if r.n_epochs >= 1 and r.id not in exclude]


@pytest.mark.slow
def test_kill_9_of_a_worker_and_of_the_whole_sweep_then_resume_loses_no_finished_trial(tmp_path):
    sizes = [8, 9, 10, 11]
    config = {
        "name": "killed",
        "base": deep_update(TINY, {"train": {"epochs": 3}}),
        "grid": {"model.layers.0.size": sizes},
        "objective": ACCURACY,
    }
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(config))
    store_path = tmp_path / "runs.sqlite"
    cmd = [sys.executable, "-c", _SCRIPT, "--store", str(store_path), "sweep", str(path), "--workers", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    _wait(store_path.exists, proc, "the store")
    store = RunStore(store_path)
    _wait(lambda: _training(store, set()), proc, "a trial's first epoch")
    victim = _training(store, set())[0]
    assert victim.pid != proc.pid  # a worker process runs it
    os.kill(victim.pid, signal.SIGKILL)  # one worker dies; the other notices and queues its point again
    _wait(lambda: any("lost" in t.user_attrs for t in _trials(store, 1)), proc, "the lost trial to be noticed")
    _wait(lambda: _training(store, {victim.id}), proc, "a trial's first epoch after that")
    os.killpg(proc.pid, signal.SIGKILL)  # now the whole sweep: main process and workers
    proc.communicate()

    assert store.get_run(1).state == "crashed" and store.get_run(victim.id).state == "crashed"
    assert "hrsnn sweep --resume 1" in format_run(store.get_run(1))
    assert "hrsnn sweep --resume 1" in format_run(store.get_run(victim.id))
    before = {t.number: t for t in _trials(store, 1) if t.state.name == "COMPLETE"}

    assert _cli(tmp_path, "sweep", "--resume", "1", "--quiet") == 0
    trials = _trials(store, 1)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    # every point is done once; no finished trial was run again or changed
    assert sorted(t.params["model.layers.0.size"] for t in complete) == sizes
    for number, trial in before.items():
        assert trials[number].values == trial.values
        assert trials[number].user_attrs["run_ids"] == trial.user_attrs["run_ids"]
    lost = [t for t in trials if "lost" in t.user_attrs]
    assert len(lost) >= 2  # the worker's trial, and at least one trial running when everything was killed
    assert f"pid {victim.pid} " in next(t for t in lost if victim.id in t.user_attrs["run_ids"]).user_attrs["lost"]
    for trial in lost:
        again = [t for t in complete if t.params == trial.params]
        assert len(again) == 1 and again[0].number > trial.number
    assert store.get_run(1).status == "completed" and store.get_run(1).final_metrics["complete"] == len(sizes)


# ----------------------------------------------------------------------------------------------- Ray


@pytest.mark.slow
def test_ray_backend_runs_trials_as_tasks_and_brings_runs_and_artifacts_to_the_driver_store(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        config = _config(name="ray", grid={"model.layers.0.size": [8, 12]}, seeds=[0])
        store = RunStore(tmp_path / "runs.sqlite")
        runs_dir = tmp_path / "runs"
        sweep_id = run_sweep(config, store=store, runs_dir=runs_dir, backend="ray", workers=1)
    finally:
        ray.shutdown()
    trials = _trials(store, sweep_id)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        record = store.get_run(trial.user_attrs["run_id"])
        assert record.pid != os.getpid()  # it ran in a Ray worker process
        assert record.config["sweep"] == {"id": sweep_id, "trial": trial.number}
        assert record.status == "completed" and len(record.epochs) == 1
        assert trial.values == [record.final_metrics["val_accuracy"]]
        paths = {a["kind"]: Path(a["path"]) for a in record.artifacts}
        assert set(paths) == {"task", "model", "checkpoint", "efficiency"}
        for path in paths.values():  # copied into the driver's runs folder
            assert path.parent == runs_dir / f"run-{record.id:05d}" and path.stat().st_size > 0
        task = json.loads(paths["task"].read_text())
        assert task["task"] == "digits"


def test_importances_of_a_maximised_objective_equal_optunas_own_for_the_study_direction():
    """Optuna's default evaluator takes a given target as lower-is-better; a maximised objective must be flipped."""
    import random

    import optuna

    from hrsnn.experiments.sweep import _importances

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    rng = random.Random(0)
    for _ in range(60):
        a, b = rng.uniform(0.01, 1.0), rng.uniform(0.01, 1.0)
        trial = optuna.trial.create_trial(
            params={"train.lr": a, "train.gamma": b},
            distributions={
                "train.lr": optuna.distributions.FloatDistribution(0.01, 1),
                "train.gamma": optuna.distributions.FloatDistribution(0.01, 1),
            },
            value=(a if a > 0.8 else 0.0) + 0.3 * b,  # only high lr matters for the best trials
        )
        study.add_trial(trial)
    unit = {"type": "uniform", "low": 0.01, "high": 1.0}
    space = {"train.lr": unit, "train.gamma": unit}
    ranked, note = _importances(_config(space=space, sampler="random", budget={"n_trials": 60}), study)
    assert note is None
    want = optuna.importance.get_param_importances(study)  # no target: the study's own direction
    assert ranked["val_accuracy"] == pytest.approx(want) and max(want, key=want.get) == "train.lr"
