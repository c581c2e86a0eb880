"""Record `scales-real`: tiny Llama models pre-trained from scratch on data mixtures, at three scales.

The RegMix/MFMS setting at toy scale, on the CPU: for each mixture of the six demo domains (a
Sobol design, the uniform mixture first), a randomly initialised byte-level Llama is pre-trained
on sequences drawn from the domains in the mixture's proportions and scored by minus its
held-out loss (nats per byte) on the demo's target blend (`cotune.demo.TARGET`: 3:1 countries'
facts and Python documentation topics no training row holds), evaluated at 1/8, 1/4, 1/2 and
all of the full budget. Every mixture is trained at every scale (`SCALES`: the largest is the
target, the others its proxies) with the same data order, and each scale is its own recording
(`cotune/bench/data/scales-real-<scale>.json`, written after every run, resumed on a re-run), so
a recording can be made in chunks:

    python benchmarks/record_multiscale.py --n-configs 20             # the first 20 mixtures
    python benchmarks/record_multiscale.py --scales xs,s --n-configs 120  # the small scales only
    python benchmarks/record_multiscale.py --n-configs 4 --out-dir /tmp/ms  # a quick check elsewhere

At the end it prints how well each smaller scale ranks the mixtures for the target
(Spearman correlation of full-budget scores over the mixtures all scales hold).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch

from cotune.bench.recorded import packaged_data, record
from cotune.demo import TARGET
from cotune.space.design import initial_design
from cotune.space.search_space import Config, SearchSpace
from cotune.train.demo_data import build_demo_data
from cotune.train.proxy import linear_weights
from cotune.trial import Result

#: Model shapes by scale name, smallest first; the last is the target.
SCALES = {
    "xs": {"hidden": 32, "layers": 1, "heads": 2},
    "s": {"hidden": 64, "layers": 2, "heads": 4},
    "m": {"hidden": 128, "layers": 4, "heads": 4},
}
VOCAB = 257  # bytes and a padding id
PAD = 256
#: Evaluation points as fractions of the full budget.
FRACTIONS = (0.125, 0.25, 0.5, 1.0)


def _texts(path: str) -> list[bytes]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [(r["text"] if "text" in r else f"{r['prompt']} {r['completion']}").encode() + b"\n" for r in rows]


class Pretraining:
    """``objective(config, steps)``: pre-train a fresh model of one scale on the mixture, score it
    on the held-out target blend at ``FRACTIONS`` of ``steps``."""

    def __init__(self, scale: str, *, batch_size: int, seq_len: int, learning_rate: float,
                 n_eval: int, seed: int) -> None:
        demo = build_demo_data(seed=seed)
        self.domains = {name: _texts(path) for name, path in demo.domains.items()}
        self.targets = {name: _texts(path)[:n_eval] for name, path in demo.targets.items()}
        self.shape = SCALES[scale]
        self.batch_size, self.seq_len = batch_size, seq_len
        self.learning_rate, self.seed = learning_rate, seed

    def model(self) -> torch.nn.Module:
        from transformers import LlamaConfig, LlamaForCausalLM

        h, n, heads = self.shape["hidden"], self.shape["layers"], self.shape["heads"]
        config = LlamaConfig(vocab_size=VOCAB, hidden_size=h, intermediate_size=4 * h, num_hidden_layers=n,
                             num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=self.seq_len,
                             pad_token_id=PAD, bos_token_id=None, eos_token_id=None, tie_word_embeddings=True)
        torch.manual_seed(self.seed)
        return LlamaForCausalLM(config)

    def _batch(self, rng: random.Random, mixture: dict[str, float]) -> torch.Tensor:
        names = [n for n in mixture if mixture[n] > 0]
        weights = [mixture[n] for n in names]
        rows = []
        for _ in range(self.batch_size):
            texts = self.domains[rng.choices(names, weights)[0]]
            data = b""
            while len(data) < self.seq_len:  # rows of one domain, back to back
                data += rng.choice(texts)
            start = rng.randrange(len(data) - self.seq_len + 1)
            rows.append(list(data[start:start + self.seq_len]))
        return torch.tensor(rows)

    @torch.no_grad()
    def _score(self, model: torch.nn.Module) -> float:
        model.eval()
        loss = 0.0
        for name, weight in TARGET.items():
            ids = [list(t[: self.seq_len]) for t in self.targets[name]]
            width = max(len(r) for r in ids)
            batch = torch.tensor([r + [PAD] * (width - len(r)) for r in ids])
            labels = batch.masked_fill(batch == PAD, -100)
            loss += weight * float(model(input_ids=batch, attention_mask=(batch != PAD).long(), labels=labels).loss)
        model.train()
        return -loss / sum(TARGET.values())

    def __call__(self, config: Config, budget: float) -> Result:
        steps = int(budget)
        model = self.model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, weight_decay=0.01)
        warmup = max(1, steps // 20)

        def factor(k: int) -> float:  # linear warm-up, then cosine from the peak down to 10% of it
            return min(1.0, (k + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(k, steps) / steps)))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        rng = random.Random(self.seed)  # the same data order at every scale
        evals = {max(1, round(f * steps)) for f in FRACTIONS}
        curve, start = {}, time.perf_counter()
        model.train()
        for step in range(1, steps + 1):
            batch = self._batch(rng, config.mixture)
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            if step in evals:
                curve[float(step)] = self._score(model)
        info = {"steps": steps, "train_seconds": round(time.perf_counter() - start, 3),
                "train_loss_last": float(loss)}
        return Result(score=curve[float(steps)], cost=float(steps), curve=curve, info=info)


def scale_path(scale: str, out_dir: str | None) -> Path:
    """Where the recording of ``scale`` goes: the packaged file, or ``out_dir``."""
    name = f"scales-real-{scale}.json"
    return Path(out_dir) / name if out_dir else packaged_data(name)


def print_rank_agreement(scales: list[str], out_dir: str | None) -> None:
    """Spearman correlation of each scale's full-budget scores with the target's, over shared mixtures."""
    from scipy.stats import spearmanr

    runs = {}
    for scale in scales:
        path = scale_path(scale, out_dir)
        if path.is_file():
            data = json.loads(path.read_text())
            runs[scale] = {json.dumps(r["config"], sort_keys=True): r["curve"][max(r["curve"], key=float)]
                           for r in data["runs"]}
    target = list(SCALES)[-1]
    for scale, scores in runs.items():
        shared = sorted(set(scores) & set(runs.get(target, {})))
        if scale != target and len(shared) >= 3:
            rho = spearmanr([scores[k] for k in shared], [runs[target][k] for k in shared]).statistic
            print(f"scale {scale}: rank correlation with {target} over {len(shared)} mixtures {rho:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-configs", type=int, default=120, help="mixtures to record (the uniform one first)")
    parser.add_argument("--scales", default=",".join(SCALES), help="comma-separated scales to record")
    parser.add_argument("--full-budget", type=int, default=160, help="training steps of a full run")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per step")
    parser.add_argument("--seq-len", type=int, default=128, help="bytes per sequence")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="peak learning rate (cosine to 10%)")
    parser.add_argument("--n-eval", type=int, default=64, help="held-out rows of each target domain")
    parser.add_argument("--seed", type=int, default=0, help="seed of the design, the data order and the init")
    parser.add_argument("--out-dir", default=None, help="folder of the recordings (default: the packaged ones)")
    args = parser.parse_args()

    domains = list(build_demo_data(seed=args.seed).domains)
    space = SearchSpace(domains)
    configs = initial_design(space, args.n_configs, args.seed)
    start = time.perf_counter()
    for scale in args.scales.split(","):
        objective = Pretraining(scale, batch_size=args.batch_size, seq_len=args.seq_len,
                                learning_rate=args.learning_rate, n_eval=args.n_eval, seed=args.seed)
        settings = {k: getattr(args, k) for k in ("batch_size", "seq_len", "learning_rate", "n_eval", "seed")}
        meta = {
            "description": f"byte-level Llama ({SCALES[scale]}) pre-trained from scratch on a mixture of the demo "
                           "domains, scored by minus the held-out loss per byte on the 3:1 blend of countries' "
                           "facts and Python documentation topics; each run evaluated at 1/8, 1/4, 1/2 and 1",
            "generator": "benchmarks/record_multiscale.py",
            "budget_unit": "steps",
            "scale": scale,
            "weights_per_token": linear_weights(objective.model()),  # as the training backend counts a proxy's cost
            "settings": settings,
        }

        def report(i, config, result, scale=scale):
            outcome = f"score {result.score:.4f}" if hasattr(result, "score") else f"failed: {result}"
            print(f"[{scale} {i + 1}/{len(configs)}] {outcome} ({time.perf_counter() - start:.0f}s)", flush=True)

        path = scale_path(scale, args.out_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = record(objective, space, configs, full_budget=args.full_budget, path=path, meta=meta, on_run=report)
        print(f"{scale}: {len(data['runs'])} runs recorded, {len(data['failed'])} failed, in {path}", flush=True)
    print_rank_agreement(list(SCALES), args.out_dir)


if __name__ == "__main__":
    main()
