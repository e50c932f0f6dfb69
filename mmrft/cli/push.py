"""``mmrft push CHECKPOINT REPO_ID``: publish a checkpoint with its model card to the Hugging Face hub."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "push",
        help="upload a checkpoint (weights, processor, model card) to the Hugging Face hub",
        description="Upload a checkpoint folder to a hub model repository (created if missing) in one commit. "
        "Authentication, endpoint and offline mode follow huggingface_hub: `hf auth login` or HF_TOKEN, "
        "HF_ENDPOINT, HF_HUB_OFFLINE.",
    )
    parser.add_argument("checkpoint", help="a checkpoint folder: runs/<run>/checkpoints/step-NNNNNN")
    parser.add_argument("repo_id", help="hub repository, e.g. your-name/qwen2.5-vl-3b-grounding-grpo")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", help="branch to commit to (created if missing; default: main)")
    parser.add_argument("--commit-message", help="default: 'mmrft checkpoint step-NNNNNN'")
    parser.add_argument(
        "--include-trainer-state", action="store_true",
        help="also upload trainer_state.pt (optimizer state, about twice the weights; only useful to resume elsewhere)",
    )
    parser.add_argument("--dry-run", action="store_true", help="check the checkpoint and list what would be uploaded; contact nothing")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    from mmrft.training.publish import card_text, check_publishable, files_to_push, push_checkpoint

    if args.dry_run:
        checkpoint = Path(args.checkpoint)
        check_publishable(checkpoint)
        card_text(checkpoint, args.repo_id)  # a checkpoint saved without a card gets one now
        files = files_to_push(checkpoint, args.include_trainer_state)
        for name in files:
            print(f"{(checkpoint / name).stat().st_size:>14,}  {name}")
        print(f"dry run: would upload {len(files)} files to {args.repo_id}")
        return 0
    try:
        info = push_checkpoint(
            args.checkpoint, args.repo_id, private=args.private, revision=args.revision,
            commit_message=args.commit_message, include_trainer_state=args.include_trainer_state,
        )
    except (ConnectionError, httpx2.TransportError, HfHubHTTPError) as err:  # offline, no token, no permission: one line
        print(f"mmrft push: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"pushed {args.checkpoint} to {info.commit_url}")
    return 0
