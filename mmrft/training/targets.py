"""Supervised targets: the assistant answer a sample's solution renders to, in the model's convention."""

from __future__ import annotations

from mmrft.registry import Registry
from mmrft.rewards.coords import format_box, from_original

TARGET_RENDERERS = Registry("target renderer")


@TARGET_RENDERERS.register("grounding")
def _box_target(solution, convention: str, image_size, input_size) -> str:
    return f"<answer>{format_box(from_original(solution, convention, image_size, input_size))}</answer>"


@TARGET_RENDERERS.register("classification")
@TARGET_RENDERERS.register("counting")
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
