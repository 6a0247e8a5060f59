"""Using a trained (or fresh) model: measure it (evaluate.py: top-1, top-5, confusion, silent
classes; gradcheck.py: its backward against finite differences), ask it (predict.py), and draw it
(plots.py: curves, confusion matrix; pictures.py: the lessons' figures)."""
