import argparse
import json
from pathlib import Path

from mmrft.cli.rewards import add_parser

REPO = Path(__file__).resolve().parents[2]


def _run(argv, capsys):
    parser = argparse.ArgumentParser(prog="mmrft")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out.splitlines()


def test_list(capsys):
    lines = _run(["rewards", "list"], capsys)
    assert any(line.startswith("box_iou\t[0, 1]\t") for line in lines)


def test_score_completions(capsys):
    lines = _run(
        ["rewards", "score", "box_iou", "--completion", "<answer>[0, 0, 50, 50]</answer>", "--completion", "nope",
         "--solution", "[0, 0, 100, 50]", "--column", "image_size=[200, 100]"],
        capsys,
    )
    assert [json.loads(line)["score"] for line in lines] == [0.5, 0.0]


def test_score_file(tmp_path, capsys):
    path = tmp_path / "samples.jsonl"
    rows = [
        {"completion": "<answer>cat</answer>", "solution": "cat"},
        {"completion": "<answer>cat or dog</answer>", "solution": "cat"},
        {"completion": "<answer>狗</answer>", "solution": ["狗", "dog"]},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    lines = _run(["rewards", "score", "classification", "--file", str(path)], capsys)
    out = [json.loads(line) for line in lines]
    assert [o["score"] for o in out] == [1.0, 0.0, 1.0]
    assert out[2]["completion"] == "<answer>狗</answer>"


def test_score_plugin_by_path(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    lines = _run(["rewards", "score", "rewards/example_plugin.py:answer_length_penalty", "--completion",
                  "<answer>ok</answer>"], capsys)
    assert json.loads(lines[0])["score"] == 1.0


def test_list_shows_every_verifier_with_range(capsys):
    from mmrft.rewards import list_rewards

    lines = _run(["rewards", "list"], capsys)
    assert len(lines) == len(list_rewards())
    assert any(line.startswith("box_giou\t[-1, 1]\t") for line in lines)
    assert any(line.startswith("trajectory\t[0, 1]\t") for line in lines)
    assert all(len(line.split("\t")) == 3 and line.split("\t")[2] for line in lines)


def test_score_new_verifiers(capsys):
    lines = _run(["rewards", "score", "temporal_iou", "--completion", "<answer>0 to 10</answer>",
                  "--solution", "[5, 15]"], capsys)
    assert json.loads(lines[0])["score"] == 1 / 3
    lines = _run(["rewards", "score", "trajectory", "--completion", "<answer>[(1, 0), (2, 0)]</answer>",
                  "--solution", "[[1, 0], [2, 0]]", "--column", "obstacles=[[[9, 9, 0, 1, 1]], [[2, 0, 0, 1, 1]]]"],
                 capsys)
    assert json.loads(lines[0])["score"] == 0.0


def _readme_score_commands():
    """Every `mmrft rewards score ...` command in the README, continuation lines joined."""
    import shlex

    text = (REPO / "README.md").read_text().replace("\\\n", " ")
    return [shlex.split(line.strip())[1:] for line in text.splitlines() if line.strip().startswith("mmrft rewards score ")]


def test_readme_score_commands_run_including_qwen2_5_vl_input_pixels(capsys):
    commands = _readme_score_commands()
    qwen25 = [c for c in commands if "coord_convention=\"input_pixels\"" in c]
    assert len(qwen25) == 1 and "input_size=[644, 476]" in qwen25[0]
    for argv in commands:
        [line] = _run(argv, capsys)
        assert json.loads(line)["score"] > 0.99  # each example answers its box (up to rounding)


def test_readme_input_size_is_what_the_qwen2_5_vl_processor_gives():
    """Qwen2.5-VL-3B-Instruct's processor settings (patch 14, merge 2, min/max pixels); a 640 x 480 image."""
    from PIL import Image
    from transformers import Qwen2VLImageProcessor

    processor = Qwen2VLImageProcessor(patch_size=14, merge_size=2, min_pixels=3136, max_pixels=12845056)
    grid = processor(images=Image.new("RGB", (640, 480)))["image_grid_thw"][0]
    assert [int(grid[2]) * 14, int(grid[1]) * 14] == [644, 476]
