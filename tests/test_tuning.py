"""Per-shape learning-rate tuning: the choice uses the tuning seeds only, the verdict the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cell_settings, only_dir, run_cli

from nnsweep.report import tuning_report
from nnsweep.stats import tuning

LRS = (0.5, 1.0, 2.0)
SEEDS = range(1, 13)
TUNE = 4


def grid(best: dict[str, float], evaluation_best: dict[str, float] | None = None) -> pd.DataFrame:
    """Shapes 8-8 and 16-8 over LRS, seeds 1..12. On the tuning seeds (1..4) each shape
    ends lowest at best[shape]; on the others at evaluation_best[shape] (default: the same).
    16-8 ends about 0.7 times as high as 8-8 at its best lr, 8-8 about the same at every lr
    on the evaluation seeds."""
    rng = np.random.default_rng(0)
    rows = []
    for job, (layers, lr) in enumerate((s, lr) for s in ("8-8", "16-8") for lr in LRS):
        for seed in SEEDS:
            target = best if seed <= TUNE else (evaluation_best or best)
            level = 0.002 * (0.7 if layers == "16-8" else 1.0)
            level *= 1.0 if lr == target[layers] else 1.6
            rows.append(
                {
                    **cell_settings(layers=layers, lr=lr),
                    "job": job,
                    "seed": seed,
                    "status": "ok",
                    "final_error": level * float(np.exp(rng.normal(0, 0.05))),
                    "solved": True,
                    "diverged": False,
                    "unstable": False,
                    "first_below_threshold": 100,
                    "n_weights": 100,
                }
            )
    return pd.DataFrame(rows)


def test_tuning_and_evaluation_seeds_are_apart() -> None:
    tuning_rows, evaluation = tuning.split_seeds(grid({"8-8": 2.0, "16-8": 0.5}), TUNE)
    assert sorted(tuning_rows["seed"].unique()) == [1, 2, 3, 4]
    assert sorted(evaluation["seed"].unique()) == list(range(5, 13))
    assert len(tuning_rows) == 6 * TUNE and len(evaluation) == 6 * 8


def test_each_shape_gets_the_lr_its_tuning_seeds_prefer() -> None:
    runs = grid({"8-8": 2.0, "16-8": 0.5})
    chosen = tuning.tuned(runs, TUNE).chosen.set_index("layers")["lr"]
    assert chosen.to_dict() == {"8-8": 2.0, "16-8": 0.5}


def test_the_evaluation_seeds_cannot_change_the_choice() -> None:
    # The evaluation seeds prefer other learning rates; the choice does not follow them.
    runs = grid({"8-8": 2.0, "16-8": 0.5}, evaluation_best={"8-8": 0.5, "16-8": 2.0})
    choice = tuning.tuned(runs, TUNE)
    assert choice.chosen.set_index("layers")["lr"].to_dict() == {"8-8": 2.0, "16-8": 0.5}
    assert choice.tuning_seeds == (1, 2, 3, 4) and choice.evaluation_seeds == tuple(range(5, 13))
    judged = tuning.at_chosen(tuning.split_seeds(runs, TUNE)[1], choice.chosen)
    assert set(judged["seed"]) == set(range(5, 13))
    assert set(zip(judged["layers"], judged["lr"], strict=True)) == {("8-8", 2.0), ("16-8", 0.5)}


def test_ties_go_to_the_lr_nearest_the_tutorials() -> None:
    runs = grid({"8-8": 1.0, "16-8": 1.0})
    runs["final_error"] = 0.002  # every lr ties
    chosen = tuning.tuned(runs, TUNE).chosen.set_index("layers")["lr"]
    assert chosen.to_dict() == {"8-8": 1.0, "16-8": 1.0}


def test_the_section_shows_the_grid_the_choice_and_both_verdicts() -> None:
    runs = grid({"8-8": 2.0, "16-8": 0.5})
    sections = tuning_report.tuning_sections(runs, TUNE, (0.44, 0.56))
    assert [s.title for s in sections] == [
        tuning_report.TITLE,
        "Tuned lr against lr = 1, pair by pair",
    ]
    text = " ".join(sections[0].paragraphs)
    assert "chosen on seeds 1..4" in text and "on seeds 5..12 only" in text
    assert "Chosen: 8-8: lr = 2; 16-8: lr = 0.5." in text
    assert "**At each shape's tuned lr:**" in text
    assert "**At the tutorial's lr = 1, same seeds:**" in text
    table = sections[0].table
    assert list(table.columns) == ["shape", "lr = 0.5", "lr = 1", "lr = 2"]
    starred = {
        r["shape"]: [c for c in table.columns if str(r[c]).endswith("*")]
        for _, r in table.iterrows()
    }
    assert starred == {"8-8": ["lr = 2"], "16-8": ["lr = 0.5"]}
    pairs = sections[1].table
    assert set(pairs.columns) == {"pair", "part", "at tuned lr", "at lr = 1", "same"}


def test_no_section_without_tune_seeds_or_an_lr_axis() -> None:
    runs = grid({"8-8": 2.0, "16-8": 0.5})
    assert tuning_report.tuning_sections(runs, 0, (0.44, 0.56)) == []
    one_lr = runs[runs["lr"] == 1.0]
    assert tuning_report.tuning_sections(one_lr, TUNE, (0.44, 0.56)) == []
    (only,) = tuning_report.tuning_sections(runs, 12, (0.44, 0.56))
    assert "no seed is left to judge" in only.paragraphs[0]


@pytest.mark.slow
def test_a_tiny_neurons_early_tuned_sweep_reports_the_tuned_verdict(tmp_path: Path) -> None:
    done = run_cli(
        [
            "experiments=neurons_early_tuned",
            f"results_dir={tmp_path}",
            "iterations=300",
            "log_every=100",
            "n_seeds=6",
            "tune_seeds=2",
            "lr=0.5,2",
            "layers=8-16-8,16-8-8",
        ]
    )
    assert done.returncode == 0, done.stderr
    sweep_dir = only_dir(tmp_path / "neurons_early_tuned")
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    assert set(runs["lr"]) == {0.5, 2.0} and len(runs) == 4 * 6
    markdown = (sweep_dir / "report.md").read_text()
    section = markdown.split(f"## {tuning_report.TITLE}")[1].split("\n## ")[0]
    assert "chosen on seeds 1..2" in section and "on seeds 3..6 only" in section
    assert "**At each shape's tuned lr:**" in section
    assert "no baseline verdict" in section  # this tiny grid has no lr = 1
    assert markdown.index(f"## {tuning_report.TITLE}") < markdown.index("## Verdict")
