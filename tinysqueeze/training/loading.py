"""Files back into models and data: a training checkpoint into its model and RunMeta (`load_run`),
any weights file into a model (`load_model`: a checkpoint, `.npz`, PyTorch `.pth` or `.tsq`), and a
run's data prepared as the run prepared it (`data_for`, `loader_for`, `compression_data`).

Every file is read as if someone else had written it: a model is built only once what the file says
about it (its name, its arguments, its class count) has been checked against its weights.
"""
from __future__ import annotations

from pathlib import Path

from ..datasets import SYNTHETIC_SIZES, DataLoader, channel_stats, load_split
from ..datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..formats.checkpoint import is_checkpoint
from ..formats.tsq import is_tsq, read_tsq
from ..formats.weights import load_weights, strip_module_prefix
from ..models import get_model
from ..models.registry import RESERVED_MODEL_ARGS
from .run_meta import RunMeta, read_checkpoint


def load_run(path):
    """-> (model in eval mode, RunMeta, optimizer state) of a training checkpoint."""
    model_state, optimizer_state, meta = read_checkpoint(path)
    if "num_classes" in meta.model_args:
        raise ValueError(f"{path} is damaged: its meta's config model_args set num_classes (the classes do)")
    try:
        model = get_model(meta.model, num_classes=len(meta.classes), **meta.model_args)
        model.load_state_dict(model_state)
    except (ValueError, TypeError) as error:
        args = repr(meta.model_args)
        raise ValueError(f"{path}: its meta's model {meta.model!r} with model_args "
                         f"{args if len(args) <= 60 else args[:57] + '...'} and its weights do not make a model "
                         f"({error})") from None
    return model.eval(), meta, optimizer_state


def load_model(path, model_name: str | None = None, default_model: str | None = None):
    """Any weights file -> (model in eval mode, RunMeta or None).

    A training checkpoint and a `.tsq` file say which model they hold (a `model_name` that names
    another is refused, never silently ignored); an `.npz` of weights or a PyTorch `.pth` does not, so
    `model_name` must, or else `default_model` (sized to the weights' class count).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if is_checkpoint(path):
        model, meta, _ = load_run(path)
        check_named_model(path, meta.model, model_name)
        return model, meta
    if is_tsq(path):
        state, header = read_tsq(path)
        check_named_model(path, header.get("model"), model_name)
        model_name, model_args = header.get("model", model_name), header.get("model_args", {})
        declared = header.get("num_classes")
    else:
        state, model_args, declared = strip_module_prefix(load_weights(path)), {}, None
    model_name = model_name or default_model
    if model_name is None:
        raise ValueError(f"{path} holds weights only: say which model they belong to (--model)")
    num_classes = num_classes_of(state, path)
    if declared is not None and declared != num_classes:
        raise ValueError(f"{path}: its header says {declared!r} classes, its last layer holds {num_classes}: the file "
                         "is damaged")
    if num_classes > MAX_CLASSES_UNCHECKED:   # the class layer's shape is known before the model is built
        last = [k for k in state if k.endswith("weight")][-1]
        expected = get_model(model_name, num_classes=2, **model_args).state_dict().get(last)
        if expected is None:
            raise ValueError(f"{path}: {model_name} has no weight {last}: these are not its weights")
        if state[last].shape != (num_classes, *expected.shape[1:]):
            raise ValueError(f"{path}: its last weight {last} of shape {tuple(state[last].shape)} says {num_classes} "
                             f"classes but does not hold them ({model_name} needs {(num_classes, *expected.shape[1:])}): "
                             "refusing to build a model its weights cannot fill")
    model = get_model(model_name, num_classes=num_classes, **check_model_args(model_args, path))
    model.load_state_dict(state)
    return model.eval(), None


def check_model_args(model_args: dict, path) -> dict:
    """A file's model arguments may not set what the weights themselves say (the class count) or what
    only a fresh model takes (its seed, image_grad)."""
    reserved = sorted(set(model_args) & RESERVED_MODEL_ARGS)
    if reserved:
        raise ValueError(f"{path}: its model arguments set {', '.join(reserved)}, which the weights decide: "
                         "the file is damaged or was not written by tinysqueeze")
    return model_args


def check_named_model(path, holds: str | None, named: str | None) -> None:
    """Refuse a model named by the user (--model) that is not the one a self-describing file holds."""
    if named is not None and holds is not None and named != holds:
        raise ValueError(f"{path} holds {holds}, not {named}: leave out --model (the file says which model it is)")


# A model of more classes is built only after its class layer's shape is checked against the weights, so a
# small file cannot make it allocate what its weights do not fill (at most 41 million weights more than the
# same model of 2 classes: AlexNet's last layer of 4096 inputs).
MAX_CLASSES_UNCHECKED = 10_000


def num_classes_of(state: dict, path="the weights") -> int:
    """The number of classes a state_dict was trained for: the rows of its last weight."""
    weights = [k for k in state if k.endswith("weight")]
    if not weights or len(getattr(state[weights[-1]], "shape", ())) < 1:
        raise ValueError(f"{path} has no weight array (a key ending in 'weight', with rows) to count its classes "
                         "by: not the weights of a model")
    return int(state[weights[-1]].shape[0])


def data_for(meta: RunMeta, split: str, data: str | None = None, progress: bool = True):
    """The `split` ("train" or "val") of the run's dataset (or of `data`), checked to have its classes."""
    data = data or meta.data
    dataset = load_split(data, split, meta.image_size, seed=meta.seed, synthetic_sizes=meta.synthetic_sizes,
                         progress=progress)
    if dataset.classes != meta.classes:
        raise ValueError(f"{data} has classes {dataset.classes[:5]}..., the checkpoint was trained on "
                         f"{meta.classes[:5]}...")
    return dataset


def loader_for(meta: RunMeta, dataset, batch_size: int, train: bool = False) -> DataLoader:
    """Batches of `dataset` prepared as the run prepared its own (crop size, mean, std)."""
    return DataLoader(dataset, min(batch_size, len(dataset)) if train else batch_size, meta.image_size, train,
                      meta.mean, meta.std, seed=0)


def compression_data(meta: RunMeta | None, data: str | None, finetune_epochs: int, image_size: int,
                     batch_size: int):
    """(train loader, val loader) for compressing a model, or (None, None) when there is nothing to
    fine-tune or measure. A training run's own data, crop and statistics when `meta` is given
    (fine-tuning defaults to its dataset); otherwise `data` at `image_size` with ImageNet's statistics
    (the synthetic set's own)."""
    if data is None and meta is not None and finetune_epochs:
        data = meta.data
    if not data:
        if finetune_epochs:
            raise ValueError("--finetune-epochs needs --data (the images to fine-tune and evaluate on)")
        return None, None
    if meta is None:
        config = {"data": data, "seed": 0, "synthetic_train": SYNTHETIC_SIZES[0], "synthetic_val": SYNTHETIC_SIZES[1]}
        meta = RunMeta("", [], [], [], [], image_size, config)
        train = load_split(data, "train", image_size)
        meta.classes = train.classes
        meta.mean, meta.std = channel_stats(train.images) if data == "synthetic" else (IMAGENET_MEAN, IMAGENET_STD)
    else:
        train = data_for(meta, "train", data)
    val = data_for(meta, "val", data)
    return loader_for(meta, train, batch_size, train=True), loader_for(meta, val, 100)
