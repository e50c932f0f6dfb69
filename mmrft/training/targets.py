"""Supervised targets: the assistant answer a sample's solution renders to, in the model's convention."""

from __future__ import annotations

import torch

from mmrft.registry import Registry
from mmrft.rewards.coords import format_box, from_original
from mmrft.rewards.trajectory import format_waypoints

TARGET_RENDERERS = Registry("target renderer")


@TARGET_RENDERERS.register("grounding")
def _box_target(solution, convention: str, image_size, input_size) -> str:
    return f"<answer>{format_box(from_original(solution, convention, image_size, input_size))}</answer>"


@TARGET_RENDERERS.register("temporal_grounding")
def _interval_target(solution, convention: str, image_size, input_size) -> str:
    start, end = solution
    return f"<answer>[{start:g}, {end:g}]</answer>"


@TARGET_RENDERERS.register("tracking")
def _track_target(solution, convention: str, image_size, input_size) -> str:
    boxes = ["null" if b is None else format_box(from_original(b, convention, image_size, input_size)) for b in solution]
    return f"<answer>[{', '.join(boxes)}]</answer>"


@TARGET_RENDERERS.register("driving_plan")
def _waypoints_target(solution, convention: str, image_size, input_size) -> str:
    return f"<answer>{format_waypoints(solution)}</answer>"


@TARGET_RENDERERS.register("classification")
@TARGET_RENDERERS.register("counting")
@TARGET_RENDERERS.register("video_qa")
def _plain_target(solution, convention: str, image_size, input_size) -> str:
    label = solution[0] if isinstance(solution, list) else solution
    return f"<answer>{label}</answer>"


def target_text(sample: dict, convention: str, image_size, input_size) -> str:
    """The sample's own assistant turn if it has one, else its solution rendered for its task."""
    for message in sample["messages"]:
        if message["role"] == "assistant":
            content = message["content"]
            return content if isinstance(content, str) else "".join(i.get("text", "") for i in content)
    render = TARGET_RENDERERS.get(sample["task"])
    return render(sample["solution"], convention, image_size, input_size)


def target_ids(policy, samples: list[dict], batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids of each sample's target (answer + end-of-turn token) and their mask."""
    tokenizer = policy.processor.tokenizer
    texts = [
        target_text(s, policy.coord_convention, batch.image_sizes[i], batch.input_sizes[i]) + "<|im_end|>"
        for i, s in enumerate(samples)
    ]
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    length = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), length), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), length), dtype=torch.long)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = 1
    return ids, mask
