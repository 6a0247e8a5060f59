"""Optimisers (SGD with momentum and weight decay, the paper's; its layer-wise form LARS, the
default of `train`; Adam) and learning-rate schedules.

`SGD` follows torch.optim.SGD exactly (so a learner's numbers match PyTorch's):
    g   = grad + weight_decay * w          (L2 weight decay, on biases too, as the Caffe recipe does)
    buf = momentum * buf + g               (buf = g on the first step)
    w   = w - lr * buf
`LARS` (You, Gitman, Ginsburg 2017) is the same SGD with momentum and weight decay, with one change:
each layer's learning rate is scaled to that layer's size,
    local = ||w_layer|| / (||grad_layer|| + weight_decay * ||w_layer||)
    buf   = momentum * buf + lr * local * g
    w     = w - buf
so with lr = 0.001 every layer moves about 0.1% of its own size per step (up to 1% as momentum
builds), whatever the scale of its gradient. SqueezeNet needs that: at initialisation conv10's
gradient is ~100x larger relative to its weights than the Fire modules' (lesson 11).
`Adam` follows torch.optim.Adam (weight decay as an L2 term added to the gradient):
    m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,  w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
Schedules (paper's Caffe solver: "poly" with power 1, i.e. a linear decay to zero), with an
optional linear warm-up from lr / warmup_steps, and cosine as an alternative.
"""
from __future__ import annotations

import math

import numpy as np

SCHEDULES = ("poly", "cosine", "constant")


class SGD:
    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD got no parameters to optimise")
        if lr <= 0 or not math.isfinite(lr):
            raise ValueError(f"learning rate must be a positive number, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.buffers: list[np.ndarray | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad.fill(0)

    def step(self) -> None:
        for k, p in enumerate(self.params):
            g = p.grad
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            if self.momentum:
                if self.buffers[k] is None:
                    self.buffers[k] = np.array(g, dtype=p.data.dtype, copy=True)
                else:
                    self.buffers[k] *= self.momentum
                    self.buffers[k] += g
                g = self.buffers[k]
            p.data -= self.lr * g

    def state_dict(self) -> dict[str, np.ndarray]:
        """The momentum buffers, by parameter position ('0', '1', ...); missing ones are not stored."""
        return {str(k): b.copy() for k, b in enumerate(self.buffers) if b is not None}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            k = int(key)
            if not 0 <= k < len(self.params) or np.shape(value) != self.params[k].data.shape:
                raise ValueError(f"SGD.load_state_dict: buffer {key} of shape {np.shape(value)} does not fit "
                                 f"the parameters")
            self.buffers[k] = np.array(value, dtype=self.params[k].data.dtype, copy=True)


def named_layer_groups(model) -> list[tuple[str, list]]:
    """[(layer name, [its weight, its bias])] for every module that owns parameters directly."""
    groups = []
    for name, module in model.named_modules():
        own = [p for p in module._parameters.values() if p is not None]
        if own:
            groups.append((name, own))
    return groups


def layer_groups(model) -> list[list]:
    """The parameters of `model` grouped by the module that owns them: [[conv1.weight, conv1.bias], ...].

    A layer's weight and bias are one group, so LARS scales them together."""
    return [params for _, params in named_layer_groups(model)]


class LARS(SGD):
    """SGD with momentum whose step, for each layer, is scaled to the size of that layer's weights.

    layers: a list of parameter lists, one per layer (`layer_groups(model)`). lr is the fraction of
    its own size a layer moves per step before momentum (0.001 = 0.1%). A layer whose weights or
    gradient are all zero gets plain SGD's step (local rate 1).
    """

    def __init__(self, layers, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
        self.layers = [list(layer) for layer in layers]
        super().__init__([p for layer in self.layers for p in layer], lr, momentum, weight_decay)

    def local_rate(self, layer) -> float:
        """||w|| / (||grad|| + weight_decay * ||w||) over the layer's parameters together."""
        w_norm = math.sqrt(sum(float(np.square(p.data, dtype=np.float64).sum()) for p in layer))
        g_norm = math.sqrt(sum(float(np.square(p.grad, dtype=np.float64).sum()) for p in layer))
        if w_norm == 0.0 or g_norm == 0.0:
            return 1.0
        return w_norm / (g_norm + self.weight_decay * w_norm)

    def step(self) -> None:
        k = 0
        for layer in self.layers:
            rate = self.lr * self.local_rate(layer)
            for p in layer:
                g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
                if self.buffers[k] is None or not self.momentum:
                    self.buffers[k] = np.asarray(rate * g, dtype=p.data.dtype)
                else:
                    self.buffers[k] *= self.momentum
                    self.buffers[k] += (rate * g).astype(p.data.dtype, copy=False)
                p.data -= self.buffers[k]
                k += 1


class Adam:
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam got no parameters to optimise")
        if lr <= 0 or not math.isfinite(lr):
            raise ValueError(f"learning rate must be a positive number, got {lr}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), tuple(betas), float(eps), float(weight_decay)
        self.t = 0
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad.fill(0)

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1 ** self.t)
            v_hat = v / (1 - b2 ** self.t)
            p.data -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.data.dtype, copy=False)

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {"t": np.array(self.t)}
        state.update({f"m.{k}": m.copy() for k, m in enumerate(self.m)})
        state.update({f"v.{k}": v.copy() for k, v in enumerate(self.v)})
        return state

    def load_state_dict(self, state: dict) -> None:
        if "t" not in state:
            raise ValueError("Adam.load_state_dict: no step count 't' (is this an SGD state?)")
        for k, p in enumerate(self.params):
            for name, store in (("m", self.m), ("v", self.v)):
                value = state.get(f"{name}.{k}")
                if value is None or np.shape(value) != p.data.shape:
                    raise ValueError(f"Adam.load_state_dict: {name}.{k} is missing or does not fit parameter {k}")
                store[k] = np.array(value, dtype=p.data.dtype, copy=True)
        self.t = int(state["t"])


OPTIMIZERS = {"lars": LARS, "sgd": SGD, "adam": Adam}


def make_optimizer(name: str, model, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """`lars` (SGD with momentum, layer-wise rates), `sgd` (momentum) or `adam`, by name, for `model`."""
    if name == "lars":
        return LARS(layer_groups(model), lr, momentum=momentum, weight_decay=weight_decay)
    if name == "sgd":
        return SGD(model.parameters(), lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(model.parameters(), lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def learning_rate(step: int, total_steps: int, base_lr: float, warmup_steps: int = 0,
                  schedule: str = "poly", power: float = 1.0) -> float:
    """The learning rate for optimiser step `step` (0-based) of `total_steps`.

    Warm-up: base_lr * (step + 1) / warmup_steps for the first warmup_steps steps. Then, with
    progress t going from 0 to 1 over the remaining steps:
    poly: base_lr * (1 - t) ** power; cosine: base_lr * (1 + cos(pi t)) / 2; constant: base_lr.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    t = min(max(t, 0.0), 1.0)
    if schedule == "poly":
        return base_lr * (1.0 - t) ** power
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * t))
    return base_lr
