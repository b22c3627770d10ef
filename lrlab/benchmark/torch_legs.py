"""The benchmark's PyTorch legs, training the members the lrlab legs train: a loop of eager runs
(``torch``), and the ensemble a PyTorch user who sweeps writes (``torch_func``): the members'
parameters stacked (``torch.func.stack_module_state``) and their gradients taken at once by
``vmap(grad(...))`` over ``functional_call`` with the minibatch shared by all members, then
the same SGD-momentum arithmetic on the stacked tensors; ``torch_compiled`` is that step under
``torch.compile``."""

from lrlab.benchmark.workload import LAYERS, MOMENTUM, Config, minibatch_order, run_key

NAMES = ("dense_0", "dense_1", "head")


def _setup(task, config: Config):
  """``(model, order, splits)``: a function building the MLP at the task's initial parameters
  (``run_key``), the minibatch order and the splits, as torch tensors."""
  import jax
  import numpy as np
  import torch
  from torch import nn

  torch.set_num_threads(config.threads)
  init_key, data_key = jax.random.split(run_key(config.seed))
  params = jax.tree.map(np.asarray, task.init(init_key)[0])
  order = minibatch_order(data_key, task.num_train, config.batch_size, config.steps)
  order = torch.tensor(order, dtype=torch.int64)
  splits = {
    s: (torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y), dtype=torch.int64))
    for s, (x, y) in ((s, task.split(s)) for s in ("train", "val", "test"))
  }

  def model():
    layers = [nn.Linear(i, o) for i, o in LAYERS]
    with torch.no_grad():
      for layer, name in zip(layers, NAMES, strict=True):
        layer.weight.copy_(torch.tensor(params[name]["weight"]))  # both (out, in)
        layer.bias.copy_(torch.tensor(params[name]["bias"]))
    return nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])

  return model, order, splits


def torch_leg(task, lrs, config: Config):
  """``(warm_up, run, False, 1, info)``: K PyTorch runs, one after another (eager, no compile)."""
  import numpy as np
  import torch
  from torch.nn import functional as F

  model, order, splits = _setup(task, config)
  x_train, y_train = splits["train"]

  def evaluate(net, splits_):
    with torch.no_grad():
      return [F.cross_entropy(net(splits[s][0]), splits[s][1]).item() for s in splits_]

  def one_run(lr: float, steps: int) -> float:
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM)
    evaluate(net, ("train", "val", "test"))
    for t in range(steps):
      batch = order[t]
      loss = F.cross_entropy(net(x_train[batch]), y_train[batch])
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
    return evaluate(net, ("val", "test"))[0]

  warm_up = lambda: one_run(float(lrs[0]), min(config.steps, 10))
  run = lambda: np.array([one_run(float(lr), config.steps) for lr in lrs])
  note = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
  return warm_up, run, False, 1, {"note": note, "torch_threads": torch.get_num_threads()}


def torch_func_leg(task, lrs, config: Config, *, compiled: bool = False):
  """``(warm_up, run, False, 1, info)``: the K members as one ``torch.func`` ensemble.

  Each step takes every member's gradient on the shared minibatch with
  ``vmap(grad(loss), in_dims=(0, None, None))`` over the stacked parameters,
  then applies ``torch.optim.SGD``'s momentum arithmetic to the stacks:
  ``b <- momentum * b + g`` (``b = g`` at the first step), ``p <- p - lr_k * b``.
  With ``compiled``, the step runs under ``torch.compile`` (its compilation is
  in the warm-up, the row's ``first_call_s``); if compiling fails, the
  warm-up raises and :func:`lrlab.benchmark.measure_leg` skips the leg, saying why.
  """
  import copy

  import numpy as np
  import torch
  from torch.func import functional_call, grad, stack_module_state, vmap
  from torch.nn import functional as F

  model, order, splits = _setup(task, config)
  x_train, y_train = splits["train"]
  net = model()
  base = copy.deepcopy(net).to("meta")  # a stateless template for functional_call
  k = len(lrs)

  def loss_of(params, x, y):
    return F.cross_entropy(functional_call(base, params, (x,)), y)

  gradients = vmap(grad(loss_of), in_dims=(0, None, None))

  def step(params, buffers, rates, x, y):
    grads = gradients(params, x, y)
    for name, g in grads.items():
      buffers[name].mul_(MOMENTUM).add_(g)
      params[name].sub_(rates.view(-1, *[1] * (g.dim() - 1)) * buffers[name])

  step_fn = torch.compile(step) if compiled else step
  losses = vmap(loss_of, in_dims=(0, None, None))

  def evaluate(params, names):
    with torch.no_grad():
      return [losses(params, *splits[s]) for s in names]

  def ensemble(rates, steps):
    params, _ = stack_module_state([net] * len(rates))
    params = {n: p.detach().clone() for n, p in params.items()}
    rates = torch.tensor(np.asarray(rates), dtype=torch.float32)
    evaluate(params, ("train", "val", "test"))
    with torch.no_grad():  # the first step's buffer is its gradient, as torch.optim.SGD's
      buffers = {n: torch.zeros_like(p) for n, p in params.items()}
      for t in range(steps):
        batch = order[t]
        step_fn(params, buffers, rates, x_train[batch], y_train[batch])
    return evaluate(params, ("val", "test"))[0].numpy()

  warm_up = lambda: ensemble(lrs, min(config.steps, 10))
  run = lambda: ensemble(lrs, config.steps)
  how = "torch.compile'd step" if compiled else "eager"
  note = (
    f"torch {torch.__version__} torch.func ensemble of {k} ({how}), "
    f"{torch.get_num_threads()} threads"
  )
  return warm_up, run, False, 1, {"note": note, "torch_threads": torch.get_num_threads()}
