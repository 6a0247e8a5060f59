"""One training run: its folder (runs.py: RunFolder), what a checkpoint says about it (run_meta.py:
RunMeta and its schema), files back into models and data (loading.py: load_model, load_run), its
settings (config.py: TrainConfig) and its loop (train.py: prepare, fit, train_epoch), and its first
steps measured (diagnose.py). The training step itself is optim/step.py."""
