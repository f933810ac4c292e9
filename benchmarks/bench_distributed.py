"""COT's cost under data parallelism on CPU: DDP and FSDP2, 2 gloo processes, a small transformer.

Run:  python -m benchmarks.bench_distributed [--reps 2] [--steps 12] [--cuda] [--no-write]

Each arm is one ``torchrun --nproc-per-node 2`` launch of this file in worker mode: a
2-layer causal transformer (d 256, 4 heads, vocabulary 2,000, 8 sequences of 64 tokens per
rank) wrapped in ``DistributedDataParallel`` or sharded with ``fully_shard`` (per layer and
at the root), trained by :class:`complement.training.CotStep` with Adam, either ``off``
(cross-entropy, one forward/backward and one gradient reduction per step) or
``alternate`` (COT: two of each). The head is the materialized ``nn.Linear`` (``logits``)
or the chunked ``LinearLogits(hidden, head)`` (``linear``). Per arm: the median step time
after 3 warm-up steps (a barrier around each step) and each rank's peak resident memory
above its resident memory before the first step. Reported as COT / CE under the same
strategy and head. Writes the ``distributed`` section of docs/benchmarks.md.

With ``--cuda`` (2 GPUs, by scripts/multi_gpu_check.sh): NCCL, one GPU per process, 8x the
batch, memory as ``torch.cuda.max_memory_allocated``; writes ``distributed_gpu``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import STEADY_MALLOC, _status_kib, machine, write_section

ROOT = Path(__file__).resolve().parents[1]  # torchrun starts the workers with -m from here

VOCAB, D_MODEL, HEADS, LAYERS, BATCH, LENGTH = 2000, 256, 4, 2, 8, 64


def worker(strategy: str, method: str, head: str, steps: int, out: str, cuda: bool) -> None:
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel

    from complement.training import CotStep, LinearLogits

    class SmallLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, D_MODEL)
            self.layers = nn.ModuleList(
                nn.TransformerEncoderLayer(D_MODEL, HEADS, 4 * D_MODEL, dropout=0.0, batch_first=True)
                for _ in range(LAYERS)
            )
            self.head = nn.Linear(D_MODEL, VOCAB)
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(LENGTH), persistent=False)

        def forward(self, tokens):
            hidden = self.embed(tokens)
            for layer in self.layers:
                hidden = layer(hidden, src_mask=self.mask, is_causal=True)
            return hidden

    dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(0)
    model = SmallLM().to(device)
    inner = model
    if strategy == "fsdp2":
        for module in (model.embed, *model.layers, model.head):
            fully_shard(module)
        fully_shard(model)
        wrapped: nn.Module = model
    else:
        wrapped = DistributedDataParallel(model)
    optimizer = torch.optim.Adam(wrapped.parameters(), lr=1e-3)

    def logits_and_target(m, batch):
        tokens, target = batch
        hidden = m(tokens)
        return (LinearLogits(hidden, inner.head) if head == "linear" else inner.head(hidden)), target

    cot = CotStep(wrapped, optimizer, mode="alternate" if method == "cot" else "off",
                  logits_and_target=logits_and_target)  # fmt: skip
    g = torch.Generator().manual_seed(rank)
    rows = BATCH * (8 if cuda else 1)
    batch = tuple(torch.randint(0, VOCAB, (rows, LENGTH), generator=g).to(device) for _ in range(2))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM)
        before = _status_kib("VmRSS") / 1024
    times = []
    for step in range(3 + steps):
        dist.barrier()
        start = time.perf_counter()
        cot.step(batch)
        if cuda:
            torch.cuda.synchronize()
        dist.barrier()
        if step >= 3:
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if cuda else _status_kib("VmHWM") / 1024) - before
    parameters = sum(p.numel() for p in model.parameters())
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, {"step_s": statistics.median(times), "peak_mib": peak, "params": parameters})
    if rank == 0:
        Path(out).write_text(json.dumps(gathered))
    dist.barrier()  # no rank tears gloo down while another still uses it
    dist.destroy_process_group()


def launch(strategy: str, method: str, head: str, steps: int, cuda: bool) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        out = os.path.join(tmp, "result.json")
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-addr=127.0.0.1",
                   f"--master-port={port}", "-m", "benchmarks.bench_distributed", "--worker", strategy, method, head,
                   str(steps), out, "cuda" if cuda else "cpu"]  # fmt: skip
        env = {**os.environ, **STEADY_MALLOC, "OMP_NUM_THREADS": "1"}
        for attempt in range(3):  # gloo's rendezvous on a just-freed port fails now and then
            result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
            if result.returncode == 0:
                return json.loads(Path(out).read_text())
            print(f"launch failed (attempt {attempt + 1}): {result.stderr[-1500:]}", file=sys.stderr)
        raise RuntimeError(f"{strategy} {method} {head}: 3 launches failed")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6], sys.argv[7] == "cuda")
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--cuda", action="store_true", help="NCCL on 2 GPUs instead of gloo on CPU")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    arms = [(strategy, head, method) for strategy in ("ddp", "fsdp2") for head in ("logits", "linear")
            for method in ("ce", "cot")]  # fmt: skip
    samples: dict[tuple, list[list[dict]]] = {arm: [] for arm in arms}
    for rep in range(args.reps):
        for strategy, head, method in arms:
            samples[(strategy, head, method)].append(launch(strategy, method, head, args.steps, args.cuda))
        print(f"rep {rep + 1}/{args.reps} done", flush=True)

    def step_time(arm) -> float:
        return statistics.median(max(rank["step_s"] for rank in run) for run in samples[arm])

    def peak(arm) -> float:
        return statistics.median(max(rank["peak_mib"] for rank in run) for run in samples[arm])

    params = samples[arms[0]][0][0]["params"]
    where = "2 GPUs, NCCL" if args.cuda else "CPU, 2 gloo processes"
    memory = "peak CUDA memory allocated" if args.cuda else "peak resident memory"
    lines = [
        f"## COT under DDP and FSDP2 ({where})",
        "",
        f"Command: `python -m benchmarks.bench_distributed --reps {args.reps} --steps {args.steps}"
        f"{' --cuda' if args.cuda else ''}`. Machine: {machine()}; one thread per process. Model: a {LAYERS}-layer "
        f"causal transformer, d {D_MODEL}, vocabulary {VOCAB:,} ({params / 1e6:.1f}M parameters), "
        f"{BATCH * (8 if args.cuda else 1)} sequences of {LENGTH} tokens per rank, Adam, "
        f"through `CotStep`. Step: median over {args.steps} steps after 3 warm-up steps, the slower rank; "
        f"memory: the larger rank's {memory} above its level before the first step; medians over "
        f"{args.reps} launches. COT makes two forward/backward passes and two gradient reductions (DDP all-reduce, "
        "FSDP2 reduce-scatter plus parameter all-gathers) per step, CE one.",
        "",
        "| strategy | head | CE step (ms) | COT step (ms) | COT / CE time | CE peak (MiB) | COT peak (MiB) "
        "| COT / CE memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for strategy in ("ddp", "fsdp2"):
        for head in ("logits", "linear"):
            ce, cot = (strategy, head, "ce"), (strategy, head, "cot")
            times, peaks = f"{step_time(cot) / step_time(ce):.2f}×", f"{peak(cot) / peak(ce):.2f}×"
            lines.append(
                f"| {strategy} | {head} | {step_time(ce) * 1e3:.0f} | {step_time(cot) * 1e3:.0f} | {times} | "
                f"{peak(ce):.0f} | {peak(cot):.0f} | {peaks} |"
            )
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        name = "distributed_gpu" if args.cuda else "distributed"
        write_section(name, body)
        print(f"wrote docs/benchmarks.md (section {name!r})")


if __name__ == "__main__":
    main()
