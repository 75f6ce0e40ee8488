"""Issue 4's LNP experiment: a quick end-to-end run through the CLI handler, the per-task input layer, the random
baseline's counts, the config and the claims computed from hand-made numbers."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math

import pytest
import torch

from hrsnn.errors import ConfigError
from hrsnn.experiments.lnp import (
    VARIANTS,
    LNPExperimentConfig,
    Stat,
    SummaryRow,
    VariantRecord,
    build_dense,
    compute_claims,
    format_claims,
    format_table,
    plot_spectra,
    random_sparse,
    summarize,
    with_input_layer,
)
from hrsnn.experiments.store import RunStore
from hrsnn.pruning import shrink_layer, synapse_total


def _parser() -> argparse.ArgumentParser:
    from hrsnn.cli import build_parser

    return build_parser()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lnp")
    store = root / "runs.sqlite"
    args = _parser().parse_args(
        ["--store", str(store), "lnp", "--quick", "--json", "--quiet", "--out", str(root / "out")]
    )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = args.func(args)
    return code, json.loads(buffer.getvalue()), RunStore(store)


def _rows(payload, task, variant):
    return [r for r in payload["records"] if r["task"] == task and r["variant"] == variant]


def test_quick_run_table_has_every_task_and_variant(quick_run):
    code, payload, _ = quick_run
    assert code == 0
    cells = {(row["task"], row["variant"]) for row in payload["table"]}
    assert cells == {(t, v) for t in ("lorenz", "digits") for v in VARIANTS}
    for row in payload["table"]:
        assert row["n_seeds"] == 1
        assert all(math.isfinite(row[c]["mean"]) for c in ("metric", "lambda_max", "firing_rate"))
    assert {c["name"] for c in payload["claims"]} >= {"lnp_synapses_le_ap", "lnp_metric_ge_ap", "random_less_stable"}


def test_quick_run_lnp_shrinks_and_random_matches_its_counts(quick_run):
    _, payload, _ = quick_run
    for task in ("lorenz", "digits"):
        names = ("dense", "lnp", "random_pruned", "activity_pruned")
        (dense,), (lnp,), (rand,), (ap,) = (_rows(payload, task, v) for v in names)
        assert lnp["neurons"] < dense["neurons"] == 60
        assert lnp["synapses"] < dense["synapses"]
        assert (rand["neurons"], rand["synapses"]) == (lnp["neurons"], lnp["synapses"])
        assert ap["neurons"] == lnp["neurons"]
    history = payload["histories"]["0"]
    assert [e["iteration"] for e in history] == [0, 1, 2]
    assert history[-1]["neurons"] == _rows(payload, "lorenz", "lnp")[0]["neurons"]


def test_quick_run_writes_figures_and_records_the_run(quick_run):
    _, payload, store = quick_run
    for name in ("lnp_history", "lyapunov_spectra"):
        with open(payload["artifacts"][name], "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    record = store.get_run(payload["run_id"])
    assert (record.kind, record.status) == ("lnp", "completed")
    epochs = store.epochs(payload["run_id"])
    assert [e["metrics"]["iteration"] for e in epochs] == [e["iteration"] for e in payload["histories"]["0"]]
    kinds = {a["kind"] for a in record.artifacts}
    assert {"lnp_history", "lyapunov_spectra", "results", "table", "model"} <= kinds
    metrics = record.final_metrics
    assert metrics["lorenz.lnp.neurons_mean"] == _rows(payload, "lorenz", "lnp")[0]["neurons"]
    assert metrics["digits.lnp.accuracy_mean"] == _rows(payload, "digits", "lnp")[0]["metric"]
    assert metrics["claim.digits.random_less_stable"] == "not shown"  # one seed: no interval


def test_input_layer_swap_keeps_the_recurrent_network():
    config = LNPExperimentConfig.from_dict({"quick": True})
    dense = build_dense(config, 0)
    keep = torch.zeros(60, dtype=torch.bool)
    keep[::2] = True
    pruned = shrink_layer(dense, 0, keep)
    weight = torch.rand(60, 3, generator=torch.Generator().manual_seed(1))
    task = with_input_layer(pruned, weight[keep], n_outputs=4, seed=2)
    layer, old = task.layers[0], pruned.layers[0]
    assert task.config.n_inputs == 3 and task.config.n_outputs == 4
    assert torch.equal(layer.input.weight, weight[keep])
    assert torch.equal(layer.input.bias, torch.full((30,), config.bias))
    assert torch.equal(layer.weight_rec, old.weight_rec) and torch.equal(layer.mask, old.mask)
    assert torch.equal(layer.tau_m.tau, old.tau_m.tau)
    assert task.readout.input.out_features == 4 and pruned.config.n_inputs == config.probe_inputs
    out = task(torch.rand(2, 5, 3))
    assert out.readout.shape == (2, 5, 4) and out.layer_spikes[0].shape == (2, 5, 30)
    with pytest.raises(ConfigError, match="weight"):
        with_input_layer(pruned, weight)  # 60 rows for a 30-neuron layer


def test_random_sparse_hits_exact_counts_and_radius():
    config = LNPExperimentConfig.from_dict({"quick": True})
    dense = build_dense(config, 0)
    for n, s in ((30, 40), (30, 300)):  # 300 > the ~90 synapses a random half keeps: the rest are added
        result = random_sparse(dense, n, s, generator=torch.Generator().manual_seed(0), radius=3.0)
        weight = result.model.layers[0].effective_recurrent_weight().detach()
        assert (result.model.layers[0].size, synapse_total(result.model, 0)) == (n, s)
        assert not bool(torch.diagonal(weight).any())
        assert torch.linalg.eigvals(weight.double()).abs().max().item() == pytest.approx(3.0, rel=1e-5)
        signs = torch.where(dense.layers[0].effective_recurrent_weight().sum(0) < 0, -1.0, 1.0)[result.kept_neurons]
        assert bool(((weight * signs[None, :]) >= 0).all())  # Dale's law: column signs kept


def test_config_parsing_and_errors(tmp_path):
    config = LNPExperimentConfig.from_dict({"quick": True, "n_neurons": 80, "lnp": {"q_node": 0.2}})
    assert (config.n_neurons, config.k, config.seeds) == (80, 6, (0,))
    assert config.lnp_config().q_node == 0.2 and config.lnp_config().k_max == 2
    assert LNPExperimentConfig.from_dict(config.to_dict()) == config
    assert LNPExperimentConfig.from_dict({"clustered": True}).tau_spec()["dist"] == "clustered"
    with pytest.raises(ConfigError, match="tasks"):
        LNPExperimentConfig.from_dict({"tasks": ["cifar"]})
    with pytest.raises(ConfigError, match="lnp.q_node"):
        LNPExperimentConfig.from_dict({"lnp": {"q_node": 2.0}})
    with pytest.raises(ConfigError, match="readout.nope"):
        LNPExperimentConfig.from_dict({"readout": {"nope": 1}})
    with pytest.raises(ConfigError, match="k"):
        LNPExperimentConfig(n_neurons=10, k=12)
    args = _parser().parse_args(["lnp", "--seeds", "0,x"])
    with pytest.raises(ConfigError, match="--seeds"):
        args.func(args)
    path = tmp_path / "lnp.toml"
    path.write_text("quick = true\nn_neurons = 3\n", encoding="utf-8")
    args = _parser().parse_args(["lnp", "--config", str(path), "--set", "k=4"])
    with pytest.raises(ConfigError, match="n_neurons"):  # the file's value, after --set
        args.func(args)


def _records(task, variant, metrics, lams=(-0.05, -0.05, -0.05), synapses=2500, metric_name="nrmse"):
    return [
        VariantRecord(task, variant, seed, 50, synapses, m, metric_name, lam, 0.05, 10.0, 40.0, 5.0)
        for seed, (m, lam) in enumerate(zip(metrics, lams, strict=True))
    ]


def _claims_from(records):
    return {(c.task, c.name): c for c in compute_claims(summarize(records), records)}


def test_claims_are_paired_verdicts_with_by_construction_labels():
    records = [
        *_records("lorenz", "lnp", (0.30, 0.31, 0.29), (-0.05, -0.051, -0.049)),
        *_records("lorenz", "activity_pruned", (0.40, 0.42, 0.41), synapses=4900),
        *_records("lorenz", "random_pruned", (0.35, 0.35, 0.35), (-0.02, -0.021, -0.019)),
        *_records("lorenz", "lnp_homogeneous", (0.40, 0.30, 0.20)),
        *_records("digits", "lnp", (0.80, 0.81, 0.79), metric_name="accuracy"),
        *_records("digits", "activity_pruned", (0.90, 0.91, 0.92), synapses=2400, metric_name="accuracy"),
        *_records("digits", "random_pruned", (0.8, 0.8, 0.8), (-0.08, -0.09, -0.07), metric_name="accuracy"),
    ]
    claims = _claims_from(records)
    verdicts = {key: c.verdict for key, c in claims.items()}
    assert verdicts[("lorenz", "lnp_neurons_le_ap")] == "by construction"
    assert verdicts[("lorenz", "lnp_synapses_le_ap")] == "by construction"  # AP keeps all synapses of survivors
    assert verdicts[("lorenz", "lnp_metric_ge_ap")] == "holds"  # lower NRMSE in every seed, interval above 0
    assert verdicts[("lorenz", "lnp_beats_ap")] == "holds"
    assert verdicts[("lorenz", "random_less_stable")] == "holds"
    assert verdicts[("lorenz", "heterogeneous_tau_helps")] == "not shown"  # diffs +0.10, 0, -0.09
    assert verdicts[("digits", "lnp_synapses_le_ap")] == "refuted"  # 2500 > 2400
    assert verdicts[("digits", "lnp_metric_ge_ap")] == "refuted"
    assert verdicts[("digits", "lnp_beats_ap")] == "refuted"
    assert verdicts[("digits", "random_less_stable")] == "refuted"  # random is more stable in every seed
    assert ("digits", "heterogeneous_tau_helps") not in claims  # no homogeneous variant for digits
    metric = claims[("lorenz", "lnp_metric_ge_ap")].numbers  # d = 0.10, 0.11, 0.12 (LNP better)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n)
    assert metric["paired_diff_mean"] == pytest.approx(0.11)
    assert metric["ci_low"] == pytest.approx(0.11 - half) and metric["seeds_favouring"] == 3
    assert claims[("lorenz", "lnp_beats_ap")].holds and not claims[("digits", "lnp_beats_ap")].holds
    text = format_claims(compute_claims(summarize(records), records))
    assert "REFUTED" in text and "BY CONSTRUCTION" in text and "NOT SHOWN" in text


def test_one_seed_shows_nothing():
    records = [*_records("t", "lnp", (0.3,), (-0.05,)), *_records("t", "activity_pruned", (0.9,), (-0.05,))]
    assert _claims_from(records)[("t", "lnp_metric_ge_ap")].verdict == "not shown"


def test_summarize_means_and_sample_std():
    records = [
        VariantRecord("lorenz", variant, seed, 10 + seed, 50, metric, "nrmse", -0.1, 0.02, 9.0, 30.0 + seed, 5.0)
        for variant, values in (("lnp", (0.2, 0.4)), ("dense", (0.1, 0.1)))
        for seed, metric in enumerate(values)
    ]
    rows = {r.variant: r for r in summarize(records)}
    assert [r.variant for r in summarize(records)] == ["dense", "lnp"]  # table order
    assert rows["lnp"].metric == Stat(pytest.approx(0.3), pytest.approx(math.sqrt(0.02)))
    assert rows["lnp"].neurons == Stat(10.5, pytest.approx(math.sqrt(0.5)))
    assert not rows["lnp"].higher_is_better and rows["dense"].metric.std == 0.0




def test_spectrum_figure_and_table_agree_on_lambda_max(quick_run):
    _, payload, _ = quick_run
    table = {row["variant"]: row["lambda_max"]["mean"] for row in payload["table"] if row["task"] == "lorenz"}
    plotted = {"dense": "dense", "random sparse": "random_pruned", "LNP": "lnp"}  # figure legend → table variant
    spectra = {name: torch.tensor(payload["spectra"][name], dtype=torch.float64) for name in plotted}
    lambda_1 = {name: float(s.reshape(-1, s.shape[-1]).mean(0)[0]) for name, s in spectra.items()}  # (m,) or (seeds, m)
    for name, variant in plotted.items():
        assert lambda_1[name] == pytest.approx(table[variant], rel=1e-12, abs=0.0)
    by_figure = sorted(plotted, key=lambda_1.__getitem__)
    assert [plotted[name] for name in by_figure] == sorted(plotted.values(), key=table.__getitem__)


def test_table_shows_a_spread_only_over_several_seeds():
    one = VariantRecord("lorenz", "lnp", 0, 48, 216, 0.9, "nrmse", -0.09, 0.07, 10.72, 15.1, 3.0)
    table = format_table(summarize([one]))
    assert "±" not in table
    assert table.splitlines()[2].split() == [
        "lorenz",
        "lnp",
        "48",
        "216",
        "nrmse",
        "0.9000",
        "-0.0900",
        "0.0700",
        "10.72",
        "15.1",
        "1",
    ]
    two = format_table(summarize([one, dataclasses.replace(one, seed=1, metric=1.1)]))
    assert "nrmse 1.0000 ± 0.1414" in two and "48 ± 0" in two
    unknown = SummaryRow("t", "lnp", "nrmse", False, 3, *(Stat(1.0, math.nan),) * 8)  # e.g. a non-finite λ_max
    assert "nan" not in format_table([unknown])


def test_spectra_figure_plots_the_seed_mean_and_names_lambda_1(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: saved.append(self))
    spectra = {"dense": torch.tensor([[-0.1, -0.3], [-0.2, -0.5]]), "LNP": torch.tensor([-0.05, -0.4])}  # 2 seeds, 1
    plot_spectra(spectra, tmp_path / "spectra.png")
    (ax,) = saved[0].axes
    lines = {line.get_label(): line.get_ydata().tolist() for line in ax.get_lines() if line.get_label()[0] != "_"}
    assert lines == {
        "dense (λ₁ = -0.1500)": pytest.approx([-0.15, -0.4]),
        "LNP (λ₁ = -0.0500)": pytest.approx([-0.05, -0.4]),
    }
    with pytest.raises(ConfigError, match="spectra.dense"):
        plot_spectra({"dense": torch.zeros(2, 2, 2)}, tmp_path / "bad.png")


def test_no_help_text_mentions_issues():
    from hrsnn.cli import build_parser

    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    texts = [parser.format_help(), *(p.format_help() for p in sub.choices.values())]
    assert len(texts) > 5 and "hrsnn lnp" in texts[0] + "".join(texts[1:])
    assert not [t for t in texts if "issue" in t.lower()]


def test_sops_column_counts_each_spike_times_its_nonzero_recurrent_fan_out():
    from hrsnn.experiments.lnp import evaluate_on_task, load_task, task_input_weight

    config = LNPExperimentConfig.from_dict({"quick": True, "tasks": ["lorenz"]})
    dense = build_dense(config, 0)
    data = load_task("lorenz", 0, config)
    # prune the recurrent layer by hand: a pruned synapse must not be counted
    pruned = shrink_layer(dense, 0, torch.ones(config.n_neurons, dtype=torch.bool))
    layer = pruned.layers[0]
    layer.mask[:, ::2] = False
    scores = evaluate_on_task(pruned, "lorenz", 0, config, data=data)
    # by hand: run the network, take its spikes, weight each by the presynaptic neuron's count of outgoing synapses
    model = with_input_layer(pruned, task_input_weight(config, data, 0))
    x = torch.cat([xb for xb, _ in data.test.batches(256, shuffle=False)])
    with torch.no_grad():
        spikes = model(x).layer_spikes[0]  # (B, T, N); the recurrent input at step t is W @ s(t - 1)
    fan_out = (layer.effective_recurrent_weight() != 0).sum(0).to(spikes.dtype)  # column j: synapses leaving j
    assert bool((fan_out[::2] == 0).all())
    expected = float((spikes[:, :-1] * fan_out).sum()) / (x.shape[0] * x.shape[1])  # zero initial spikes
    assert scores["sops_per_step"] == pytest.approx(expected, rel=1e-9)
    assert scores["sops_per_step"] > 0


def test_homogeneous_control_has_one_tau_and_no_step4_by_default():
    from hrsnn.experiments.lnp import LNPExperimentConfig, build_dense

    config = LNPExperimentConfig.from_dict({"quick": True, "tau_homogeneous": True})
    tau = build_dense(config, 0).layers[0].tau_m.tau.detach()
    assert torch.allclose(tau, torch.full_like(tau, 2.0 + 3.0 * 6.0))  # floor + shape * scale
    assert config.lnp_config().tune_timescales is False
    explicit = LNPExperimentConfig.from_dict({"quick": True, "tau_homogeneous": True, "lnp": {"tune_timescales": True}})
    assert explicit.lnp_config().tune_timescales is True
    with pytest.raises(ConfigError, match="tau_homogeneous"):
        LNPExperimentConfig.from_dict({"quick": True, "tau_homogeneous": True, "clustered": True})


def test_ecg_task_reads_qtdb_files_and_scores_every_step(tmp_path):
    import numpy as np
    import scipy.io

    from hrsnn.errors import DataNotFoundError
    from hrsnn.experiments.lnp import LNPExperimentConfig, build_dense, evaluate_on_task, load_task

    rng = np.random.default_rng(0)
    (tmp_path / "qtdb").mkdir()
    for name, n in (("train", 12), ("test", 3)):
        x = (rng.random((n, 9, 4)) < 0.3).astype(np.int16)
        y = np.eye(6, dtype=np.uint8)[rng.integers(0, 6, size=(n, 9))]
        scipy.io.savemat(tmp_path / "qtdb" / f"QTDB_{name}.mat", {"x": x, "y": y})
    options = {"ecg": {"data_dir": str(tmp_path), "val_fraction": 0.25}}
    config = LNPExperimentConfig.from_dict({"quick": True, "tasks": ["ecg"], "task_options": options})
    scores = evaluate_on_task(build_dense(config, 0), "ecg", 0, config)
    assert scores["metric_name"] == "accuracy" and scores["neurons"] == 60
    data = load_task("ecg", 0, config)  # the task_options' folder and split reach the loader
    assert data.test.per_step and tuple(data.test.y.shape) == (3, 9) and data.val.n_samples == 3
    missing = LNPExperimentConfig.from_dict({"quick": True, "task_options": {"ecg": {"data_dir": str(tmp_path / "x")}}})
    with pytest.raises(DataNotFoundError):
        evaluate_on_task(build_dense(missing, 0), "ecg", 0, missing)


def test_real_world_series_are_lnp_prediction_tasks():
    from hrsnn.experiments.lnp import LNPExperimentConfig, build_dense, evaluate_on_task, load_task
    from hrsnn.tasks.series import santafe_laser_series

    config = LNPExperimentConfig.from_dict({"quick": True, "tasks": ["santafe_laser", "sunspots"]})
    laser = load_task("santafe_laser", 0, config)
    assert laser.train.n_channels == 20 and laser.train.n_steps == 50  # the population code, the quick window
    # the first training window's target is the standardised sample after its first step (one-step prediction)
    series = santafe_laser_series().astype(float).ravel()
    train_part = series[: round(0.7 * series.size)]
    first = (series[1] - train_part.mean()) / train_part.std()
    assert float(laser.train.y[0, 0, 0]) == pytest.approx(first, rel=1e-6)
    scores = evaluate_on_task(build_dense(config, 0), "sunspots", 0, config)
    assert scores["metric_name"] == "nrmse" and scores["metric"] < 0.8  # the mean gives 1.0; seeds 0-2: 0.50-0.57
