"""``mmrft eval`` writes the eval.json / samples.jsonl contract; the grounding scorer on golden cases."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from mmrft.cli import main
from mmrft.eval.evaluate import TASK_SCORERS, evaluate


def test_eval_cli_writes_contract(tmp_path, tiny_model_dir, grounding_data, capsys):
    model = str(tiny_model_dir("qwen2_5_vl"))
    out = tmp_path / "eval"
    code = main(["eval", "--model", model, "--data", str(grounding_data.heldout), "--output-dir", str(out), "--limit", "4"])
    assert code == 0
    report = json.loads((out / "eval.json").read_text())
    assert set(report) == {"benchmark", "model", "n", "metrics", "failures"}
    assert report["benchmark"] == "heldout" and report["model"] == model and report["n"] == 4
    assert set(report["metrics"]) == {"acc@0.5", "mean_iou"}
    assert all(0.0 <= v <= 1.0 for v in report["metrics"].values())
    assert isinstance(report["failures"], dict) and all(isinstance(v, int) for v in report["failures"].values())
    assert sum(report["failures"].values()) <= 4
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert [r["id"] for r in rows] == [f"shapes_grounding-heldout-{i:06d}" for i in range(4)]
    for r in rows:
        assert {"prediction", "parsed", "score", "failure"} <= r.keys() and isinstance(r["prediction"], str)
    # The metrics are the means of the per-sample scores.
    assert report["metrics"]["mean_iou"] == pytest.approx(sum(r["mean_iou"] for r in rows) / 4)
    assert "wrote" in capsys.readouterr().out


def test_eval_cli_missing_data_exits_2(tmp_path, capsys):
    code = main(["eval", "--model", "tiny:qwen2_5_vl", "--data", str(tmp_path / "nope.jsonl"), "--output-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.jsonl" in err[0]


# Original image 224 x 112, model input 112 x 56: input_pixels = original / 2 exactly.
SAMPLE = {"id": "g", "task": "grounding", "solution": [20, 10, 100, 60]}
META = {"image_size": (224, 112), "input_size": (112, 56), "convention": "input_pixels"}
grounding = TASK_SCORERS.get("grounding")


def test_grounding_scorer_exact_box():
    scored = grounding("<answer>[10, 5, 50, 30]</answer>", SAMPLE, META)
    assert scored.failure is None and scored.parsed == [10, 5, 50, 30]
    assert scored.scores == {"acc@0.5": 1.0, "mean_iou": 1.0}


def test_grounding_scorer_half_overlap_and_conventions():
    # [10, 5, 30, 30] in input pixels is [20, 10, 60, 60] in the original: IoU 40*50 / (80*50) = 0.5.
    scored = grounding("<think>left</think><answer>[10, 5, 30, 30]</answer>", SAMPLE, META)
    assert scored.scores["mean_iou"] == pytest.approx(0.5) and scored.scores["acc@0.5"] == 1.0
    # The same box in norm1000 is ground truth / (224, 112) * 1000.
    norm = {**META, "convention": "norm1000"}
    box = [round(20 / 224 * 1000, 3), round(10 / 112 * 1000, 3), round(100 / 224 * 1000, 3), round(60 / 112 * 1000, 3)]
    scored = grounding(f"<answer>{box}</answer>", SAMPLE, norm)
    assert scored.scores["mean_iou"] == pytest.approx(1.0, abs=1e-4)
    # Original pixels read as input pixels: [40, 20, 200, 120], past the 112-pixel-high image and
    # not clipped (the benchmark's IoU): intersection 60 x 40 with the ground truth, union 160 x 100 + 80 x 50 - 2400.
    scored = grounding("<answer>[20, 10, 100, 60]</answer>", SAMPLE, META)
    assert scored.scores["mean_iou"] == pytest.approx(2400 / (160 * 100 + 4000 - 2400)) and scored.scores["acc@0.5"] == 0.0


@pytest.mark.parametrize(
    "text, reason",
    [("the box is somewhere", "no_answer_block"), ("<answer>[a, b, c]</answer>", "unparseable_box")],
)
def test_grounding_scorer_failures(text, reason):
    scored = grounding(text, SAMPLE, META)
    assert scored.failure == reason and scored.parsed is None
    assert scored.scores == {"acc@0.5": 0.0, "mean_iou": 0.0}


class StubPolicy:
    """Returns canned completions in order: lets evaluate() be checked on golden texts."""

    coord_convention = "input_pixels"

    def __init__(self, texts):
        self.texts = list(texts)

    def prompts(self, samples):
        return SimpleNamespace(image_sizes=[(224, 112)] * len(samples), input_sizes=[(112, 56)] * len(samples))

    def sample(self, batch, num_samples, max_new_tokens, temperature):
        assert temperature == 0.0 and num_samples == 1  # evaluation is greedy
        n = len(batch.image_sizes)
        texts, self.texts = self.texts[:n], self.texts[n:]
        return SimpleNamespace(texts=texts)


def test_evaluate_aggregates_scores_and_failures(tmp_path):
    image = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (224, 112), "white").save(image)
    samples = [
        {"id": f"s{i}", "task": "grounding", "solution": [20, 10, 100, 60],
         "messages": [{"role": "user", "content": [{"type": "image", "image": str(image)}, {"type": "text", "text": "Locate."}]}]}
        for i in range(4)
    ]
    samples.insert(2, {"id": "broken", "task": "grounding", "solution": [1, 2], "messages": samples[0]["messages"]})
    texts = ["<answer>[10, 5, 50, 30]</answer>", "<answer>[10, 5, 30, 30]</answer>", "no answer", "<answer>[x]</answer>"]
    result = evaluate(StubPolicy(texts), samples, batch_size=3)
    assert result.n == 5  # the broken sample counts in the denominator
    assert result.metrics == {"acc@0.5": pytest.approx(2 / 5), "mean_iou": pytest.approx(1.5 / 5)}
    assert result.failures == {"bad_sample": 1, "no_answer_block": 1, "unparseable_box": 1}
    assert {r["id"]: r["failure"] for r in result.samples} == {
        "s0": None, "s1": None, "broken": "bad_sample", "s2": "no_answer_block", "s3": "unparseable_box"
    }


def test_interrupted_eval_resumes_to_the_same_result(tmp_path, tiny_model_dir, grounding_data, monkeypatch):
    from mmrft.policies.qwen_vl import QwenVLPolicy

    model = str(tiny_model_dir("qwen2_5_vl"))
    args = ["eval", "--model", model, "--data", str(grounding_data.heldout), "--batch-size", "3"]
    assert main([*args, "--output-dir", str(tmp_path / "straight")]) == 0
    straight = (tmp_path / "straight" / "eval.json").read_text()
    # an eval killed after its first batch: 3 rows written, the 4th torn mid-line, no eval.json
    out = tmp_path / "killed"
    out.mkdir()
    lines = (tmp_path / "straight" / "samples.jsonl").read_text().splitlines()
    (out / "samples.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    decoded = []
    sample = QwenVLPolicy.sample
    monkeypatch.setattr(QwenVLPolicy, "sample", lambda self, batch, *a, **k: decoded.extend(batch.sample_ids) or sample(self, batch, *a, **k))
    assert main([*args, "--output-dir", str(out), "--resume"]) == 0
    assert (out / "eval.json").read_text() == straight
    assert (out / "samples.jsonl").read_text() == (tmp_path / "straight" / "samples.jsonl").read_text()
    assert len(decoded) == 8 - 3  # only the unfinished samples were decoded again


def test_several_models_get_a_comparison_table(tmp_path, tiny_model_dir, grounding_data):
    models = [str(tiny_model_dir("qwen2_5_vl")), str(tiny_model_dir("qwen2_vl"))]
    assert main(["eval", "--model", *models, "--data", str(grounding_data.heldout), "--output-dir", str(tmp_path), "--limit", "2"]) == 0
    table = (tmp_path / "comparison.md").read_text().splitlines()
    assert table[0] == "| model | n | acc@0.5 | mean_iou | failures |"
    assert len(table) == 4
    names = [line.split("|")[1].strip() for line in table[2:]]
    assert all((tmp_path / name / "eval.json").is_file() for name in names)


def test_samples_rows_carry_the_box_in_original_pixels(tmp_path):
    from PIL import Image

    image = tmp_path / "img.png"
    Image.new("RGB", (224, 112), "white").save(image)
    messages = [{"role": "user", "content": [{"type": "image", "image": str(image)}, {"type": "text", "text": "Locate."}]}]
    samples = [{"id": f"s{i}", "task": "grounding", "solution": [20, 10, 100, 60], "messages": messages} for i in range(3)]
    texts = ["<answer>[10, 5, 30, 30]</answer>", "<answer>[20, 10, 100, 60]</answer>", "no answer"]
    rows = evaluate(StubPolicy(texts), samples).samples
    assert [r["parsed"] for r in rows] == [[10, 5, 30, 30], [20, 10, 100, 60], None]  # input pixels: original / 2
    assert [r.get("parsed_pixels") for r in rows] == [[20, 10, 60, 60], [40, 20, 200, 120], None]  # the second past the image


def test_eval_on_a_split_whose_videos_are_missing(tmp_path, tiny_model_dir, capsys):
    split = tmp_path / "split.jsonl"
    rows = [
        {"id": f"q{i}", "task": "temporal_grounding", "solution": [1.0, 3.0], "duration": 10.0,
         "messages": [{"role": "user", "content": [{"type": "video", "video": f"videos/v{i}.mp4"}, {"type": "text", "text": "When?"}]}]}
        for i in range(2)
    ]
    split.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(tiny_model_dir("qwen2_5_vl")), "--data", str(split), "--output-dir", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["n"] == 2 and report["failures"] == {"bad_sample": 2}
    assert report["metrics"] == {"miou": 0.0, "r1@0.3": 0.0, "r1@0.5": 0.0, "r1@0.7": 0.0}
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["error"] for s in samples] == [f"video not found: {tmp_path / 'videos' / f'v{i}.mp4'}" for i in range(2)]
    printed = capsys.readouterr().out
    assert "miou=0.0000" in printed and "r1@0.5=0.0000" in printed
