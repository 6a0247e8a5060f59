"""One training run: its folder and what a checkpoint says about it (runs.py: RunFolder, RunMeta,
load_model), its settings and its loop (train.py: TrainConfig, prepare, fit, train_epoch), and its
first steps measured (diagnose.py). The training step itself is optim/step.py."""
