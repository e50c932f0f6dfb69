"""Deepen a Qwen-VL checkpoint's language model without changing what it computes.

    python tools/deepen_lm.py models/tiny-qwen2_5_vl-video-base /tmp/video-base-x2 --factor 2

Each decoder layer is followed by factor - 1 copies of itself whose output projections
(``self_attn.o_proj``, ``mlp.down_proj``) are zero, so every copy adds nothing to the residual
stream until training moves those projections: the deeper model's logits equal the original's.
The vision tower, embeddings and processor files are copied as they are. Used in docs/video.md
to ask whether more language-model layers let GRPO learn which shape was asked.
"""

import argparse
import copy

import torch

from mmrft.policies.loading import load_model_and_processor

LAYERS = ".language_model.layers."
ZEROED = ("self_attn.o_proj.", "mlp.down_proj.")


def deepen(model, factor: int):
    """A new model of ``model``'s class whose language model has ``factor`` times the layers."""
    config = copy.deepcopy(model.config)
    text = config.text_config
    text.layer_types = [kind for kind in text.layer_types for _ in range(factor)]
    text.num_hidden_layers *= factor
    weights = {}
    for key, value in model.state_dict().items():
        if LAYERS not in key:
            weights[key] = value
            continue
        prefix, rest = key.split(LAYERS)
        index, leaf = rest.split(".", 1)
        for copy_index in range(factor):
            zero = copy_index > 0 and leaf.startswith(ZEROED)
            weights[f"{prefix}{LAYERS}{int(index) * factor + copy_index}.{leaf}"] = torch.zeros_like(value) if zero else value
    deeper = type(model)(config)
    deeper.load_state_dict(weights, strict=True)
    deeper.generation_config = copy.deepcopy(model.generation_config)
    return deeper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--factor", type=int, default=2)
    args = parser.parse_args()
    model, processor = load_model_and_processor(args.source)
    deepen(model, args.factor).save_pretrained(args.out)
    processor.save_pretrained(args.out)  # the chat template with it
    print(f"{args.out}: {model.config.text_config.num_hidden_layers} -> {args.factor * model.config.text_config.num_hidden_layers} layers")


if __name__ == "__main__":
    main()
