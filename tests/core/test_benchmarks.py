"""Public benchmark formats: each loads from a fixture in its published format and scores hand-checked
predictions to hand-computed metrics (the model's text is canned; loading, parsing and scoring are real)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from mmrft.data.validate import check_sample
from mmrft.eval.benchmarks import BENCHMARKS
from mmrft.eval.evaluate import DATASET_METRICS, evaluate

FIXTURES = Path(__file__).resolve().parents[2] / "datasets"


class CannedPolicy:
    """Answers with the given texts, in order; the model input is the original image (pixels convention)."""

    coord_convention = "pixels"

    def __init__(self, texts):
        self.texts = list(texts)

    def prompts(self, samples):
        sizes = []
        for s in samples:
            if "image_size" in s:
                sizes.append(tuple(s["image_size"]))
                continue
            with Image.open(s["messages"][0]["content"][0]["image"]) as im:
                sizes.append(im.size)
        return SimpleNamespace(image_sizes=sizes, input_sizes=sizes)

    def sample(self, batch, num_samples, max_new_tokens, temperature):
        n = len(batch.image_sizes)
        texts, self.texts = self.texts[:n], self.texts[n:]
        return SimpleNamespace(texts=texts)


def images(root: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    for name, size in sizes.items():
        Image.new("RGB", size, "white").save(root / name)
    return root


def run(samples, texts):
    for s in samples:
        check_sample(s)
    return evaluate(CannedPolicy(texts), samples, batch_size=2)


def test_refcoco(tmp_path):
    root = images(tmp_path, {"COCO_train2014_000000000009.jpg": (200, 100), "COCO_train2014_000000000012.jpg": (100, 100)})
    load = BENCHMARKS.get("refcoco")
    samples = list(load(FIXTURES / "refcoco/fixture/refs.json", FIXTURES / "refcoco/fixture/instances.json", root, split="val"))
    assert [s["id"] for s in samples] == ["refcoco-0-0", "refcoco-0-1", "refcoco-2-0"]
    assert samples[0]["solution"] == [10, 20, 50, 80]  # xywh [10, 20, 40, 60] -> xyxy
    assert len(list(load(FIXTURES / "refcoco/fixture/refs.json", FIXTURES / "refcoco/fixture/instances.json", root, split="testA"))) == 1
    result = run(samples, ["<answer>[10, 20, 50, 80]</answer>", "<answer>[30, 20, 70, 80]</answer>", "nothing"])
    # IoU 1; [30, 20, 70, 80] vs [10, 20, 50, 80]: 1200 / 3600 = 1/3; no answer: 0
    assert result.metrics == {"acc@0.5": pytest.approx(1 / 3), "mean_iou": pytest.approx((1 + 1 / 3) / 3)}
    assert result.failures == {"no_answer_block": 1}
    with pytest.raises(ValueError, match="is a pickle"):
        next(load("refs(unc).p", FIXTURES / "refcoco/fixture/instances.json", root))


def test_screenspot_xywh_and_pro_xyxy(tmp_path):
    root = images(tmp_path, {"mobile_0.png": (100, 100), "mobile_1.png": (100, 100), "pro_0.png": (200, 100)})
    v1 = list(BENCHMARKS.get("screenspot")(FIXTURES / "screenspot/fixture/screenspot_mobile.json", root))
    assert [s["solution"] for s in v1] == [[10, 10, 40, 30], [60, 40, 80, 60], [0, 0, 50, 50]]
    # the corner counts (boundaries inclusive); one pixel outside misses; a box answers with its centre
    result = run(v1, ["<answer>(40, 30)</answer>", "<answer>(81, 50)</answer>", "<answer>[0, 0, 20, 20]</answer>"])
    assert result.metrics == pytest.approx({"accuracy": 2 / 3, "accuracy/text": 1.0, "accuracy/icon": 0.5})
    pro = list(BENCHMARKS.get("screenspot_pro")(FIXTURES / "screenspot/fixture/screenspot_pro_vscode.json", root))
    assert [s["solution"] for s in pro] == [[100, 20, 140, 40], [10, 60, 90, 80]] and pro[0]["image_size"] == [200, 100]
    result = run(pro, ["<answer>(120, 30)</answer>", "<answer>(95, 70)</answer>"])
    assert result.metrics == pytest.approx({"accuracy": 0.5, "accuracy/icon": 1.0, "accuracy/text": 0.0})


def test_vqav2_official_accuracy(tmp_path):
    root = images(tmp_path, {"COCO_val2014_000000000042.jpg": (64, 64), "COCO_val2014_000000000007.jpg": (64, 64)})
    load = BENCHMARKS.get("vqav2")
    samples = list(load(FIXTURES / "vqav2/fixture/questions.json", FIXTURES / "vqav2/fixture/annotations.json", root))
    assert [s["id"] for s in samples] == ["vqav2-420", "vqav2-421", "vqav2-70"] and len(samples[0]["solution"]) == 10
    # ten annotators say "two", the model says "2": 0.0, since the official script normalises only
    # when the answers differ. "orange" with 3 of 10 annotators: left-one-out mean of min(#/3, 1) =
    # (3 x 2/3 + 7 x 1) / 10 = 0.9. "Yes" with 1 of 10 (answers differ, so normalised): 0.3.
    result = run(samples, ["<answer>2</answer>", "<answer>orange</answer>", "<answer>Yes</answer>"])
    assert result.metrics == {"accuracy": pytest.approx((0.0 + 0.9 + 0.3) / 3)}
    assert [r["accuracy"] for r in result.samples] == pytest.approx([0.0, 0.9, 0.3])


def test_eval_cli_runs_a_registered_benchmark(tmp_path, tiny_model_dir, capsys):
    import json

    from mmrft.cli import main

    root = images(tmp_path, {"mobile_0.png": (100, 100), "mobile_1.png": (100, 100)})
    code = main(
        ["eval", "--model", str(tiny_model_dir("qwen2_vl")), "--benchmark", "screenspot",
         "--data", f"annotations={FIXTURES / 'screenspot/fixture/screenspot_mobile.json'}", f"images={root}",
         "--output-dir", str(tmp_path / "out"), "--max-new-tokens", "4"]
    )
    assert code == 0
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["benchmark"] == "screenspot" and report["n"] == 3
    assert {"accuracy", "accuracy/text", "accuracy/icon"} <= set(report["metrics"])
    assert main(["eval", "--model", "x", "--benchmark", "screenspot", "--data", "images=/nowhere", "--output-dir", str(tmp_path)]) == 2
    assert "screenspot images: not found: /nowhere" in capsys.readouterr().err


def test_mmbench_circular_eval():
    tsv = FIXTURES / "mmbench/fixture/mmbench_dev_fixture.tsv"
    samples = list(BENCHMARKS.get("mmbench")(tsv))
    # question 1001 has 4 options (answer B), 1002 has 3 (answer A) and reuses 1001's image by index
    assert [s["id"] for s in samples] == [f"mmbench-1001-{k}" for k in range(4)] + [f"mmbench-1002-{k}" for k in range(3)]
    assert [s["solution"] for s in samples] == ["B", "A", "D", "C", "A", "C", "B"]
    assert samples[1]["options"] == ["red", "green", "yellow", "blue"]
    assert samples[4]["messages"][0]["content"][0]["image"] == samples[0]["messages"][0]["content"][0]["image"]
    assert "Count carefully.\nHow many circles" in samples[4]["messages"][0]["content"][1]["text"]
    for s in samples:
        check_sample(s)
    texts = [f"<answer>{a}</answer>" for a in ["B", "A", "D", "C", "A", "C", "A"]]  # the last rotation of 1002 is wrong
    result = evaluate(CannedPolicy(texts), samples, batch_size=3)
    assert result.metrics == pytest.approx({"accuracy": 6 / 7, "accuracy/circular": 1 / 2})
    single = list(BENCHMARKS.get("mmbench")(tsv, circular=False))
    assert [s["solution"] for s in single] == ["B", "A"]


def test_mmbench_base64_images_go_through_the_real_policy(load_tiny_policy):
    samples = list(BENCHMARKS.get("mmbench")(FIXTURES / "mmbench/fixture/mmbench_dev_fixture.tsv"))
    policy = load_tiny_policy("qwen2_5_vl")
    batch = policy.prompts(samples[:5])
    assert len(batch.visuals) == 1  # one picture behind five prompts: encoded once
    result = evaluate(policy, samples, max_new_tokens=4)
    assert result.n == 7 and "accuracy/circular" in result.metrics


def test_scienceqa_with_and_without_images(tmp_path):
    (tmp_path / "test" / "5").mkdir(parents=True)
    Image.new("RGB", (64, 48), "white").save(tmp_path / "test" / "5" / "image.png")
    samples = list(BENCHMARKS.get("scienceqa")(FIXTURES / "scienceqa/fixture/problems.json", tmp_path))
    assert [s["id"] for s in samples] == ["scienceqa-5", "scienceqa-7"]  # the train-split question is left out
    assert [len(s["messages"][0]["content"]) for s in samples] == [2, 1]  # 7 has no image: asked as text
    for s in samples:
        check_sample(s)
    assert samples[1]["solution"] == "A" and "B. helmet" in samples[1]["messages"][0]["content"][0]["text"]


def test_mathvista_normalisation(tmp_path):
    from mmrft.rewards.math_answer import normalize_mathvista

    (tmp_path / "images").mkdir()
    for i in (1, 2, 3):
        Image.new("RGB", (32, 32), "white").save(tmp_path / "images" / f"{i}.jpg")
    samples = list(BENCHMARKS.get("mathvista")(FIXTURES / "mathvista/fixture/testmini.json", tmp_path))
    for s in samples:
        check_sample(s)
    # float to its precision ("1.23" -> "1.2"), integer from "1000.0", a choice by letter
    result = run(samples, ["<answer>1.23</answer>", "<answer>1000.0</answer>", "<answer>(B) square</answer>"])
    assert result.metrics == {"accuracy": 1.0}
    result = run(samples, ["<answer>1.26</answer>", "<answer>about a litre</answer>", "<answer>squares</answer>"])
    assert [r["accuracy"] for r in result.samples] == [0.0, 0.0, 1.0]  # 1.3 != 1.2; unparseable; nearest choice
    assert normalize_mathvista("C", ["circle", "square", "triangle"], "text", None) == "triangle"
    # "tri" is 5 edits from every choice: a tie goes to the first, as in MathVista's get_most_similar
    assert normalize_mathvista("tri", ["circle", "square", "triangle"], "text", None) == "circle"
    assert normalize_mathvista("squar", ["circle", "square", "triangle"], "text", None) == "square"


def test_image_folder_and_csv(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "tree" / label).mkdir(parents=True)
        Image.new("RGB", (16, 16), "white").save(tmp_path / "tree" / label / f"{label}1.png")
    (tmp_path / "tree" / "cat" / "notes.txt").write_text("not an image")
    tree = list(BENCHMARKS.get("image_folder")(root=tmp_path / "tree"))
    assert [(s["id"], s["solution"]) for s in tree] == [("cat/cat1.png", "cat"), ("dog/dog1.png", "dog")]
    (tmp_path / "labels.csv").write_text("image,label\ntree/dog/dog1.png,dog\n")
    rows = list(BENCHMARKS.get("image_folder")(csv_file=tmp_path / "labels.csv"))
    assert rows[0]["solution"] == "dog" and rows[0]["messages"][0]["content"][0]["image"] == str(tmp_path / "tree/dog/dog1.png")
    result = run(tree, ["<answer>cat</answer>", "<answer>cat</answer>"])
    assert result.metrics == {"accuracy": 0.5}


def test_temporal_benchmarks_load_through_the_converters(tmp_path):
    charades = list(BENCHMARKS.get("charades_sta")(FIXTURES / "charades_sta/fixture.txt", tmp_path))
    activitynet = list(BENCHMARKS.get("activitynet_captions")(FIXTURES / "activitynet_captions/fixture.json", tmp_path))
    assert len(charades) == 3 and len(activitynet) == 3
    assert charades[0]["task"] == activitynet[0]["task"] == "temporal_grounding"
    assert charades[0]["messages"][0]["content"][0]["video"] == f"{tmp_path}/3MSZA.mp4"


def test_coco_detection_with_a_crowd_region(tmp_path):
    root = images(tmp_path, {"000000000001.jpg": (100, 80), "000000000002.jpg": (100, 80)})
    samples = list(BENCHMARKS.get("coco_detection")(FIXTURES / "coco_detection/fixture/instances.json", root))
    assert samples[0]["solution"] == [{"bbox": [10, 10, 50, 50], "label": "cat"}, {"bbox": [60, 0, 100, 80], "label": "person"}]
    assert samples[0]["meta"]["crowd"] == [False, True]
    texts = [
        # the cat found exactly; a person inside the crowd region: ignored, not a false positive
        '<answer>[{"bbox_2d": [10, 10, 50, 50], "label": "cat", "score": 0.9}, '
        '{"bbox_2d": [65, 5, 90, 60], "label": "person", "score": 0.8}]</answer>',
        "<answer>[]</answer>",  # the dog missed
    ]
    result = run(samples, texts)
    # cat: AP 1 at every threshold; dog: AP 0; person has only crowd ground truth: not averaged
    assert result.metrics["mAP"] == pytest.approx(0.5) and result.metrics["AP50"] == pytest.approx(0.5)
    assert result.samples[1]["recall"] == 0.0
    # By COCO area: the cat (40x40 = 1600 px) is medium and found; the dog is small and missed; no large object.
    assert result.metrics["AP_medium"] == pytest.approx(1.0) and result.metrics["AP_small"] == pytest.approx(0.0)
    assert math.isnan(result.metrics["AP_large"])
    assert result.metrics["AR@100"] == pytest.approx(0.5)


def test_coco_detection_rejects_a_degenerate_ground_truth_box(tmp_path):
    sample = {"id": "flat", "task": "detection", "solution": [{"bbox": [10, 10, 10, 50], "label": "cat"}], "image_size": [100, 80]}
    with pytest.raises(ValueError, match="'flat'.*ground-truth"):
        DATASET_METRICS.get("detection")([{"parsed": [], "image_size": [100, 80]}], [sample])


def test_coco_metrics_take_a_box_past_the_image_as_given():
    """A detection reaching 50 px past a 100 x 100 image: IoU 0.5 with the truth as COCOeval sees it
    (AP only at IoU 0.50: mAP 0.1), 1.0 had it been clipped."""
    sample = {"id": "c", "task": "detection", "solution": [{"bbox": [50, 50, 100, 100], "label": "cat"}], "image_size": [100, 100]}
    row = {"parsed": [{"bbox_2d": [50, 50, 150, 100], "score": 0.9, "label": "cat"}], "convention": "pixels",
           "input_size": [100, 100], "image_size": [100, 100]}
    metrics = DATASET_METRICS.get("detection")([row], [sample])
    assert metrics["AP50"] == pytest.approx(1.0) and metrics["mAP"] == pytest.approx(0.1)
