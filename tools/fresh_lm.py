"""Put a new, randomly initialised language model of a given width on a checkpoint's vision tower.

    python tools/fresh_lm.py models/tiny-qwen2_5_vl-base /tmp/wide-256 --hidden 256

The vision tower and the merger are copied from the source (all but the merger's last layer,
whose output width is the language model's); the language model, with ``--hidden`` width,
``--layers`` layers and an MLP 3x as wide, starts from random weights. The tokenizer and
processor are the source's. Used in docs/video.md to ask whether a wider language model,
trained from the start, learns which shape a video question asks about.
"""

import argparse

import torch
import transformers

from mmrft.policies.loading import load_model_and_processor
from mmrft.policies.tiny import ARCHS, TinySize, tiny_model_config


def fresh_language_model(model, tokenizer, hidden: int, layers: int, seed: int = 0):
    """A new model of ``model``'s architecture whose vision weights are ``model``'s where their shapes allow."""
    torch.manual_seed(seed)
    arch = model.config.model_type
    vision = model.config.vision_config
    size = TinySize(hidden=hidden, layers=layers, intermediate=3 * hidden, vision_hidden=vision.hidden_size,
                    vision_layers=vision.depth, vision_heads=vision.num_heads)
    fresh = getattr(transformers, ARCHS[arch].model_cls)(tiny_model_config(arch, size, tokenizer))
    weights = fresh.state_dict()
    for key, value in model.state_dict().items():
        if ".visual." in key and weights[key].shape == value.shape:
            weights[key] = value
    fresh.load_state_dict(weights)
    fresh.generation_config = model.generation_config
    return fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model, processor = load_model_and_processor(args.source)
    fresh = fresh_language_model(model, processor.tokenizer, args.hidden, args.layers, args.seed)
    fresh.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    print(f"{args.out}: language model {args.layers} x {args.hidden} on {args.source}'s vision tower")


if __name__ == "__main__":
    main()
