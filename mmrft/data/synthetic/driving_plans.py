"""Driving plans: the task of the VLM waypoint planner, cut from the noisy expert's episodes.

A sample is one decision point of a logged episode (every ``CHUNK`` steps): the top-down frame
rendered from the state, the instruction, and the ego's speed and offset to the instructed lane
(the token-action VLA's prompt) plus the answer format. The answer is the ego's next ``CHUNK``
positions as the expert drove them, in metres from its current position (x along the road, y to
the left, one decimal). The `trajectory` verifier's columns ride along in the same ego-relative
frame: the obstacles' boxes at those steps (``obstacles``), the road polygon (``road``) and the
ego's size (``ego_size``). Decisions from episodes that collided or left the road are not used,
so every answer is safe. Train and held-out samples come from the driving splits' own initial
states (held-out: the closed-loop evaluation's states), so they never share an episode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mmrft.data.synthetic.writer import write_samples
from mmrft.envs import driving as world
from mmrft.envs.expert import log_episodes
from mmrft.envs.render import frame_item, render
from mmrft.envs.vector import CHUNK

TASK = "driving_plan"
EPISODES_PER_BATCH = 100


def plan_prompt(ego: np.ndarray, lane: float, chunk: int = CHUNK) -> str:
    """The planner's question for one state: instruction, speed, lane offset, answer format."""
    return (
        f"{world.prompt_text(ego, lane)}. Give your next {chunk} positions, one every {world.DT:g} s, in metres from "
        f"where you are (x ahead, y left), as <answer>[(x1, y1), ...]</answer>."
    )


def plan_content(image, ego: np.ndarray, lane: float, chunk: int = CHUNK) -> list[dict]:
    """The user turn's content: the frame (a path or a PIL image) at `MODEL_PIXELS`, then the question
    (set on the image item, so training and closed-loop driving agree)."""
    return [frame_item(image), {"type": "text", "text": plan_prompt(ego, lane, chunk)}]


def decision_points(split: str, n: int, seed: int = 0, chunk: int = CHUNK) -> list[dict]:
    """The first `n` decision points of safe noisy-expert episodes on `split`'s initial states, in order."""
    points: list[dict] = []
    start = 0
    while len(points) < n:
        logged = log_episodes(split, EPISODES_PER_BATCH, seed, start=start)
        for i in range(EPISODES_PER_BATCH):
            if logged["collision"][i] or logged["offroad"][i]:
                continue
            for t in range(0, int(logged["steps"][i]) - chunk + 1, chunk):
                ego = logged["ego"][i, t]
                points.append({
                    "episode": start + i,
                    "step": t,
                    "ego": ego,
                    "obstacles": logged["obstacles"][i, t],
                    "future_ego": logged["ego"][i, t + 1 : t + chunk + 1],
                    "future_obstacles": logged["obstacles"][i, t + 1 : t + chunk + 1],
                    "lane": float(logged["lane"][i]),
                })  # fmt: skip
        start += EPISODES_PER_BATCH
    return points[:n]


def plan_sample(point: dict, split: str, index: int, seed: int) -> tuple[dict, np.ndarray]:
    """The JSONL sample of one decision point, and its frame."""
    ego = point["ego"]
    origin = np.array([ego[0], ego[1], 0.0, 0.0, 0.0])
    boxes = world.obstacle_boxes(point["future_obstacles"]) - origin  # [H, K, 5] relative to the ego
    offsets = np.round(point["future_ego"][:, :2] - ego[:2], 1) + 0.0  # + 0.0: no "-0.0"
    sample = {
        "id": f"{TASK}-{split}-{index:06d}",
        "task": TASK,
        "messages": [{"role": "user", "content": plan_content(f"images/{split}-{index:06d}.png", ego, point["lane"])}],
        "solution": offsets.tolist(),
        "obstacles": np.round(boxes, 3).tolist(),
        "road": (world.ROAD - ego[:2]).round(3).tolist(),
        "ego_size": list(world.EGO_SIZE),
        "meta": {"split": split, "seed": seed, "episode": point["episode"], "step": point["step"]},
    }  # fmt: skip
    frame = render(ego[None], point["obstacles"][None])[0]
    return sample, frame


def write_plan_split(split: str, out_dir: str | Path, n: int, seed: int = 0, format: str = "jsonl") -> Path:
    """Write `n` planning samples to ``out_dir/{split}.jsonl`` and their frames to ``out_dir/images/``
    (``format="parquet"``: ``{split}.parquet``, frames embedded)."""
    points = decision_points(split, n, seed)
    return write_samples(
        out_dir, split, n, lambda index: plan_sample(points[index], split, index, seed), lambda frame, path: Image.fromarray(frame).save(path), format
    )
