"""Scoring a trained adapter on a held-out task (higher is better).

``multiple_choice``: the log-likelihood of each option given the question, in batches; the
score is the accuracy, and two smoother numbers come along (accuracy with option log-likelihoods
divided by their length in characters, and the mean probability of the right option when the
options' likelihoods are normalised over the options). ``exact_match``: greedy answers compared
after normalisation. ``loss``: minus the mean token loss. ``lm_eval``: an lm-evaluation-harness task.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotune.train.config import EvalConfig
from cotune.train.data import (
    IGNORE_INDEX,
    Encoded,
    collate,
    encode_example,
    encode_pair,
    pad_id,
    read_jsonl,
    row_to_example,
    truncate_pair,
)
from cotune.train.errors import TrainingConfigError

if TYPE_CHECKING:
    import torch

_PUNCTUATION = frozenset(string.punctuation)


@dataclasses.dataclass(frozen=True, slots=True)
class Question:
    """One multiple-choice question, tokenised: the prompt once, then each option."""

    prompt_ids: list[int]
    options: list[list[int]]
    n_chars: list[int]  # option lengths in characters, for length normalisation
    answer: int


@dataclasses.dataclass(frozen=True, slots=True)
class Prompt:
    """One exact-match item: the tokenised prompt and its accepted answers."""

    input_ids: list[int]
    answers: tuple[str, ...]


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first real token, so left padding shifts nothing."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def _cache_keyword(model: torch.nn.Module) -> str:
    """The forward keyword that takes a key/value cache: ``cache`` from transformers 5.24
    (``past_key_values`` is deprecated there and goes in 5.40), ``past_key_values`` before."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def normalise_answer(text: str) -> str:
    """Lower case, first line only, no punctuation, articles or extra spaces (SQuAD-style)."""
    text = text.strip().split("\n", 1)[0].lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def option_logliks(model: torch.nn.Module, questions: Sequence[Question], pad: int) -> list[list[float]]:
    """Log-likelihood of every option of every question given its prompt.

    Each prompt runs once; its options continue from its cached keys and values, which costs a
    fraction of scoring every (prompt, option) sequence in full.
    """
    import torch

    device = _device(model)
    # 1) prompts, left-padded, keeping the cache and the distribution of each option's first token
    prompts = collate([Encoded(q.prompt_ids, q.prompt_ids) for q in questions], pad, left=True)
    prompt_mask = prompts["attention_mask"].to(device)  # ``b x p``
    out = model(input_ids=prompts["input_ids"].to(device), attention_mask=prompt_mask,
                position_ids=_position_ids(prompt_mask), use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # ``b x vocab``
    # 2) every option continues its own question's prompt
    rows = torch.tensor([i for i, q in enumerate(questions) for _ in q.options], device=device)  # ``n``
    keyword = _cache_keyword(model)
    cache = getattr(out, keyword)
    cache.batch_select_indices(rows)
    options = collate([Encoded(o, o) for q in questions for o in q.options], pad)  # right-padded
    ids, mask = options["input_ids"].to(device), options["attention_mask"].to(device)  # ``n x t``
    positions = prompt_mask.sum(-1)[rows, None] + torch.arange(ids.shape[1], device=device)  # ``n x t``
    logits = model(input_ids=ids, attention_mask=torch.cat([prompt_mask[rows], mask], dim=1), position_ids=positions,
                   use_cache=False, **{keyword: cache}).logits  # ``n x t x vocab``
    later = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)  # ``n x (t-1)``
    token_lp = torch.cat([first[rows].gather(-1, ids[:, :1]), later], dim=1) * mask  # ``n x t``, padding adds 0
    sums = token_lp.sum(-1).tolist()
    out_lists, i = [], 0
    for q in questions:
        out_lists.append(sums[i:i + len(q.options)])
        i += len(q.options)
    return out_lists


def multiple_choice_metrics(model: torch.nn.Module, questions: Sequence[Question], pad: int,
                            batch_size: int) -> dict[str, float]:
    """Accuracy, length-normalised accuracy and mean probability of the right option.

    ``batch_size`` counts questions; their options are scored together.
    """
    import torch

    correct = correct_norm = prob = 0.0
    for start in range(0, len(questions), batch_size):
        chunk = questions[start:start + batch_size]
        for q, loglik in zip(chunk, option_logliks(model, chunk, pad)):
            scores = torch.tensor(loglik, dtype=torch.float64)  # ``n_options``
            norm = scores / torch.tensor([max(n, 1) for n in q.n_chars], dtype=torch.float64)
            correct += float(int(scores.argmax()) == q.answer)
            correct_norm += float(int(norm.argmax()) == q.answer)
            prob += float(torch.softmax(scores, 0)[q.answer])
    n = len(questions)
    return {"accuracy": correct / n, "accuracy_norm": correct_norm / n, "prob_correct": prob / n}


def exact_match_metrics(model: torch.nn.Module, tokenizer: Any, prompts: Sequence[Prompt], batch_size: int,
                        max_new_tokens: int) -> dict[str, float]:
    """Share of greedy answers equal to an accepted answer after `normalise_answer`."""
    device = _device(model)
    pad = pad_id(tokenizer)
    hits = 0
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        batch = collate([Encoded(p.input_ids, p.input_ids) for p in chunk], pad, left=True)
        width = batch["input_ids"].shape[1]
        out = model.generate(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)  # ``b x (width + new)``
        for p, row in zip(chunk, out[:, width:].tolist()):
            said = normalise_answer(tokenizer.decode(row, skip_special_tokens=True))
            hits += any(said == normalise_answer(a) for a in p.answers)
    return {"exact_match": hits / len(prompts)}


def loss_metrics(model: torch.nn.Module, encoded: Sequence[Encoded], pad: int, batch_size: int) -> dict[str, float]:
    """Mean token loss over the evaluation rows (score: minus the loss)."""
    import torch

    device = _device(model)
    total, n_tokens = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        batch = {k: v.to(device) for k, v in collate(encoded[start:start + batch_size], pad).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
        labels = batch["labels"][:, 1:]  # ``b x (t - 1)``: token t is predicted at position t - 1
        total += float(torch.nn.functional.cross_entropy(
            logits[:, :-1].float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"))
        n_tokens += int((labels != IGNORE_INDEX).sum())
    loss = total / max(n_tokens, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def lm_eval_metrics(model: torch.nn.Module, tokenizer: Any, task: str, limit: int | None,
                    batch_size: int, task_dir: str | None = None) -> dict[str, float]:
    """Numeric results of one lm-evaluation-harness task (its datasets must be available offline);
    ``task_dir`` adds the task YAML files of that folder to lm-eval's registry."""
    lm_eval, hflm = _import_lm_eval()
    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(model=hflm(pretrained=model, tokenizer=tokenizer, batch_size=batch_size),
                                      tasks=[task], limit=limit, task_manager=TaskManager(include_path=task_dir))
    return {k: float(v) for k, v in results["results"][task].items() if isinstance(v, (int, float))}


def _import_lm_eval() -> tuple[Any, Any]:
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
    except ImportError as err:
        raise TrainingConfigError(
            "EvalConfig.kind='lm_eval' needs lm-evaluation-harness; install it with `pip install lm-eval` "
            "or use kind 'multiple_choice', 'exact_match' or 'loss'"
        ) from err
    return lm_eval, HFLM


class Evaluator:
    """The evaluation task of one trial, tokenised once; call it on a model for its metrics.

    The returned dict holds ``score`` (the configured metric, higher is better) and every metric
    computed. Evaluation runs under ``torch.no_grad()`` in eval mode and leaves the model in
    train mode.
    """

    def __init__(self, config: EvalConfig, tokenizer: Any, *, chat: bool) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.pad = pad_id(tokenizer)
        if config.kind == "lm_eval":
            _import_lm_eval()
            self.task_dir = None if config.path is None else str(Path(config.path).expanduser())
            if self.task_dir is not None and not Path(self.task_dir).is_dir():
                raise TrainingConfigError(
                    f"lm-eval task folder {config.path!r} is not a folder; set EvalConfig.path to the folder "
                    "holding your task YAML files, or unset it for lm-eval's own tasks"
                )
            return
        path = Path(config.path).expanduser()
        if not path.is_file():
            raise TrainingConfigError(f"evaluation file {str(path)!r} does not exist; check EvalConfig.path")
        rows = read_jsonl(path)[: config.n_examples]
        if not rows:
            raise TrainingConfigError(f"evaluation file {str(path)!r} holds no rows")
        if config.kind == "multiple_choice":
            self.questions = self._prepare_questions(rows, path, chat)
        elif config.kind == "exact_match":
            self.prompts = self._prepare_prompts(rows, path, chat)
        else:
            self.encoded = [encode_example(tokenizer, row_to_example(row, f"{path}:{i + 1}"), config.max_length, chat=chat)
                            for i, row in enumerate(rows)]

    def _prepare_questions(self, rows: list[dict], path: Path, chat: bool) -> list[Question]:
        questions = []
        for q, row in enumerate(rows):
            options, answer = row.get("choices"), row.get("answer")
            question = row.get("question", row.get("prompt"))
            if question is None or not isinstance(options, list) or len(options) < 2 or \
                    isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(options):
                raise TrainingConfigError(
                    f"{path}:{q + 1}: a multiple-choice row needs 'question', 'choices' (a list of at least 2) "
                    f"and 'answer' (the index of the right choice); got {row!r}"
                )
            pairs = [encode_pair(self.tokenizer, str(question), str(o), chat=chat, close=False) for o in options]
            if not all(option_ids for _, option_ids in pairs):
                raise TrainingConfigError(f"{path}:{q + 1}: a choice is empty in {options!r}; give every choice text")
            longest = max((option_ids for _, option_ids in pairs), key=len)
            prompt_ids, _ = truncate_pair(pairs[0][0], longest, self.config.max_length)
            room = self.config.max_length - len(prompt_ids)
            questions.append(Question(prompt_ids, [option_ids[:room] for _, option_ids in pairs],
                                      [len(str(o)) for o in options], answer))
        return questions

    def _prepare_prompts(self, rows: list[dict], path: Path, chat: bool) -> list[Prompt]:
        prompts = []
        for i, row in enumerate(rows):
            question, answer = row.get("prompt", row.get("question")), row.get("answer")
            answers = tuple(str(a) for a in answer) if isinstance(answer, list) else (str(answer),)
            if question is None or answer is None or not answers:
                raise TrainingConfigError(
                    f"{path}:{i + 1}: an exact-match row needs 'prompt' (or 'question') and 'answer' (a string or a "
                    f"list of accepted strings); got {row!r}"
                )
            prompt_ids, _ = encode_pair(self.tokenizer, str(question), "", chat=chat, close=False)
            prompts.append(Prompt(prompt_ids[-self.config.max_length:], answers))
        return prompts

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        import torch

        cfg = self.config
        model.eval()
        try:
            with torch.no_grad():
                if cfg.kind == "multiple_choice":
                    metrics = multiple_choice_metrics(model, self.questions, self.pad, cfg.batch_size)
                    metrics["score"] = metrics[cfg.metric]
                elif cfg.kind == "exact_match":
                    metrics = exact_match_metrics(model, self.tokenizer, self.prompts, cfg.batch_size, cfg.max_new_tokens)
                    metrics["score"] = metrics["exact_match"]
                elif cfg.kind == "loss":
                    metrics = loss_metrics(model, self.encoded, self.pad, cfg.batch_size)
                    metrics["score"] = -metrics["loss"]
                else:
                    metrics = lm_eval_metrics(model, self.tokenizer, cfg.task, cfg.n_examples, cfg.batch_size,
                                              self.task_dir)
                    if cfg.metric not in metrics:
                        raise TrainingConfigError(
                            f"lm-eval task {cfg.task!r} reported {sorted(metrics)}, not EvalConfig.metric={cfg.metric!r}"
                        )
                    metrics["score"] = metrics[cfg.metric]
        finally:
            model.train()
        return metrics


class WeightedEvaluator:
    """Several evaluation tasks: ``score`` is their weighted mean score, and every task's metrics
    are kept as ``<name>/<metric>`` (a study optimises the one and stores the others)."""

    def __init__(self, configs: Sequence[EvalConfig], tokenizer: Any, *, chat: bool) -> None:
        self.tasks = [(task_name(c, i), c.weight, Evaluator(c, tokenizer, chat=chat)) for i, c in enumerate(configs)]
        names = [name for name, _, _ in self.tasks]
        if len(set(names)) != len(names):
            raise TrainingConfigError(f"evaluation task names must be unique, got {names}; give each task a name")

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        metrics: dict[str, float] = {}
        total = 0.0
        for name, weight, evaluator in self.tasks:
            task = evaluator(model)
            metrics.update({f"{name}/{k}": v for k, v in task.items()})
            total += weight * task["score"]
        metrics["score"] = total / sum(weight for _, weight, _ in self.tasks)
        return metrics


def task_name(config: EvalConfig, index: int) -> str:
    """The task's name, or ``<kind><index>`` when it has none."""
    return config.name or f"{config.kind}{index}"


def make_evaluator(evaluation: EvalConfig | Sequence[EvalConfig], tokenizer: Any, *,
                   chat: bool) -> Evaluator | WeightedEvaluator:
    """The evaluator of one task, or of several weighted ones."""
    if isinstance(evaluation, EvalConfig):
        return Evaluator(evaluation, tokenizer, chat=chat)
    return WeightedEvaluator(evaluation, tokenizer, chat=chat)
