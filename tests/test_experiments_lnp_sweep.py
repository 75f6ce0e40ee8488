"""The LNP sparsity sweep: config, journal, paired statistics and table (the end-to-end run is further down)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hrsnn.errors import ConfigError, DataFormatError
from hrsnn.experiments.lnp_sweep import (
    LNPStop,
    LNPSweepConfig,
    SweepRecord,
    _Journal,
    compare,
    format_sweep,
    summarize,
)


def _rec(task: str, variant: str, seed: int, level: float, metric: float, synapses: int = 100) -> SweepRecord:
    return SweepRecord(
        task, variant, seed, level, 50, synapses, metric, "accuracy", -0.05, 0.001, 0.01, 0.002, 9.0, 0.02, 10.0
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"sparsities": [0.5, 0.3]}, "sparsities"),
        ({"sparsities": [0.0, 0.3]}, "sparsities[0]"),
        ({"sparsities": []}, "sparsities"),
        ({"baselines": ["random", "lottery"]}, "baselines[1]"),
        ({"lyapunov_ics": 0}, "lyapunov_ics"),
        ({"ablations": ["no_step2"]}, "ablations[0]"),
        ({"divergence_epsilon": 0}, "divergence_epsilon"),
        ({"n_neurons": 2}, "n_neurons"),
    ],
)
def test_sweep_config_errors_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        LNPSweepConfig.from_dict(data)


def test_sweep_config_round_trip_and_quick() -> None:
    config = LNPSweepConfig.from_dict({"quick": True, "sparsities": [0.25, 0.5], "seeds": [0, 1]})
    assert config.sparsities == (0.25, 0.5) and config.experiment.n_neurons == 60
    assert config.experiment.seeds == (0, 1)
    assert LNPSweepConfig.from_dict(config.to_dict()) == config
    assert LNPSweepConfig.from_dict({"quick": True}).sparsities == (0.2, 0.4)


def test_journal_keeps_records_and_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    journal = _Journal(path)
    journal.add(_rec("digits", "lnp", 0, 0.3, 0.9))
    journal.add_stop(LNPStop("lnp", 0, 0.3, 0.31, "reached every level"))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"type": "record", "task": "dig')  # killed mid-write
    again = _Journal(path)
    assert list(again.records) == [("digits", "lnp", 0, 0.3)]
    assert again.records[("digits", "lnp", 0, 0.3)].metric == 0.9
    assert again.stops[("lnp", 0)].note == "reached every level"


def test_journal_damaged_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(
        "not json\n"
        + json.dumps(
            {"type": "lnp_stop", "variant": "lnp", "seed": 0, "deepest_level": None, "sparsity": 0.0, "note": "x"}
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataFormatError, match="line 1"):
        _Journal(path)


def test_compare_pairs_by_seed_with_known_numbers() -> None:
    # LNP beats random by 0.01, 0.02, 0.03 on seeds 0-2; random lacks seed 3 (not paired)
    records = [_rec("digits", "lnp", s, 0.5, 0.80 + 0.01 * s) for s in range(4)]
    records += [_rec("digits", "random", s, 0.5, 0.79) for s in range(3)]
    records += [_rec("digits", "ap", s, 0.5, 0.9, synapses=300) for s in range(3)]
    by = {(c.baseline, c.level): c for c in compare(records)}
    rnd = by[("random", 0.5)]
    assert rnd.stats.n == 3 and rnd.stats.diff == pytest.approx(0.02)
    assert (rnd.stats.wins, rnd.stats.losses) == (3, 0)
    assert rnd.neurons_equal and rnd.synapses_equal
    ap = by[("ap", 0.5)]
    assert ap.stats.diff == pytest.approx(-(0.9 - 0.81)) and not ap.synapses_equal
    assert ap.stats.verdict() == "B better"


def test_summary_rows_and_table() -> None:
    records = [_rec("digits", v, s, 0.5, m + 0.01 * s) for v, m in (("lnp", 0.8), ("random", 0.7)) for s in range(2)]
    rows = summarize(records)
    assert [(r.variant, r.n_seeds) for r in rows] == [("lnp", 2), ("random", 2)]
    assert rows[0].metric.mean == pytest.approx(0.805) and rows[0].metric.sem == pytest.approx(0.005)
    text = format_sweep(rows, compare(records), [LNPStop("lnp", 0, 0.5, 0.52, "reached every level")])
    assert "lnp seed 0: deepest level 0.5, neuron sparsity 0.520" in text
    line = next(x for x in text.splitlines() if x.startswith("digits") and "random" in x and "[" in x)
    assert "+0.1000" in line and "2/0" in line
    assert not math.isnan(rows[1].metric.sem)


# ------------------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def quick_sweep(tmp_path_factory: pytest.TempPathFactory):
    from hrsnn.experiments.lnp_sweep import run_lnp_sweep
    from hrsnn.experiments.store import RunStore

    root = tmp_path_factory.mktemp("sweep")
    store = RunStore(root / "runs.sqlite")
    config = LNPSweepConfig.from_dict(
        {"quick": True, "tasks": ["digits"], "seeds": [0, 1], "lyapunov_ics": 2, "ablations": ["no_step3"]}
    )
    return store, config, run_lnp_sweep(config, store=store, out_dir=root / "out")


def test_quick_sweep_compares_every_baseline_at_equal_counts(quick_sweep) -> None:
    store, config, result = quick_sweep
    assert store.get_run(result.run_id).status == "completed"
    levels = {r.level for r in result.records}
    assert levels <= set(config.sparsities) and levels
    by = {r.key: r for r in result.records}
    for (task, variant, seed, level), record in by.items():
        lnp = by[(task, "lnp", seed, level)]
        assert record.neurons == lnp.neurons, variant  # equal neurons by construction
        if variant.startswith("random"):
            assert record.synapses == lnp.synapses, variant  # equal synapses by construction
        elif variant != "ap":
            assert record.synapses <= lnp.synapses, variant  # at most LNP's (all, when fewer are available)
        assert record.neurons <= (1 - level) * config.experiment.n_neurons
    assert {c.baseline for c in result.comparisons} == {*config.baselines, "lnp:no_step3"}
    ablated = [r for r in result.records if r.variant == "lnp:no_step3"]
    assert ablated and all(r.neurons <= (1 - r.level) * config.experiment.n_neurons for r in ablated)
    assert all(math.isfinite(r.divergence_rate) and r.divergence_sem >= 0 for r in result.records)
    assert all(c.stats.n == 2 for c in result.comparisons if c.level == min(levels))
    text = result.artifacts["table"].read_text(encoding="utf-8")
    assert "paired LNP - baseline" in text and result.artifacts["figure"].stat().st_size > 0


def test_quick_sweep_resumes_only_what_is_missing(quick_sweep, monkeypatch) -> None:
    from hrsnn.experiments import lnp_sweep
    from hrsnn.experiments.lnp_sweep import resume_lnp_sweep

    store, _, result = quick_sweep
    run_dir = result.run_dir
    journal = run_dir / "records.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines()
    kept = len(lines) - 3
    journal.write_text("\n".join(lines[:kept]) + "\n" + lines[kept][:20], encoding="utf-8")  # killed mid-write
    store.set_status(result.run_id, "failed")
    measured: list[str] = []
    original = lnp_sweep._measure

    def counting(net, variant, *args, **kwargs):
        measured.append(variant)
        return original(net, variant, *args, **kwargs)

    monkeypatch.setattr(lnp_sweep, "_measure", counting)
    again = resume_lnp_sweep(result.run_id, store=store)
    assert len(measured) == 3  # only the lost measurements were made again
    assert {r.key: r for r in again.records} == {r.key: r for r in result.records}
    assert store.get_run(result.run_id).status == "completed"
    with pytest.raises(ConfigError, match="already completed"):
        resume_lnp_sweep(result.run_id, store=store)


def test_cli_quick_sweep_reaches_both_levels_and_refuses_misplaced_options(tmp_path, capsys) -> None:
    from hrsnn.cli import main

    store = str(tmp_path / "runs.sqlite")
    argv = ["--store", store, "lnp", "--sweep", "--quick", "--tasks", "digits", "--baselines", "random", "--json"]
    code = main([*argv, "--out", str(tmp_path / "out"), "--quiet"])
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert {r["level"] for r in payload["records"]} == {0.2, 0.4}  # the sweep's quick LNP reaches both levels
    assert {r["variant"] for r in payload["records"]} == {"lnp", "random"}
    assert main(["--store", store, "lnp", "--quick", "--sparsities", "0.5"]) == 2
    assert "--sparsities" in capsys.readouterr().err
    assert main(["--store", store, "lnp", "--resume", str(payload["run_id"]), "--sparsities", "0.5"]) == 2
    assert "cannot change when resuming" in capsys.readouterr().err


def test_markdown_summary_marks_significant_and_unequal_cells() -> None:
    from hrsnn.experiments.lnp_sweep import format_sweep_markdown

    records = [_rec("digits", "lnp", s, 0.5, 0.80 + 0.01 * s) for s in range(5)]
    records += [_rec("digits", "random", s, 0.5, 0.79) for s in range(5)]  # LNP better by 0.01 ... 0.05
    records += [_rec("digits", "ap", s, 0.5, 0.80 + 0.01 * s + 0.01 * (-1) ** s, 300) for s in range(5)]
    text = format_sweep_markdown(summarize(records), compare(records))
    assert "| level | LNP | random | ap |" in text
    row = next(line for line in text.splitlines() if line.startswith("| 0.5 |"))
    assert "**+0.030 [+0.010, +0.050]**" in row  # t_{0.975,4} = 2.776, s = 0.0158: the interval excludes 0
    ap_cell = row.split("|")[4]
    assert "**" not in ap_cell and ap_cell.strip().endswith("†")  # within noise, and its synapse count differs
