"""The VLM waypoint planner in closed loop: a Qwen-VL model that writes its next positions as text.

It learns like any VLM task, through the shared trainer (SFT, then GRPO scored by the `trajectory`
verifier), on `driving_plan` samples (:mod:`mmrft.data.synthetic.driving_plans`). Here it drives:
at every decision it reads the frame rendered from the state and the same prompt as in training,
writes ``[(x1, y1), ...]`` (metres from the ego) greedily or sampled, and `controls_for_waypoints`
turns the waypoints into the action chunk. An answer that does not parse or has the wrong number
of waypoints is flagged (``invalid`` in the step's output; the closed-loop rollout counts those of
live episodes) and replaced by holding the current speed and heading for the chunk. Log-prob grain:
the text token (the model's full softmax), so it also trains closed loop in the world model
(``policy.kind: planner`` in the `action_grpo` stage), each decision's answer masked past its end.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mmrft.data.synthetic.driving_plans import plan_content
from mmrft.envs import driving as world
from mmrft.policies.action import controls_for_waypoints
from mmrft.policies.vla import QwenActionPolicy
from mmrft.rewards.trajectory import waypoints_from

MAX_NEW_TOKENS = 96
"""Five `(x, y)` pairs with one decimal and the answer tags take 64-69 tokens of the tiny tokenizer
(the expert's plans), so 96 leaves room for a longer answer to be read, not cut off."""


class WaypointPlannerPolicy(QwenActionPolicy):
    """See the module docstring. ``model_path``: a Qwen-VL checkpoint trained on `driving_plan`."""

    def content(self, image: Image.Image, ego: np.ndarray, lane: float) -> list[dict]:
        return plan_content(image, ego, lane, self.chunk)

    def waypoints(self, texts: list[str], ego: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Absolute waypoints [N, H, 2] from the answers, and which answers were not a plan [N]
        (those hold speed and heading)."""
        steps = np.arange(1, self.chunk + 1)[None, :, None] * world.DT
        heading = np.stack([np.cos(ego[:, 2]), np.sin(ego[:, 2])], axis=-1)
        offsets = ego[:, 3, None, None] * steps * heading[:, None]
        invalid = np.zeros(len(texts), dtype=bool)
        for i, text in enumerate(texts):
            points = waypoints_from(text)
            if points is None or points.shape != (self.chunk, 2):
                invalid[i] = True
            else:
                offsets[i] = points
        return ego[:, None, :2] + offsets, invalid

    @torch.no_grad()
    def act(self, obs: dict, generator: torch.Generator | None = None, greedy: bool = False) -> dict:
        """The action chunk through the written waypoints; log-probs and the token mask [N, MAX_NEW_TOKENS]
        (padded, so decisions stack), which answers were not a plan [N], and the record the GRPO
        stage rescores."""
        batch = self.prompts(obs)
        rollout = self.qwen.sample(batch, 1, max_new_tokens=MAX_NEW_TOKENS, temperature=0.0 if greedy else self.temperature, generator=generator)
        waypoints, invalid = self.waypoints(rollout.texts, obs["ego"])
        actions = controls_for_waypoints(obs["ego"], waypoints)
        pad = MAX_NEW_TOKENS - rollout.completion_ids.shape[1]
        ids = F.pad(rollout.completion_ids, (0, pad), value=self.qwen.pad_id)
        mask = F.pad(rollout.completion_mask, (0, pad))
        record = (batch, ids, mask)
        return {"actions": actions, "logprobs": F.pad(rollout.logprobs, (0, pad)), "mask": mask, "invalid": invalid, "record": record}

    def decision_logprobs(self, records: list) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs [M, MAX_NEW_TOKENS] of the recorded answers (teacher-forced; 0 past an answer's
        end), the records' rows one after another, and the mean entropy over answer tokens."""
        logprobs, entropy_sum, count = [], 0.0, 0
        for batch, ids, mask in records:
            lp, entropy = self.qwen.token_logprobs(batch, torch.arange(len(ids)), ids, mask, temperature=self.temperature)
            logprobs.append(lp * mask)
            entropy_sum = entropy_sum + (entropy * mask).sum()
            count += int(mask.sum())
        return torch.cat(logprobs), entropy_sum / max(count, 1)

