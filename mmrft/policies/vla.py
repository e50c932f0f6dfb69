"""A vision-language-action policy: a Qwen-VL model that writes its action chunk as action tokens.

OpenVLA's recipe at mmrft's scale: every normalised action dimension in [-1, 1] is cut into
`BINS` uniform bins, each bin a token `<|act_i|>` added to the tokenizer (embeddings resized). The
prompt holds the frame rendered from the current state (at `MODEL_PIXELS`, as the planner's),
the episode's instruction and the ego's speed, offset to the instructed lane and heading; the model
writes 2H tokens, (acceleration, steering) for each of the H steps of the chunk, and each token
decodes to its bin's centre.

Sampling and scoring are restricted to the action tokens (the softmax over those tokens only), in
generation and in the training forward alike (`QwenVLPolicy.sample` / `token_logprobs` with
``allowed_ids``), so log-probs agree between the two. Log-prob grain: the action token (2H per
decision).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from mmrft.envs.driving import prompt_text
from mmrft.envs.render import SIZE, frame_item, render
from mmrft.policies.loading import load_model_and_processor
from mmrft.policies.qwen_vl import QwenVLPolicy

BINS = 21
"""Bins per action dimension; bin centres are linspace(-1, 1, BINS), so 0 is one of them."""
ACTION_TOKENS = tuple(f"<|act_{i}|>" for i in range(BINS))


def to_bins(actions: np.ndarray) -> np.ndarray:
    """Nearest bin index of each normalised action value."""
    return np.rint((np.clip(actions, -1, 1) + 1) / 2 * (BINS - 1)).astype(np.int64)


class QwenActionPolicy(nn.Module):
    """What the Qwen-VL action policies share: a checkpoint's model and processor (with
    ``extra_tokens`` added), the prompt of each state (the frame rendered from it, then the
    subclass's `content`), and saving and loading in Hugging Face layout. ``temperature`` is the
    sampling temperature of rollouts (greedy ignores it) and of the log-probs that score them."""

    def __init__(self, model_path: str, chunk: int, extra_tokens: tuple[str, ...] = (), temperature: float = 1.0):
        super().__init__()
        model, processor = load_model_and_processor(model_path)
        tokenizer = processor.tokenizer
        missing = [t for t in extra_tokens if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_tokens(missing, special_tokens=True)
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        self.model, self.chunk, self.temperature = model, chunk, temperature
        self.qwen = QwenVLPolicy(model, processor, coord_convention="input_pixels")

    def content(self, image: Image.Image, ego: np.ndarray, lane: float) -> list[dict]:
        """The user turn for one state."""
        raise NotImplementedError

    def prompts(self, obs: dict):
        frames = obs["image"] if "image" in obs else render(obs["ego"], obs["obstacles"])
        samples = [
            {
                "id": str(i),
                "image_size": [SIZE, SIZE],
                "messages": [{"role": "user", "content": self.content(Image.fromarray(frames[i]), obs["ego"][i], float(obs["lane"][i, 0]))}],
            }
            for i in range(len(frames))
        ]
        return self.qwen.prompts(samples)

    def save_pretrained(self, directory, **_) -> None:
        self.model.save_pretrained(directory, safe_serialization=True)
        self.qwen.processor.save_pretrained(directory)

    def load_weights(self, directory: Path) -> None:
        self.model.load_state_dict(type(self.model).from_pretrained(directory).state_dict())


class TokenActionPolicy(QwenActionPolicy):
    """See the module docstring. ``model_path``: a Qwen-VL checkpoint (the shipped tiny base, a BC run's)."""

    def __init__(self, model_path: str, chunk: int, temperature: float = 1.0):
        super().__init__(model_path, chunk, ACTION_TOKENS, temperature)
        self.action_ids = torch.tensor(self.qwen.processor.tokenizer.convert_tokens_to_ids(list(ACTION_TOKENS)))
        self.centres = torch.linspace(-1.0, 1.0, BINS, dtype=torch.float64)

    def content(self, image: Image.Image, ego: np.ndarray, lane: float) -> list[dict]:
        """The frame and the shared prompt, plus the ego's heading (rad): this policy writes controls,
        and the expert's steering is mostly its heading error, which the frame cannot show (0.05 rad
        turns the ego box by a quarter of a pixel). The planner writes positions instead, and its
        controller reads the heading from the state."""
        return [frame_item(image), {"type": "text", "text": f"{prompt_text(ego, lane)} yaw {ego[2]:+.2f}"}]

    def token_ids(self, actions: np.ndarray) -> torch.Tensor:
        """Action chunks [N, H, 2] as their 2H action tokens per row (the BC targets)."""
        return self.action_ids[torch.as_tensor(to_bins(actions)).flatten(1)]

    @torch.no_grad()
    def act(self, obs: dict, generator: torch.Generator | None = None, greedy: bool = False) -> dict:
        batch = self.prompts(obs)
        rollout = self.qwen.sample(
            batch, 1, max_new_tokens=2 * self.chunk, temperature=0.0 if greedy else self.temperature, generator=generator, allowed_ids=self.action_ids
        )
        bins = torch.searchsorted(self.action_ids, rollout.completion_ids)  # action ids are consecutive and sorted
        actions = self.centres[bins].reshape(-1, self.chunk, 2).numpy()
        return {"actions": actions, "logprobs": rollout.logprobs, "record": (batch, rollout.completion_ids)}

    def decision_logprobs(self, records: list) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs [M, 2H] of the recorded decisions' action tokens (teacher-forced), the records'
        rows one after another, and the mean token entropy."""
        logprobs, entropies = [], []
        for batch, ids in records:
            lp, entropy = self.qwen.token_logprobs(
                batch, torch.arange(len(ids)), ids, torch.ones_like(ids), temperature=self.temperature, allowed_ids=self.action_ids
            )
            logprobs.append(lp)
            entropies.append(entropy)
        return torch.cat(logprobs), torch.cat(entropies).mean()

    def imitation_logprobs(self, obs: dict, actions: np.ndarray, offsets: np.ndarray) -> torch.Tensor:
        """Log-probs [N, 2H] of the expert's action chunks, binned to action tokens (teacher forcing)."""
        return self.decision_logprobs([(self.prompts(obs), self.token_ids(actions))])[0]
