"""The typed config of ``mmrft train``: every field documented, defaults from the papers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mmrft.config.loader import ConfigError
from mmrft.config.paths import resolve_data_path


@dataclass
class ModelConfig:
    name_or_path: str = "tiny:qwen2_5_vl"
    """A local directory in Hugging Face layout, a hub id (e.g. Qwen/Qwen2.5-VL-3B-Instruct; needs
    hub access or the local HF cache), or ``tiny:<arch>`` (qwen2_vl, qwen2_5_vl, qwen3_vl) to build
    a tiny random model locally and cache it."""
    coord_convention: str | None = None
    """How the model writes boxes: norm1000, input_pixels, pixels or unit. None takes the
    architecture's own (Qwen2-VL and Qwen3-VL: norm1000; Qwen2.5-VL: input_pixels)."""
    image_min_pixels: int | None = None
    """Lower pixel budget per image (overrides the processor's); None keeps the processor's."""
    image_max_pixels: int | None = None
    """Upper pixel budget per image (overrides the processor's); None keeps the processor's."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights' dtype. Weights that train stay float32 (the master copy AdamW updates): bfloat16 /
    float16 are for LoRA's frozen base (adapters train in float32); with full fine-tuning they are
    refused, since AdamW's updates (about lr per step) round away in an 8-bit mantissa."""
    autocast: Literal["bfloat16", "float16"] | None = None
    """Mixed precision: the policy's forwards (sampling and training) run under torch.autocast in
    this dtype while weights, gradients and optimizer state stay in ``dtype`` (use float32 with
    bfloat16 here on GPUs); the frozen reference model (beta > 0) is loaded in this dtype.
    Log-probs are taken from float32 logits either way. None: off."""
    freeze_vision: bool = False
    """Keep the vision encoder's weights fixed (patch embedding and blocks; not the projector)."""
    freeze_projector: bool = False
    """Keep the vision-to-language projector (merger, and Qwen3-VL's deepstack mergers) fixed."""
    freeze_language: bool = False
    """Keep the language model and its output head fixed."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass instead of storing them (less memory, more time)."""
    lora_rank: int = 0
    """LoRA (through PEFT) rank; 0 trains full weights. With LoRA only the adapters train: the base
    weights, vision tower included, stay fixed."""
    lora_alpha: float = 16.0
    """LoRA scaling numerator (the update is scaled by alpha / rank)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA branch's input."""
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """Linear layers that get adapters (by name), in the language model only unless lora_vision."""
    lora_vision: bool = False
    """Also put adapters on matching layers of the vision tower (off by default, as in most VLM recipes)."""


@dataclass
class VideoConfig:
    """How videos are decoded and sampled (qwen-vl-utils semantics); a video item's own keys
    (fps, nframes, video_start, video_end, min_pixels, max_pixels) override these per sample."""

    reader: Literal["decord", "torchcodec", "pyav"] = "decord"
    """Video reader. decord by default; torchcodec (needs system FFmpeg) and pyav as fallbacks."""
    fps: float | None = 2.0
    """Frames sampled per second of video (qwen-vl-utils' default 2); ignored when nframes is set."""
    nframes: int | None = None
    """A fixed number of frames per video (rounded to an even number) instead of fps."""
    min_pixels: int = 16 * 28 * 28
    """Lower pixel budget per frame."""
    max_pixels: int = 64 * 28 * 28
    """Upper pixel budget per frame (qwen-vl-utils' default is far larger: set it for your memory)."""
    max_tokens: int | None = None
    """Vision tokens allowed per video (frames / 2 x tokens per frame), checked before decoding."""
    on_over_budget: Literal["reject", "downsample"] = "reject"
    """A video over max_tokens: reject (the sample fails with the computed number) or take fewer frames."""


@dataclass
class DataConfig:
    train: str = ""
    """Training data: an mmrft JSONL (sample schema of DESIGN.md §2; media paths relative to the
    file), a Hugging Face dataset as a parquet / arrow / JSON(L) file or folder or a
    ``save_to_disk`` folder, or a hub id ``hf:org/name:split``; read in place, never whole into memory."""
    heldout: str | None = None
    """Held-out data evaluated before and after training (and every eval_every steps); as ``train``."""
    columns: dict | None = None
    """How rows of a dataset not in mmrft's layout become samples: ``preset`` (trl, easyr1, vlm_r1,
    mmrft; unset: the one the columns fit), ``task`` (for rows without a task column) and role ->
    column renames (prompt, problem, conversations, messages, images, videos, solution, id, task).
    See ``mmrft data inspect`` and mmrft/data/columns.py."""
    synthetic: dict | None = None
    """If set and ``train`` does not exist yet, generate it: keys of mmrft.data.synthetic
    (task, train, heldout, seed, image_size; video tasks also train_shapes, train_start,
    question_first; temporal grounding train_max_overlap; format: parquet for ``{split}.parquet``
    files with the images embedded), written next to ``train``."""
    on_bad_sample: Literal["skip", "raise"] = "skip"
    """A sample whose media or solution is broken is skipped and counted (data/skipped), or raises."""
    shuffle: bool = True
    """Visit the training set in a seeded random order, reshuffled every epoch."""
    curriculum: dict | None = None
    """Draw batches by difficulty instead of in shuffled epochs. ``name``: adarft (target
    difficulty follows the reward; options eta, alpha, beta, target) or staged (options
    max_difficulty: [...], until: [steps]); ``difficulty_key``: dotted path of each sample's
    difficulty (default meta.difficulty); ``reward_key``: the metric AdaRFT follows (default
    reward/mean). See docs/algorithms.md."""
    root: str | None = None
    """Directory that relative ``train`` and ``heldout`` paths resolve against (synthetic data is
    generated there). Unset: synthetic data (``synthetic`` set) lives under the cache root,
    ``$MMRFT_CACHE`` (default ~/.cache/mmrft), so ``data/shapes_grounding/train.jsonl`` is
    ``~/.cache/mmrft/data/shapes_grounding/train.jsonl``; your own files are read relative to the
    current directory. ``root: .`` generates in the current directory."""

    def __post_init__(self) -> None:
        generated = self.synthetic is not None
        self.train = resolve_data_path(self.train, self.root, generated)
        if self.heldout:
            self.heldout = resolve_data_path(self.heldout, self.root, generated)


@dataclass
class GenerationConfig:
    num_generations: int = 8
    """G: completions sampled per prompt (one group)."""
    max_new_tokens: int = 32
    """Longest completion; longer ones are truncated."""
    temperature: float = 1.0
    """Sampling temperature (also divides the logits in the training forward, as in TRL)."""
    top_p: float = 1.0
    """Nucleus sampling threshold."""
    backend: Literal["hf", "vllm"] = "hf"
    """hf: mmrft's own sampler (shared prefill, any device). vllm: a vLLM engine colocated in the
    training process (extra ``mmrft[vllm]``, a GPU), weights pushed after each update."""
    vllm_gpu_memory_utilization: float = 0.3
    """Share of GPU memory the vLLM engine may take (weights plus KV cache)."""
    vllm_sleep: bool = True
    """Put the vLLM engine to sleep (level 2: weights and KV cache freed) during training steps."""
    vllm_max_model_len: int | None = None
    """vLLM's context length (prompt plus completion); unset: the model's."""
    vllm_server_url: str | None = None
    """Sample from a separate vLLM server at this URL instead of a colocated engine (images only;
    start it as the README says). Unset: colocated."""
    is_cap: float = 2.0
    """Truncated importance sampling (Yao et al. 2025): each token's loss is weighted by
    min(pi_train / pi_sampler, cap), correcting for the sampler's (vLLM's, or the KV-cached HF
    sampler's under reduced precision) different log-probs of the same tokens; the old policy of
    the clipped ratio is the training forward's own. 0 turns it off."""


@dataclass
class RewardConfig:
    name: str = ""
    """A registered reward name, ``path/to/file.py:function``, or an entry point (group mmrft.rewards)."""
    weight: float = 1.0
    """Weight of this reward in the total reward."""
    on_error: Literal["none", "zero", "raise"] = "none"
    """A completion whose reward raises, hangs or returns a non-number scores None or 0; either way
    reward/<name>/errors counts it. A completion no task reward scored is left out of its group's
    statistics and of the loss (reward/unscored). raise: stop (debugging)."""
    timeout_s: float | None = None
    """Per-call time limit of this reward; a call that runs past it fails under on_error. A reward
    with a limit runs in a worker process that is killed and replaced when a call hangs. Unset:
    mmrft's own rewards run in the training process without one, plugins get 60 s."""
    task: bool = True
    """Counts as task reward for filter_zero_variance and dynamic sampling; set false for format
    or shaping rewards, whose variance says nothing about whether the group can teach the task."""


@dataclass
class AlgorithmConfig:
    """The RFT switches; docs/algorithms.md maps each to its paper and formula."""

    advantage: str = "grpo"
    """Advantage estimator (registered name): grpo, dr_grpo, rloo, reinforce_pp."""
    std_scale: Literal["group", "batch", "none"] | None = None
    """Divide centred rewards by the std of their group, of the batch, or not at all; unset: the
    estimator's own default (grpo: group; dr_grpo, rloo: none; reinforce_pp: batch)."""
    loss_aggregation: str = "token_mean"
    """How per-token losses become one number: token_mean (DAPO; default), seq_mean_token_mean (GRPO paper),
    seq_mean_token_sum_norm (Dr. GRPO: token sums / max_new_tokens)."""
    epsilon_low: float = 0.2
    """Lower clip range of the importance ratio: 1 - epsilon_low (PPO / GRPO)."""
    epsilon_high: float = 0.2
    """Upper clip range: 1 + epsilon_high (DAPO's clip-higher raises it, e.g. 0.28)."""
    dual_clip: float | None = None
    """Dual-clip PPO's c (> 1, typically 3): bounds a negative-advantage token's loss by -c * A. Unset: off."""
    beta: float = 0.0
    """KL coefficient to a frozen reference model; the reference is loaded only if > 0."""
    kl_estimator: str = "k3"
    """KL estimator (registered name): k1, k2, k3 (Schulman's approximations)."""
    kl_in: Literal["loss", "reward"] = "loss"
    """loss: beta * KL per token is added to the loss (GRPO). reward: beta * the completion's summed KL
    is subtracted from its reward before advantages (PPO-RLHF style)."""
    mask_truncated: bool = False
    """Leave completions that hit max_new_tokens out of the loss (DAPO's overlong filtering)."""
    filter_zero_variance: bool = False
    """Drop groups whose task reward (rewards with task: true) has zero variance before the update."""
    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: after the filter, draw and generate more prompts until the batch holds
    batch_size informative groups or max_sampling_rounds generation rounds have run."""
    max_sampling_rounds: int = 3
    """Upper bound on generation rounds per step under dynamic_sampling."""
    num_iterations: int = 1
    """Optimizer updates per generated batch; updates after the first are off-policy, with importance
    ratios against the generating policy (PPO epochs; TRL's num_iterations)."""
    replay_groups: int = 0
    """Replay this many high-variance groups from earlier steps in each update (after ReMix). 0: off."""
    replay_buffer: int = 64
    """Groups kept in the replay buffer (highest task-reward std first)."""
    entropy_coef: float = 0.0
    """Entropy bonus: loss -= coef * mean token entropy. With entropy_target set, its starting value."""
    entropy_target: float | None = None
    """Target mean token entropy (nats): the bonus coefficient rises by entropy_coef_step while the
    entropy is below it and falls while above, within [0, entropy_coef_max]. Unset: fixed coefficient."""
    entropy_coef_step: float = 1e-3
    """Change of the entropy coefficient per step under entropy_target."""
    entropy_coef_max: float = 0.05
    """Upper bound of the entropy coefficient under entropy_target."""
    sft_coef: float = 0.0
    """CHORD: weight mu of the auxiliary SFT loss on the batch's expert answers;
    loss = (1 - mu) * policy loss + mu * SFT loss. 0: off."""
    sft_coef_end: float | None = None
    """CHORD's global schedule: mu moves linearly from sft_coef to this over sft_decay_steps. Unset: constant."""
    sft_decay_steps: int = 1000
    """Steps over which mu moves from sft_coef to sft_coef_end."""
    sft_token_weighting: Literal["none", "p(1-p)"] = "none"
    """CHORD-phi: weight each expert token's NLL by p (1 - p) of the policy (p detached), which keeps
    the SFT term from overriding tokens the policy is already sure of."""


@dataclass
class OptimConfig:
    lr: float = 1e-6
    """AdamW learning rate (peak, after warmup)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""
    warmup_steps: int = 0
    """Linear warmup from 0 to lr over this many optimizer steps."""
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    """After warmup: hold lr, or decay it to 0 at max_steps linearly (TRL's default) or along a
    half cosine."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm (0 disables)."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (per training process); each micro-batch holds whole groups."""
    micro_batch_tokens: int | None = None
    """Instead of grad_accum equal parts: pack whole groups, shortest first, into micro-batches of at
    most this many tokens (rows x longest row, prompt plus completion); a group over it alone gets
    a micro-batch to itself. Unset: grad_accum equal parts."""


@dataclass
class TrainConfig:
    stage: Literal["grpo", "sft"] = "grpo"
    """grpo: reinforcement fine-tuning with verifiable rewards; sft: supervised loss on assistant tokens."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The policy model."""
    data: DataConfig = field(default_factory=DataConfig)
    """Training and held-out data."""
    video: VideoConfig = field(default_factory=VideoConfig)
    """Video decoding and sampling."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """Sampling of completions (GRPO)."""
    rewards: list[RewardConfig] = field(default_factory=list)
    """Rewards summed (with weights) into the training signal (GRPO)."""
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    """The GRPO-family loss."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and schedule."""
    batch_size: int = 8
    """Prompts per optimizer step (GRPO: each gets num_generations completions; SFT: samples)."""
    max_steps: int = 100
    """Optimizer steps to run."""
    max_minutes: float | None = None
    """Stop after this much training wall time (the equal-compute baseline uses it)."""
    seed: int = 0
    """Seed of weights' init, data order and sampling."""
    output_dir: str = "runs/default"
    """Run directory: config, metrics.jsonl, rollouts.jsonl, checkpoints/, eval results, summary.json."""
    log_every: int = 1
    """Write metrics every N steps."""
    rollouts_every: int = 10
    """Write the step's rollouts to rollouts.jsonl every N steps."""
    save_every: int = 50
    """Checkpoint every N steps (and at the end)."""
    keep_last: int = 2
    """Checkpoints kept; older ones are deleted."""
    eval_every: int = 0
    """Evaluate on the held-out split every N steps (0: only before and after training)."""
    eval_samples: int = 200
    """Held-out samples used by evaluation (the first N)."""
    eval_before_after: bool = True
    """Evaluate the starting model and the final one on the held-out split; print both, write summary.json."""
    report_to: list[str] = field(default_factory=list)
    """Extra metric sinks: tensorboard, wandb (metrics.jsonl is always written)."""
    progress_bar: bool = True
    """Show a progress bar with step, reward and step time."""
    max_nonfinite_steps: int = 5
    """A step whose loss or gradient is not finite is skipped (no update, logged as
    numerics/skipped_updates); this many in a row stop the run, keeping the last good checkpoint."""

    def validate(self) -> None:
        if self.model.dtype != "float32" and self.model.lora_rank == 0:
            raise ConfigError(
                f"model.dtype: AdamW on {self.model.dtype} weights rounds its updates away (an 8-bit mantissa keeps "
                "none smaller than 1/256 of a weight); use dtype: float32 with autocast: bfloat16 (float32 master "
                "weights, bfloat16 compute), or LoRA (model.lora_rank > 0) on the low-precision base"
            )
        if self.stage == "grpo" and not self.rewards:
            raise ConfigError("rewards: a grpo stage needs at least one reward")
        if self.stage == "grpo" and self.generation.num_generations < 2:
            raise ConfigError("generation.num_generations: GRPO needs at least 2 completions per prompt")
        if self.generation.vllm_server_url and self.generation.backend != "vllm":
            raise ConfigError("generation.vllm_server_url: a vLLM server is used with generation.backend: vllm")
        if self.optim.micro_batch_tokens is not None and (self.optim.micro_batch_tokens < 1 or self.optim.grad_accum != 1):
            raise ConfigError("optim.micro_batch_tokens: a positive token budget, with optim.grad_accum left at 1")
        if self.batch_size % self.optim.grad_accum:
            raise ConfigError(f"optim.grad_accum: {self.optim.grad_accum} does not divide batch_size {self.batch_size}")
        if not self.data.train:
            raise ConfigError("data.train: a training JSONL is required")
        unknown = set(self.report_to) - {"tensorboard", "wandb"}
        if unknown:
            raise ConfigError(f"report_to: unknown sink {sorted(unknown)[0]!r}; valid: tensorboard, wandb")
        self._validate_algorithm()
        if self.eval_every > 0 and not self.data.heldout:
            raise ConfigError("eval_every: evaluating during training needs data.heldout")
        if self.max_nonfinite_steps < 1:
            raise ConfigError("max_nonfinite_steps: must be at least 1")

    def _validate_algorithm(self) -> None:
        from mmrft.algorithms.advantages import ADVANTAGES
        from mmrft.algorithms.losses import KL_ESTIMATORS, LOSS_AGGREGATIONS

        algo = self.algorithm
        for key, registry in (("advantage", ADVANTAGES), ("loss_aggregation", LOSS_AGGREGATIONS), ("kl_estimator", KL_ESTIMATORS)):
            try:
                registry.get(getattr(algo, key))
            except KeyError as err:
                raise ConfigError(f"algorithm.{key}: {err.args[0]}") from None
        if not 0 <= algo.epsilon_low < 1:
            raise ConfigError(f"algorithm.epsilon_low: {algo.epsilon_low} is outside [0, 1)")
        if algo.epsilon_high < 0:
            raise ConfigError(f"algorithm.epsilon_high: {algo.epsilon_high} is negative")
        if algo.dual_clip is not None and algo.dual_clip <= 1:
            raise ConfigError(f"algorithm.dual_clip: {algo.dual_clip} must be > 1")
        if algo.kl_in == "reward" and algo.beta <= 0:
            raise ConfigError("algorithm.kl_in: 'reward' needs algorithm.beta > 0 (no reference model is loaded otherwise)")
        if algo.num_iterations < 1 or algo.max_sampling_rounds < 1:
            raise ConfigError("algorithm.num_iterations and algorithm.max_sampling_rounds must be at least 1")
        if not 0 <= algo.sft_coef <= 1 or (algo.sft_coef_end is not None and not 0 <= algo.sft_coef_end <= 1):
            raise ConfigError("algorithm.sft_coef: mu (and sft_coef_end) must lie in [0, 1]")
        if algo.sft_coef_end is not None and algo.sft_coef == 0:
            raise ConfigError("algorithm.sft_coef_end: set algorithm.sft_coef (the schedule's start) too")
        if algo.replay_groups < 0 or algo.replay_buffer < algo.replay_groups:
            raise ConfigError("algorithm.replay_groups: must be >= 0 and at most algorithm.replay_buffer")
