"""FLOPs of a training step counted from its shapes: every matrix product and convolution in the
step's jaxpr, the way :func:`lrlab.benchmark.analytic_flops` counts the MLP's by hand.

A model-step's FLOPs are what a benchmark divides by to get GFLOP/s and a fraction of the matmul
ceiling. :func:`matmul_flops` walks a function's jaxpr (into ``jit``, ``custom_jvp``/``custom_vjp``
calls, ``scan`` bodies times their length, the costliest branch of a ``cond``) and adds

- ``dot_general``: ``2 * batch * m * n * k`` (the product's multiply-adds, twice);
- ``conv_general_dilated``: ``2 * prod(out) * (in features per group) * prod(window) /
  prod(lhs_dilation)``: each output element's multiply-adds over its window, less the taps that
  fall on the zeros a dilated input (the input gradient of a strided convolution) interleaves.

Elementwise work (biases, activations, normalisation, softmax, the optimizer) is left out, as
the MLP's hand count leaves it out: a few percent of these models' steps. XLA's own count
(``compiled.cost_analysis()["flops"]``, elementwise work included) is reported beside it.
"""

import math
from collections.abc import Callable
from typing import Any


def _conv_flops(eqn) -> float:
  params = eqn.params
  out = eqn.outvars[0].aval.shape
  rhs = eqn.invars[1].aval.shape
  spec = params["dimension_numbers"].rhs_spec  # (out feature, in feature, *spatial)
  window = math.prod(rhs[d] for d in spec[2:])
  dilation = math.prod(params.get("lhs_dilation") or (1,))
  return 2.0 * math.prod(out) * rhs[spec[1]] * window / dilation


def _dot_flops(eqn) -> float:
  (lhs_contract, _), _ = eqn.params["dimension_numbers"]
  lhs = eqn.invars[0].aval.shape
  out = eqn.outvars[0].aval.shape  # batch dims, then lhs's free dims, then rhs's
  return 2.0 * math.prod(out) * math.prod(lhs[d] for d in lhs_contract)


def _sub_jaxprs(eqn):
  """``(jaxpr, multiplicity)`` of each sub-program of ``eqn``; a ``cond`` gives its costliest."""
  from jax.extend import core

  name = eqn.primitive.name
  if name == "cond":
    branches = [b.jaxpr for b in eqn.params["branches"]]
    return [(max(branches, key=_jaxpr_flops), 1)]
  times = eqn.params["length"] if name == "scan" else 1
  found = []
  for value in eqn.params.values():
    for item in value if isinstance(value, tuple | list) else (value,):
      if isinstance(item, core.ClosedJaxpr):
        found.append((item.jaxpr, times))
      elif isinstance(item, core.Jaxpr):
        found.append((item, times))
  return found


def _jaxpr_flops(jaxpr) -> float:
  total = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      total += _dot_flops(eqn)
    elif name == "conv_general_dilated":
      total += _conv_flops(eqn)
    elif name == "while":
      raise ValueError(
        "fn must not hold a while loop: its trip count is unknown to a count of FLOPs "
        "from shapes; got one in its jaxpr."
      )
    else:
      total += sum(times * _jaxpr_flops(sub) for sub, times in _sub_jaxprs(eqn))
  return total


def matmul_flops(fn: Callable, *args: Any) -> float:
  """FLOPs of the matrix products and convolutions of ``fn(*args)``, from its jaxpr's shapes.

  Returns:
    ``sum(2 * multiply-adds)`` over every ``dot_general`` and ``conv_general_dilated`` the
    call executes (see the module docstring), a float.

  Raises:
    ValueError: if ``fn`` holds a ``while`` loop (its trip count is unknown).
  """
  import jax

  return _jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def step_flops(task, make_tx, batch_size: int) -> dict[str, float | None]:
  """A training step's FLOPs on ``task``, counted (:func:`matmul_flops`) and by XLA.

  The step is the gradient of the training loss on a minibatch of ``batch_size`` training
  examples and ``make_tx({"lr": 0.1})``'s update; the per-example forward is the evaluation
  loss on one example of each split (what an evaluation pass costs per example).

  Returns:
    ``{"train_step", "eval_example", "xla_train_step"}`` (the last ``None`` where XLA's cost
    analysis gives no count).
  """
  import jax
  import jax.numpy as jnp

  params, model_state = task.init(jax.random.key(0))
  tx = make_tx({"lr": 0.1})
  batch = task.batch(jnp.arange(batch_size))
  key = jax.random.key(1)

  def step(params, state):
    loss = lambda p: task.loss(p, model_state, batch, key)[0]
    grads = jax.grad(loss)(params)
    updates, state = tx.update(grads, state, params)
    return jax.tree.map(lambda p, u: p + u, params, updates), state

  x, y = task.split("val")
  one = (jnp.asarray(x[:1]), jnp.asarray(y[:1]))
  evaluate = lambda params: task.eval_loss(params, model_state, one)
  opt_state = tx.init(params)
  cost = jax.jit(step).lower(params, opt_state).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list | tuple) else cost
  return {
    "train_step": matmul_flops(step, params, opt_state),
    "eval_example": matmul_flops(evaluate, params),
    "xla_train_step": (cost or {}).get("flops"),
  }
