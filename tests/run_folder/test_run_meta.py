"""A checkpoint's meta against its schema (training/run_meta.py), in process: every key broken in
every way the values below could be written by hand is one ValueError naming the file and that key,
never another exception. (test_hostile_runs.py breaks the same keys through the commands.)"""
import math

import pytest

from tinysqueeze.training.run_meta import RunMeta, check_run_meta

GOOD = {"model": "squeezenet1_1", "classes": ["a", "b", "c"], "class_names": ["A", "B", "C"],
        "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2], "image_size": 32, "epoch": 1, "best_top1": 0.5,
        "generators": {"classifier.0": {}},
        "config": {"data": "synthetic", "seed": 0, "epochs": 3, "synthetic_train": 10, "synthetic_val": 5,
                   "model_args": {}}}


def meta_with(**changes):
    return dict(GOOD, **changes)


def config_with(**changes):
    return dict(GOOD, config=dict(GOOD["config"], **changes))


def meta_without(*keys, config=()):
    meta = {k: v for k, v in GOOD.items() if k not in keys}
    if "config" in meta:
        meta["config"] = {k: v for k, v in GOOD["config"].items() if k not in config}
    return meta


# (the meta, the words the error must hold)
BROKEN = {
    "a list": ([1], "top level is [1], not a JSON object"),
    "no model": (meta_without("model"), "its meta lacks model"),
    "three missing": (meta_without("model", "std", "epoch"), "its meta lacks model, std, epoch"),
    "model empty": (meta_with(model=""), "model is '', not a model name"),
    "model a number": (meta_with(model=3), "model is 3"),
    "classes a number": (meta_with(classes=7), "classes is 7, not a list of 2 to"),
    "classes text": (meta_with(classes="ab"), "classes is 'ab'"),
    "one class": (meta_with(classes=["a"]), "classes is ['a']"),
    "a class a number": (meta_with(classes=["a", 1]), "classes is ['a', 1]"),
    "a class twice": (meta_with(classes=["a", "a", "b"]), "naming a class twice"),
    "too many classes": (meta_with(classes=[str(i) for i in range(200_001)]), "classes is ['0', '1'"),
    "names short": (meta_with(class_names=["A"]), "class_names is ['A'], not a list of 3 names"),
    "names a number": (meta_with(class_names=5), "class_names is 5, not a list of 3 names"),
    "names for classes a number": (meta_with(classes=7, class_names=["A"]), "classes is 7"),
    "mean of 2": (meta_with(mean=[1, 2]), "mean is [1, 2], not 3 finite numbers"),
    "mean nan": (meta_with(mean=[1, 2, math.nan]), "mean is [1, 2, nan]"),
    "mean a bool": (meta_with(mean=[1, 2, True]), "mean is [1, 2, True]"),
    "std inf": (meta_with(std=[1, 2, math.inf]), "std is [1, 2, inf]"),
    "image_size huge": (meta_with(image_size=10 ** 9), "image_size is 1000000000, not a whole number of pixels"),
    "image_size tiny": (meta_with(image_size=2), "image_size is 2"),
    "image_size a bool": (meta_with(image_size=True), "image_size is True"),
    "image_size a float": (meta_with(image_size=32.0), "image_size is 32.0"),
    "epoch a float": (meta_with(epoch=1.0), "epoch is 1.0, not a whole number"),
    "epoch text": (meta_with(epoch="1"), "epoch is '1'"),
    "best_top1 text": (meta_with(best_top1="x"), "best_top1 is 'x', not a number"),
    "best_top1 nan": (meta_with(best_top1=math.nan), "best_top1 is nan"),
    "best_top1 null": (meta_with(best_top1=None), "best_top1 is None"),
    "generators a list": (meta_with(generators=[]), "generators is []"),
    "a generator a number": (meta_with(generators={"a": 1}), "generators is {'a': 1}"),
    "config a list": (meta_with(config=[]), "config is [], not a JSON object of the run's settings"),
    "config null": (meta_with(config=None), "config is None"),
    "config without data": (meta_without(config=("data",)), "its meta's config lacks data"),
    "config without two": (meta_without(config=("seed", "synthetic_val")), "config lacks seed, synthetic_val"),
    "data a number": (config_with(data=3), "config data is 3, not text"),
    "seed a bool": (config_with(seed=True), "config seed is True, not a whole number"),
    "seed a float": (config_with(seed=1.0), "config seed is 1.0"),
    "epochs text": (config_with(epochs="3"), "config epochs is '3'"),
    "model_args a list": (config_with(model_args=[]), "config model_args is [], not a JSON object"),
    "no classes nor config": (meta_without("config", "classes"), "its meta lacks classes, config"),
}


@pytest.mark.parametrize("meta, says", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_meta_is_one_value_error_naming_the_key(meta, says):
    with pytest.raises(ValueError) as refused:
        check_run_meta(meta, "runs/x/last.npz")
    message = str(refused.value)
    assert message.startswith("runs/x/last.npz is damaged or not a tinysqueeze checkpoint: its meta")
    assert says in message and len(message) < 300


@pytest.mark.parametrize("meta", [GOOD, meta_without("class_names", "best_top1", "generators"),
                                  meta_with(class_names=None), meta_without(config=("model_args",))],
                         ids=["every key", "the optional keys left out", "class_names null", "no model_args"])
def test_a_whole_meta_is_read_with_the_defaults_of_what_it_leaves_out(meta):
    run = RunMeta.from_dict(meta)
    assert run.class_names == (meta.get("class_names") or meta["classes"])
    assert run.best_top1 == meta.get("best_top1", -1.0) and run.generators == meta.get("generators", {})
    assert RunMeta.from_dict(run.to_dict()).to_dict() == run.to_dict()
