"""Checkpoints carry a Hugging Face model card; `mmrft push` uploads them through huggingface_hub,
tested against a file-based stand-in for the hub behind the hub client's own HTTP client hook."""

from __future__ import annotations

import base64
import json
import re
import shutil

import httpx2
import pytest
import yaml
from huggingface_hub import ModelCard

from mmrft.cli import main
from mmrft.training import GRPOTrainer
from mmrft.training.checkpoint import MARKER, latest_valid_checkpoint, verify_checkpoint
from mmrft.training.model_card import render_model_card
from mmrft.training.publish import files_to_push, push_checkpoint

CHECKPOINT_FILES = {"config.json", "model.safetensors", "generation_config.json", "processor_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_train_config):
    """3 GRPO steps, held-out eval every 2 steps and before/after, checkpoints at steps 2 and 3."""
    out = tmp_path_factory.mktemp("card") / "grounding-grpo"
    config = make_train_config(out, max_steps=3, save_every=2, eval_every=2, eval_samples=2, eval_before_after=True)
    GRPOTrainer(config).train()
    return out


def card_table(text: str, heading: str) -> dict[str, list[str]]:
    """The rows of the Markdown table under ``## heading``: first cell (backticks stripped) -> the others."""
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| `")]
    return {cells[0].strip().strip("`"): [c.strip() for c in cells[1:]] for cells in rows}


def test_every_checkpoint_has_a_hub_model_card_outside_its_hashes(run):
    metrics = {row["step"]: row for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}
    for step, eval_tag in ((2, "step-000002"), (3, "final")):
        checkpoint = run / "checkpoints" / f"step-{step:06d}"
        card = ModelCard.load(checkpoint / "README.md")
        assert card.data.library_name == "transformers" and card.data.pipeline_tag == "image-text-to-text"
        assert {"mmrft", "grpo", "reinforcement-learning"} <= set(card.data.tags)
        assert card.data.base_model is None  # a local tiny model: not claimed as a hub model
        assert "(a local model, not on the hub)" in card.text

        # the held-out eval of these weights, in the hub's model-index and beside the starting model's
        heldout = json.loads((run / "eval" / eval_tag / "heldout" / "eval.json").read_text())
        start = json.loads((run / "eval" / "start" / "heldout" / "eval.json").read_text())
        assert heldout["metrics"] and heldout["metrics"] != {}
        assert {r.metric_type: r.metric_value for r in card.data.eval_results} == pytest.approx(heldout["metrics"])
        assert all(r.dataset_split == "heldout" for r in card.data.eval_results)
        table = card_table(card.text, "Held-out evaluation")
        assert set(table) == set(heldout["metrics"])
        for name, (before, here) in table.items():
            assert float(before) == pytest.approx(start["metrics"][name], rel=1e-3, abs=1e-4)
            assert float(here) == pytest.approx(heldout["metrics"][name], rel=1e-3, abs=1e-4)

        # the training metrics of that step
        logged = card_table(card.text, f"Training metrics at step {step}")
        numeric = {k: v for k, v in metrics[step].items() if k != "step"}
        assert set(logged) == set(numeric)
        for key, value in numeric.items():
            assert logged[key][0] == "–" if value is None else float(logged[key][0]) == pytest.approx(value, rel=1e-3, abs=1e-12)

        rewards = card_table(card.text, "Reward functions")
        assert set(rewards) == {"box_iou", "format_nothink"}
        assert rewards["box_iou"][:2] == ["1", "yes"] and "IoU" in rewards["box_iou"][2]
        config_yaml = card.text.split("## Training config", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
        assert yaml.safe_load(config_yaml) == yaml.safe_load((run / "config.yaml").read_text())

        # the card is in the folder but outside the SHA-256 scheme: editing it corrupts nothing
        hashed = json.loads((checkpoint / MARKER).read_text())["files"]
        assert "README.md" not in hashed and "model.safetensors" in hashed
        assert verify_checkpoint(checkpoint) is None
    (run / "checkpoints" / "step-000003" / "README.md").write_text((run / "checkpoints" / "step-000003" / "README.md").read_text() + "\nEdited.\n")
    assert latest_valid_checkpoint(run / "checkpoints") == run / "checkpoints" / "step-000003"


def test_card_names_the_hub_base_model_and_datasets(tmp_path):
    config = {"stage": "grpo", "model": {"name_or_path": "Qwen/Qwen2.5-VL-3B-Instruct"}, "data": {"train": "hf:lmms-lab/RefCOCO:val"},
              "rewards": [{"name": "box_iou"}], "output_dir": "runs/refcoco"}
    card = ModelCard(render_model_card(config, step=10))
    assert card.data.base_model == "Qwen/Qwen2.5-VL-3B-Instruct" and card.data.datasets == ["lmms-lab/RefCOCO"]
    assert card.data.eval_results is None and "## Held-out evaluation" not in card.text

    # a policy that is a local checkpoint of an earlier run inherits that run's hub base model
    earlier = tmp_path / "earlier" / "checkpoints" / "step-000100"
    earlier.mkdir(parents=True)
    (earlier / "README.md").write_text(render_model_card(config, step=100))
    card = ModelCard(render_model_card({**config, "model": {"name_or_path": str(earlier)}, "stage": "sft"}, step=5))
    assert card.data.base_model == "Qwen/Qwen2.5-VL-3B-Instruct" and "sft" in card.data.tags
    assert "## Reward functions" not in card.text  # an SFT stage has none


class LocalHub:
    """A file-based stand-in for the hub's upload endpoints: repos are folders under ``root``.

    It answers the requests huggingface_hub's HfApi sends to create a repo, validate a card's
    YAML, ask the upload mode of each file (regular: contents inline) and commit.
    """

    def __init__(self, root):
        self.root = root
        self.requests: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.requests.append(f"{request.method} {path}")
        if path == "/api/repos/create":
            body = json.loads(request.content)
            repo = f"{body['organization']}/{body['name']}"
            (self.root / repo).mkdir(parents=True, exist_ok=True)
            return httpx2.Response(200, json={"url": f"https://huggingface.co/{repo}", "name": repo})
        if path == "/api/validate-yaml":
            ModelCard(json.loads(request.content)["content"])  # parses the front matter or raises
            return httpx2.Response(200, json={})
        if match := re.fullmatch(r"/api/models/(.+)/preupload/(.+)", path):
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        if match := re.fullmatch(r"/api/models/(.+)/commit/(.+)", path):
            repo = self.root / match.group(1)
            if not repo.is_dir():
                return httpx2.Response(404, json={"error": "Repository not found"})
            for item in map(json.loads, request.content.splitlines()):
                if item["key"] == "file":
                    target = repo / item["value"]["path"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(base64.b64decode(item["value"]["content"]))
            return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/{match.group(1)}/commit/{'0' * 40}", "commitOid": "0" * 40})
        return httpx2.Response(404, json={"error": f"the stand-in hub does not serve {path}"})


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    from huggingface_hub import constants, set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    hub = LocalHub(tmp_path / "hub")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the transport below never opens a socket
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub)))
    yield hub
    set_client_factory(default_client_factory)


def test_push_uploads_the_model_and_its_card_through_the_hub_client(run, local_hub):
    from huggingface_hub import HfApi
    from transformers import AutoModelForImageTextToText

    checkpoint = run / "checkpoints" / "step-000002"
    info = push_checkpoint(checkpoint, "someone/grounding-grpo", api=HfApi(token="hf_stand_in"))
    assert info.oid == "0" * 40
    assert [r for r in local_hub.requests if r.startswith("POST")] == [  # (the client also GETs a registry of its own)
        "POST /api/repos/create", "POST /api/validate-yaml", "POST /api/models/someone/grounding-grpo/preupload/main",
        "POST /api/models/someone/grounding-grpo/commit/main",
    ]
    repo = local_hub.root / "someone" / "grounding-grpo"
    uploaded = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    assert uploaded == files_to_push(checkpoint)
    assert CHECKPOINT_FILES | {"README.md"} <= set(uploaded)
    assert not {"trainer_state.pt", MARKER} & set(uploaded)
    for name in uploaded:
        if name != "README.md":
            assert (repo / name).read_bytes() == (checkpoint / name).read_bytes(), name
    card = ModelCard.load(repo / "README.md")
    assert 'from_pretrained("someone/grounding-grpo")' in card.text and "REPO_ID" not in card.text
    assert "REPO_ID" in (checkpoint / "README.md").read_text()  # the local card stays general
    pushed, local = (AutoModelForImageTextToText.from_pretrained(p).state_dict() for p in (repo, checkpoint))
    assert pushed.keys() == local.keys() and all((pushed[k] == local[k]).all() for k in local)


def test_push_cli_reports_offline_mode_in_one_line(run, capsys):
    """Under HF_HUB_OFFLINE (set for every test) the hub client refuses the first request; the command says so."""
    assert main(["push", str(run / "checkpoints" / "step-000002"), "someone/grounding-grpo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmrft push: error: Cannot reach https://huggingface.co/api/repos/create: offline mode is enabled")
    assert len(err.splitlines()) == 1


def test_push_dry_run_lists_the_files_and_refuses_a_corrupt_checkpoint(run, tmp_path, capsys):
    copy = tmp_path / "grounding-grpo"
    shutil.copytree(run, copy)
    checkpoint = copy / "checkpoints" / "step-000002"
    (checkpoint / "README.md").unlink()  # saved before cards existed: the run directory has what it takes
    assert main(["push", str(checkpoint), "someone/grounding-grpo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[-1] for line in out.splitlines()[:-1]]
    assert listed == files_to_push(checkpoint) and "README.md" in listed and "trainer_state.pt" not in listed
    assert out.splitlines()[-1] == f"dry run: would upload {len(listed)} files to someone/grounding-grpo"
    assert ModelCard.load(checkpoint / "README.md").data.eval_results  # regenerated with the step-2 eval
    assert "trainer_state.pt" in files_to_push(checkpoint, include_trainer_state=True)

    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    assert main(["push", str(checkpoint), "someone/grounding-grpo", "--dry-run"]) == 2
    assert "corrupt (model.safetensors does not match its recorded SHA-256)" in capsys.readouterr().err
