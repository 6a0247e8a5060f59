"""Module, Parameter and Sequential: the contract every layer follows.

Follows PyTorch's `torch.nn.Module` conventions so that a learner's habits carry over:

- `forward(x)` computes the output and keeps in `self.cache` what backward will need
  (`keep_for_backward`). Under `with nn.no_grad():` (as `torch.no_grad()`) a layer keeps nothing, and
  a backward after it says so: inference holds no memory for a backward that will not come.
  `train()`/`eval()` change only what a layer does (dropout drops or passes through), as in PyTorch:
  `model.eval()`, a forward and a backward give the gradients of the network as it predicts.
  Calling the module (`layer(x)`) calls `forward`.
- `backward(dout)` takes the gradient of the loss with respect to the output and returns the
  gradient with respect to the input. It **adds** parameter gradients into `Parameter.grad`
  (as PyTorch does) until `zero_grad()` is called. It never updates weights: that is the
  optimizer's job.
- Children and parameters are registered by attribute assignment, so `named_parameters()`
  yields dotted names (`features.3.squeeze.weight`) and `state_dict()` matches torchvision's keys.
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from typing import Iterator

import numpy as np

_grad_mode = threading.local()          # per thread, as torch.no_grad()


def is_grad_enabled() -> bool:
    """False inside `with no_grad():`, when no layer keeps anything for a backward."""
    return getattr(_grad_mode, "enabled", True)


class no_grad:
    """`with nn.no_grad(): model(x)` (or `@nn.no_grad()` on a function): forwards that keep nothing
    for backward, as torch.no_grad(). For inference: no input, column matrix or argmax is held past a
    layer's forward, so its memory is free for the next layer (lesson 14)."""

    def __enter__(self) -> "no_grad":
        self.previous = is_grad_enabled()
        _grad_mode.enabled = False
        return self

    def __exit__(self, *exc) -> None:
        _grad_mode.enabled = self.previous

    def __call__(self, function):
        @functools.wraps(function)
        def without_grad(*args, **kwargs):
            with no_grad():
                return function(*args, **kwargs)
        return without_grad


class Parameter:
    """A learnable array `data` and the gradient `grad` accumulated into it (same shape, same dtype)."""

    def __init__(self, data: np.ndarray):
        self.data = np.asarray(data)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer and network."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "cache", None)
        object.__setattr__(self, "_last_forward_without_grad", False)   # for kept_for_backward's message

    # -- registration -------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # -- the contract -------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, dout):
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def keep_for_backward(self, cache) -> None:
        """self.cache = cache; under no_grad() nothing is kept (no backward will come)."""
        self.cache = cache if is_grad_enabled() else None
        self._last_forward_without_grad = not is_grad_enabled()

    def kept_for_backward(self):
        """-> self.cache, what the last forward kept; refused, saying why, if it kept nothing."""
        if self.cache is None and not self._last_forward_without_grad:
            raise RuntimeError(f"{type(self).__name__}.backward: no forward has run yet, so there is nothing to go "
                               "back through: call the layer (its forward) first")
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward: the last forward ran under nn.no_grad(), which "
                               "keeps nothing for backward: run the forward outside it")
        return self.cache

    # -- traversal ----------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """Yields (dotted name, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yields (dotted name, Parameter), e.g. ("features.0.weight", ...), in registration order."""
        for name, module in self.named_modules(prefix):
            for pname, param in module._parameters.items():
                yield (f"{name}.{pname}" if name else pname), param

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(p.data.size for p in self.parameters())

    # -- state --------------------------------------------------------------------------
    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = np.zeros_like(p.data)

    def train(self, mode: bool = True) -> "Module":
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def to(self, dtype) -> "Module":
        """Casts every parameter (and its gradient) to `dtype`, e.g. np.float64 for gradient checks."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = p.grad.astype(dtype)
        return self

    def generator_state(self) -> dict | None:
        """The state of this layer's own random generator (Dropout's masks), or None if it has none."""
        return None

    def set_generator_state(self, state: dict) -> None:
        raise ValueError(f"{type(self).__name__} has no random generator to restore")

    def generator_states(self) -> dict:
        """{dotted module name: generator state} of every layer below that draws random numbers: with the
        weights, what a checkpoint must hold for a resumed run to draw the same dropout masks (lesson 13)."""
        states = {}
        for name, module in self.named_modules():
            state = module.generator_state()
            if state is not None:
                states[name] = state
        return states

    def set_generator_states(self, states: dict) -> None:
        """Puts back what `generator_states` returned (names not found here are ignored)."""
        for name, module in self.named_modules():
            if name in states and module.generator_state() is not None:
                module.set_generator_state(states[name])

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """name -> a copy of the parameter's array, with torchvision's dotted names."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict) -> None:
        """Copies arrays into the parameters (keeping each parameter's dtype).

        Refuses, naming the key, a missing key, an unexpected key or a wrongly shaped array;
        nothing is changed unless every key fits.
        """
        own = OrderedDict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems = []
        if missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        for name, p in own.items():
            if name in state and tuple(np.shape(state[name])) != p.data.shape:
                problems.append(
                    f"wrong shape for {name}: got {tuple(np.shape(state[name]))}, expected {p.data.shape}"
                )
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for name, p in own.items():
            p.data = np.array(state[name], dtype=p.data.dtype, copy=True)
            p.grad = np.zeros_like(p.data)

    # -- printing -----------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        children = list(self._modules.items())
        if not children:
            return lines[0] + ")"
        for name, child in children:
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return "\n".join(lines) + "\n)"


class Sequential(Module):
    """Runs children in order; backward runs them in reverse. Children are named "0", "1", ..."""

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            setattr(self, str(index), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def backward(self, dout):
        for module in reversed(self._modules.values()):
            dout = module.backward(dout)
        return dout


def layer_error(layer: Module, message: str) -> ValueError:
    """A ValueError that starts with the layer's own description, e.g. 'Conv2d(3, 96, ...): ...'."""
    return ValueError(f"{type(layer).__name__}({layer.extra_repr()}): {message}")


def check_input(layer: Module, x: np.ndarray, expected: str, ndim: int, channels: int | None = None,
                channel_axis: int = 1):
    """Raises a ValueError naming `layer`, the shape it got and the shape it expects."""
    if not isinstance(x, np.ndarray):
        raise layer_error(layer, f"expected a numpy array of shape {expected}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise layer_error(layer, f"expected input of shape {expected}, got shape {x.shape}")
    if channels is not None and x.shape[channel_axis] != channels:
        raise layer_error(
            layer, f"expected input of shape {expected} with {channels} channels, got shape {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise layer_error(layer, f"expected a floating-point input, got dtype {x.dtype}")
