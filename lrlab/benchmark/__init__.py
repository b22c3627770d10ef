"""Throughput of lrlab's vmapped sweep against a loop of single runs and a PyTorch loop.

  lrlab bench [--ks 1,8,64,512] [--steps 200] [--quick]
  python scripts/benchmark.py ...      # the same, from a source checkout

Every leg trains the same MLP (40 -> 100 -> 100 -> 10, ReLU) on MNIST-1D's
standardized training set, from the same initial parameters and with the same
minibatch order (batch 100), with SGD (momentum 0.9) at K log-spaced learning
rates in [1e-3, 1]; every leg evaluates the training loss at the start and the
validation and test losses at the start and the end, nothing in between.

Legs (``--legs``):

- ``sweep``: ``lrlab.sweep.run`` (falls back to ``vmap_sharded`` if absent, and says so).
- ``vmap``: ``jax.jit(jax.vmap(make_train_fn(...)))`` over all K rates, one chunk, one device.
- ``vmap_sharded``: the same program with the member axis sharded over every device.
- ``sequential``: ``lrlab.train``'s run jitted once with the rate traced, called K times.
- ``torch``: K ``nn.Sequential`` MLPs trained one after another with ``torch.optim.SGD``.
- ``torch_func``: the K MLPs as one ``torch.func`` ensemble (``stack_module_state``,
  ``vmap(grad(...))`` over ``functional_call``, the shared minibatch); ``torch_compiled``:
  its step under ``torch.compile``. The report gives the sweep's ratio to the best PyTorch leg.

``--chunks`` runs the chunk-size benchmark instead (:mod:`~lrlab.benchmark.chunks`):
``chunk_size="auto"`` against fixed chunk sizes on the MNIST-1D MLP and CNN.
``--tasks mnist1d-mlp,lm-transformer,mnist1d-resnet,digits-resnet`` runs the per-task
benchmark (:mod:`~lrlab.benchmark.tasks`, :mod:`~lrlab.benchmark.tasks_report`): the sweep
against the loop of jitted runs and the matmul ceiling, per task, at K = 64, each model-step's
FLOPs counted from its shapes (:mod:`~lrlab.benchmark.flops`).

The CPU's cores are exposed to JAX as devices (``--devices``, default: every
core), so the sweep can shard over them; the sequential loop and ``vmap`` use
one device, as a user's loop would. Each (leg, K) runs in a fresh subprocess so
its peak memory is its own (``--in-process`` to skip that). Writes
``report.json``, ``report.md`` and ``throughput.png`` under ``--out``.

Modules: :mod:`~lrlab.benchmark.workload` (what is trained, :class:`Config`),
:mod:`~lrlab.benchmark.legs` (the legs and their timing),
:mod:`~lrlab.benchmark.torch_legs` (the PyTorch legs), :mod:`~lrlab.benchmark.chunks`
(the chunk-size benchmark),
:mod:`~lrlab.benchmark.machine` (the matmul ceiling and the step's breakdown),
:mod:`~lrlab.benchmark.probes` (memory, compile time, load),
:mod:`~lrlab.benchmark.runner` (the run, subprocesses, ratios and targets),
:mod:`~lrlab.benchmark.report` (Markdown and the figure) and
:mod:`~lrlab.benchmark.command` (the command line). None touches a JAX device
when imported, so the command line sets XLA's host device count first.
"""

from lrlab.benchmark.command import config_from_args as config_from_args
from lrlab.benchmark.command import main as main
from lrlab.benchmark.command import parse_args as parse_args
from lrlab.benchmark.legs import measure_leg as measure_leg
from lrlab.benchmark.machine import BREAKDOWN as BREAKDOWN
from lrlab.benchmark.machine import OPERAND_LAYOUTS as OPERAND_LAYOUTS
from lrlab.benchmark.machine import breakdown as breakdown
from lrlab.benchmark.machine import linear_sgd_step as linear_sgd_step
from lrlab.benchmark.machine import matmul_ceiling as matmul_ceiling
from lrlab.benchmark.report import markdown as markdown
from lrlab.benchmark.report import write_report as write_report
from lrlab.benchmark.runner import run_benchmark as run_benchmark
from lrlab.benchmark.runner import summarize as summarize
from lrlab.benchmark.workload import LAYERS as LAYERS
from lrlab.benchmark.workload import LEGS as LEGS
from lrlab.benchmark.workload import Config as Config
from lrlab.benchmark.workload import analytic_flops as analytic_flops
from lrlab.benchmark.workload import xla_flags as xla_flags

__all__ = [
  "BREAKDOWN",
  "LAYERS",
  "LEGS",
  "OPERAND_LAYOUTS",
  "Config",
  "analytic_flops",
  "breakdown",
  "config_from_args",
  "linear_sgd_step",
  "main",
  "markdown",
  "matmul_ceiling",
  "measure_leg",
  "parse_args",
  "run_benchmark",
  "summarize",
  "write_report",
  "xla_flags",
]
