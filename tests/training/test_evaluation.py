"""Evaluation: top-k, recall per class, silent classes, and the same answer in train or eval mode."""
import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.evaluation.evaluate import topk_correct


def test_topk():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05]])
    assert topk_correct(logits, np.array([1, 2]), 1) == 1
    assert topk_correct(logits, np.array([1, 2]), 2) == 1
    assert topk_correct(logits, np.array([1, 2]), 5) == 2


def test_evaluate_is_the_same_whether_the_model_was_left_in_train_or_eval_mode():
    from tinysqueeze.datasets import ArrayDataset, DataLoader
    from tinysqueeze.models import squeezenet1_1
    from tinysqueeze.evaluation.evaluate import evaluate
    x_uint8 = np.random.default_rng(0).integers(0, 256, size=(20, 3, 36, 36), dtype=np.uint8)
    data = ArrayDataset(x_uint8, np.arange(20) % 4, ["a", "b", "c", "d"], "random")
    loader = DataLoader(data, 8, 32, False, (0.5,) * 3, (0.25,) * 3)
    model = squeezenet1_1(num_classes=4, seed=0)
    model.classifier[1].bias.data[:] = 0.5      # every class alive, so dropout would change the logits
    left_in_eval = evaluate(model.eval(), loader, 4)
    left_in_train = evaluate(model.train(), loader, 4)
    assert left_in_train["loss"] == left_in_eval["loss"]
    np.testing.assert_array_equal(left_in_train["confusion"], left_in_eval["confusion"])


def test_evaluate_reports_recall_per_class_and_silent_classes():
    from tinysqueeze.datasets import ArrayDataset, DataLoader
    from tinysqueeze.evaluation.evaluate import evaluate

    class FixedScores(nn.Module):
        """Scores, through a final ReLU as SqueezeNet's: class 0 for images 0-3, class 1 for images
        4-5, class 2 never above zero."""
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(1, 3)         # stands for conv10 (its weights are not used)
            self.relu = nn.ReLU()

        def forward(self, x):
            index = np.rint(x[:, 0, 0, 0] * 255).astype(int)     # the image's number, planted below
            logits = np.full((len(x), 3), -1.0)
            logits[index < 4, 0] = 1.0
            logits[index >= 4, 1] = 1.0
            return self.relu(logits)

    images = np.zeros((6, 3, 4, 4), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(6)                         # normalised (mean 0, std 1) to i / 255
    labels = np.array([0, 0, 1, 2, 1, 2])
    loader = DataLoader(ArrayDataset(images, labels, ["a", "b", "c"], "planted"), 6, 4, False, (0, 0, 0),
                        (1, 1, 1))
    result = evaluate(FixedScores(), loader, 3)
    # by hand: class a: images 0, 1 -> predicted a, a (2/2); class b: images 2 (-> a), 4 (-> b): 1/2;
    # class c: images 3 (-> a), 5 (-> b): 0/2. Class c's score is 0 on every image: silent.
    np.testing.assert_allclose(result["recall"], [1.0, 0.5, 0.0])
    assert list(result["silent"]) == [2]


def test_the_liveness_check_applies_only_where_scores_pass_a_relu():
    """SqueezeNet's scores come out of a ReLU, so a score of 0 everywhere means a dead class.
    AlexNet's come straight out of a Linear layer: all-negative scores are normal there, and must
    neither warn nor stop a run."""
    from tinysqueeze.models import alexnet, squeezenet1_1
    from tinysqueeze.evaluation.evaluate import final_relu
    squeeze = squeezenet1_1(num_classes=3)
    assert final_relu(squeeze) is squeeze.classifier[2]
    assert final_relu(alexnet(num_classes=3)) is None


def test_evaluate_reports_no_silent_classes_for_a_model_without_a_final_relu():
    from tinysqueeze.datasets import ArrayDataset, DataLoader
    from tinysqueeze.evaluation.evaluate import evaluate

    class NegativeScores(nn.Module):
        def forward(self, x):
            return np.full((len(x), 3), -1.0) + np.arange(3)       # class 2 wins with a score of 1, others <= 0

    data = ArrayDataset(np.zeros((4, 3, 4, 4), np.uint8), np.array([0, 1, 2, 2]), ["a", "b", "c"], "zeros")
    result = evaluate(NegativeScores(), DataLoader(data, 4, 4, False, (0, 0, 0), (1, 1, 1)), 3)
    assert list(result["silent"]) == [] and list(result["recall"]) == [0.0, 0.0, 1.0]


def test_evaluate_counts_top5_among_the_five_best_scores():
    """Seven images of seven classes; image i's own class is ranked i+1 by the model (scores planted by
    hand): top-1 is 1/7 (image 0), top-5 is 5/7 (images 0-4), and the confusion matrix follows the argmax."""
    from tinysqueeze.datasets import ArrayDataset, DataLoader
    from tinysqueeze.evaluation.evaluate import evaluate

    class RankedScores(nn.Module):
        def forward(self, x):
            index = np.rint(x[:, 0, 0, 0] * 255).astype(int)   # the image's number, planted below
            logits = np.zeros((len(x), 7))
            for row, i in enumerate(index):      # scores 7, 6, ..., 1; label i gets 7 - i: rank i + 1 of 7
                logits[row, i] = 7 - i
                logits[row, [c for c in range(7) if c != i]] = [7 - r for r in range(7) if r != i]
            return logits

    images = np.zeros((7, 3, 4, 4), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(7)
    loader = DataLoader(ArrayDataset(images, np.arange(7), list("abcdefg"), "ranked"), 4, 4, False, (0, 0, 0), (1, 1, 1))
    result = evaluate(RankedScores(), loader, 7)
    assert result["n"] == 7
    assert result["top1"] == pytest.approx(1 / 7) and result["top5"] == pytest.approx(5 / 7)
