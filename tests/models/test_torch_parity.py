"""Optional: where PyTorch is installed beside tinysqueeze (`make test-torch`), weights move both
ways and outputs and gradients agree with PyTorch's. Skipped without PyTorch."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinysqueeze import nn  # noqa: E402
from tinysqueeze.formats.weights import load_weights, save_weights  # noqa: E402
from tinysqueeze.models import squeezenet1_0, squeezenet1_1  # noqa: E402

from tinysqueeze.studies.torch_reference import squeezenet as torch_squeezenet  # noqa: E402


@pytest.mark.parametrize("version", ["1_0", "1_1"])
def test_torch_weights_give_torch_logits(version, tmp_path):
    torch.manual_seed(0)
    reference = torch_squeezenet(version, num_classes=10).eval()
    path = tmp_path / "w.pth"
    torch.save(reference.state_dict(), path)
    ours = (squeezenet1_0 if version == "1_0" else squeezenet1_1)(num_classes=10)
    ours.load_state_dict(load_weights(path))
    x = np.random.default_rng(0).standard_normal((2, 3, 96, 96)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.eval()(x), expected, rtol=1e-4, atol=1e-5)


def test_our_weights_load_into_torch(tmp_path):
    ours = squeezenet1_1(num_classes=10, seed=5).eval()
    state = load_weights(save_weights(ours, tmp_path / "w.npz"))
    reference = torch_squeezenet("1_1", num_classes=10).eval()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(x), expected, rtol=1e-4, atol=1e-5)


def test_gradients_agree_with_autograd():
    torch.manual_seed(1)
    reference = torch_squeezenet("1_1", num_classes=5).double().eval()
    ours = squeezenet1_1(num_classes=5).to(np.float64).eval()         # eval mode: dropout off, backward runs
    ours.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((3, 3, 48, 48))
    labels = np.array([0, 3, 4])
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    torch.nn.functional.cross_entropy(reference(xt), torch.from_numpy(labels)).backward()
    loss = nn.SoftmaxCrossEntropy()
    loss(ours(x), labels)
    dx = ours.backward(loss.backward())
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-10)
    grads = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name].grad.numpy(), rtol=1e-7, atol=1e-10, err_msg=name)
