"""``mmrft report``: training curves and a prediction gallery from a real (tiny) run."""

from __future__ import annotations

from PIL import Image

from mmrft.cli import main
from mmrft.eval.report import comparison_table, summary_table
from mmrft.training import GRPOTrainer


def test_report_draws_curves_and_gallery(tmp_path, make_train_config, length_reward):
    config = make_train_config(
        tmp_path / "run", rewards=[{"name": "box_iou"}, {"name": length_reward}], max_steps=2,
        eval_before_after=True, eval_samples=4, eval_every=1,
    )
    GRPOTrainer(config).train()
    assert (tmp_path / "run" / "eval" / "final" / "heldout" / "samples.jsonl").is_file()
    assert main(["report", str(tmp_path / "run"), "--limit", "4"]) == 0
    curves = Image.open(tmp_path / "run" / "report" / "metrics.png")
    grid = Image.open(tmp_path / "run" / "report" / "gallery-final.png")
    assert curves.size[0] > 400 and grid.size[0] > 400
    assert len(grid.convert("L").getcolors(maxcolors=256 * 256) or []) > 10  # images were drawn, not a blank canvas


def test_comparison_table_marks_missing_metrics_and_failures():
    table = comparison_table(
        {
            "base": {"n": 4, "metrics": {"acc@0.5": 0.25, "mean_iou": 0.3}, "failures": {}},
            "grpo": {"n": 4, "metrics": {"acc@0.5": 0.5}, "failures": {"no_answer_block": 1}},
        }
    ).splitlines()
    assert table[2] == "| base | 4 | 0.250 | 0.300 | none |"
    assert table[3] == "| grpo | 4 | 0.500 | n/a | no_answer_block 1 |"


def test_summary_table_shows_a_metric_one_checkpoint_lacks():
    start = {"heldout": {"n": 3, "metrics": {"reward": 0.0, "valid": 0.0}}}  # nothing parsed: no ADE
    final = {"heldout": {"n": 3, "metrics": {"reward": 0.5, "valid": 1.0, "ade": 0.4}}}
    table = summary_table({"start": start, "final": final}).splitlines()
    assert table[2:] == [
        "| heldout (n=3) | reward | 0.000 | 0.500 | +0.500 |",
        "| heldout (n=3) | valid | 0.000 | 1.000 | +1.000 |",
        "| heldout (n=3) | ade | n/a | 0.400 |  |",
    ]
