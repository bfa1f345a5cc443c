"""The quick ERM training step's arithmetic rate against a same-run single-thread sgemm, side by side.

Builds the step exactly as training runs it (benchmark/jobs.py, benchmark/train.py): the quick profile's model
(cnn, pretrained backbone, dropout 0.1, 5 classes), Adam at its lr, `training_step` on shapes batches drawn by
`endless` and moved by `to_device`, under the jobs' numerics (benchmark/numerics.py: one thread, deterministic
algorithms, the allocator keeping freed memory). Its FLOPs are counted once (torch.utils.flop_counter: forward and
backward; Adam's few elementwise FLOPs are not counted); the step and a 512x512 float32 matmul are timed
in interleaved repetitions, and the step's FLOP rate is printed as a fraction of the matmul's (target >= 0.6). The
batch's fetch (uint8 -> float; the train loop times it outside the step) is timed beside them.

Usage: python perf/train_step_rate.py [--reps 30] [--dataset shapes] [--domain d0] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.config import PROFILES
from benchmark.data import load_benchmark
from benchmark.data.base import endless
from benchmark.models import build_model
from benchmark.numerics import job_numerics
from benchmark.pretraining import starting_backbone
from benchmark.timing import interleaved_medians, print_medians, timed
from benchmark.train import seed_everything, to_device, training_step
from methods import METHODS, method_hparams

SGEMM_SIDE = 512
SGEMM_REPEATS = 8  # matmuls per timed call, so that one call lasts a few ms like the step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--domain", default=None, help="training domain (default: the first)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    device = torch.device("cpu")
    profile = PROFILES.get("quick")
    with job_numerics(device):
        torch.set_num_threads(args.threads)
        bench = load_benchmark(args.dataset, image_size=profile.image_size)
        domain = bench.domain(args.domain) if args.domain else bench.domains[0]
        seed_everything(0)
        model = build_model(profile.model, bench.num_classes, dropout=profile.dropout,
                            backbone_state=starting_backbone(profile))
        method = METHODS.get("erm")(model, method_hparams("erm", profile), has_masks=bench.has_masks)
        optimizer = torch.optim.Adam(method.parameters(), lr=profile.lr)
        batches = endless(domain.train, profile.batch_size, torch.Generator().manual_seed(0))
        batch = to_device(next(batches), device)
        state = {"step": 0}

        def fetch() -> None:
            state["batch"] = to_device(next(batches), device)

        def step() -> None:
            state["step"] += 1
            training_step(method, optimizer, state.get("batch", batch), state["step"], seed=0)

        with FlopCounterMode(display=False) as counter:
            method.train()
            loss, _ = method.loss(batch, 0)
            loss.backward()
        step_flops = counter.get_total_flops()
        optimizer.zero_grad(set_to_none=True)

        a, b = torch.rand(SGEMM_SIDE, SGEMM_SIDE), torch.rand(SGEMM_SIDE, SGEMM_SIDE)

        def sgemm() -> None:
            for _ in range(SGEMM_REPEATS):
                torch.mm(a, b)

        sgemm_flops = SGEMM_REPEATS * 2 * SGEMM_SIDE**3
        medians = interleaved_medians({
            "ERM step": lambda: timed(step, device),
            "batch fetch": lambda: timed(fetch, device),
            f"sgemm {SGEMM_SIDE} x{SGEMM_REPEATS}": lambda: timed(sgemm, device),
        }, args.reps, warmup=3)
    print(f"quick ERM step ({profile.model}, batch {profile.batch_size}, {bench.image_size}x{bench.image_size}, "
          f"{args.threads} thread(s), torch {torch.__version__}), medians of {args.reps} interleaved repetitions:")
    print_medians(medians)
    step_s, fetch_s, sgemm_s = medians.values()
    step_rate, sgemm_rate = step_flops / step_s / 1e9, sgemm_flops / sgemm_s / 1e9
    print(f"  ERM step: {step_flops / 1e9:.3f} GFLOP in {step_s * 1e3:.2f} ms = {step_rate:.1f} GFLOP/s "
          f"(with the batch fetch: {step_flops / (step_s + fetch_s) / 1e9:.1f} GFLOP/s)")
    print(f"  sgemm:    {sgemm_flops / 1e9:.3f} GFLOP in {sgemm_s * 1e3:.2f} ms = {sgemm_rate:.1f} GFLOP/s")
    print(f"ERM step / sgemm rate = {step_rate / sgemm_rate:.3f}")


if __name__ == "__main__":
    main()
