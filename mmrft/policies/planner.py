"""The VLM waypoint planner in closed loop: a Qwen-VL model that writes its next positions as text.

It learns like any VLM task, through the shared trainer (SFT, then GRPO scored by the `trajectory`
verifier), on `driving_plan` samples (:mod:`mmrft.data.synthetic.driving_plans`). Here it drives:
at every decision it reads the frame rendered from the state and the same prompt as in training,
writes ``[(x1, y1), ...]`` (metres from the ego) greedily or sampled, and `controls_for_waypoints`
turns the waypoints into the action chunk. An answer that does not parse or has the wrong number
of waypoints is counted (``unparseable``, over every environment in the batch, finished episodes
included) and replaced by holding the current speed and heading for the chunk. Log-prob grain:
the text token.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from mmrft.data.synthetic.driving_plans import plan_content
from mmrft.envs import driving as world
from mmrft.envs.render import SIZE, render
from mmrft.policies.action import controls_for_waypoints
from mmrft.policies.loading import load_model_and_processor
from mmrft.policies.qwen_vl import QwenVLPolicy
from mmrft.rewards.trajectory import waypoints_from

MAX_NEW_TOKENS = 96
"""Five `(x, y)` pairs with one decimal and the answer tags take 64-69 tokens of the tiny tokenizer
(the expert's plans), so 96 leaves room for a longer answer to be read, not cut off."""


class WaypointPlannerPolicy:
    """See the module docstring. ``model_path``: a Qwen-VL checkpoint trained on `driving_plan`."""

    def __init__(self, model_path: str, chunk: int):
        model, processor = load_model_and_processor(model_path)
        model.eval()
        self.qwen = QwenVLPolicy(model, processor, coord_convention="input_pixels")
        self.chunk = chunk
        self.unparseable = 0

    def prompts(self, obs: dict):
        frames = obs["image"] if "image" in obs else render(obs["ego"], obs["obstacles"])
        samples = [
            {
                "id": str(i),
                "image_size": [SIZE, SIZE],
                "messages": [
                    {"role": "user", "content": plan_content(Image.fromarray(frames[i]), obs["ego"][i], float(obs["lane"][i, 0]), self.chunk)}
                ],
            }
            for i in range(len(frames))
        ]  # fmt: skip
        return self.qwen.prompts(samples)

    def waypoints(self, texts: list[str], ego: np.ndarray) -> np.ndarray:
        """Absolute waypoints [N, H, 2] from the answers; a bad answer holds speed and heading."""
        steps = np.arange(1, self.chunk + 1)[None, :, None] * world.DT
        heading = np.stack([np.cos(ego[:, 2]), np.sin(ego[:, 2])], axis=-1)
        offsets = ego[:, 3, None, None] * steps * heading[:, None]
        for i, text in enumerate(texts):
            points = waypoints_from(text)
            if points is None or points.shape != (self.chunk, 2):
                self.unparseable += 1
            else:
                offsets[i] = points
        return ego[:, None, :2] + offsets

    @torch.no_grad()
    def act(self, obs: dict, generator: torch.Generator | None = None, greedy: bool = False) -> dict:
        rollout = self.qwen.sample(
            self.prompts(obs), 1, max_new_tokens=MAX_NEW_TOKENS, temperature=0.0 if greedy else 1.0, generator=generator
        )
        actions = controls_for_waypoints(obs["ego"], self.waypoints(rollout.texts, obs["ego"]))
        return {"actions": actions, "logprobs": rollout.logprobs, "record": rollout.texts}
