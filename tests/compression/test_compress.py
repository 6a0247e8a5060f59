"""Compression: Huffman, pruning, weight sharing (with its gradient), SVD and the .tsq file."""
import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.cli import main
from tinysqueeze.compress import (SharedWeights, centroid_gradient, deep_compress, kmeans_1d, low_rank, magnitude_mask,
                                  prune, quantize_weight, save_compressed)
from tinysqueeze.compress.finetune import finetune_pruned, finetune_shared
from tinysqueeze.formats.huffman import canonical_codes, code_lengths, decode, encode
from tinysqueeze.formats.tsq import read_tsq, write_tsq
from tinysqueeze.compress.prune import gradient_masker
from tinysqueeze.formats.tsq import dense_codes, sparse_entries
from tinysqueeze.evaluation.gradcheck import distinct_input, numeric_gradient, rel_error
from tinysqueeze.formats.weights import load_weights
from tinysqueeze.models import squeezenet1_1
from tinysqueeze.optim import LARS, SGD, Adam, layer_groups

from ..conftest import tiny_loader


def round_trip(symbols):
    symbols = np.asarray(symbols, dtype=np.int64)
    counts = {int(s): int(c) for s, c in zip(*np.unique(symbols, return_counts=True))} if symbols.size else {}
    lengths = code_lengths(counts)
    data, n_bits = encode(symbols, lengths)
    return decode(data, n_bits, len(symbols), lengths), n_bits


@pytest.mark.parametrize("symbols", [
    np.random.default_rng(0).integers(0, 64, 5000),                 # random
    np.random.default_rng(1).geometric(0.4, 3000) % 16,             # skewed
    [7] * 100,                                                      # one symbol, all equal
    [3],                                                            # a single symbol once
    [],                                                             # an empty layer
    [0, 1] * 50 + [2],                                              # one rare symbol
])
def test_huffman_round_trip_is_lossless(symbols):
    decoded, _ = round_trip(symbols)
    np.testing.assert_array_equal(decoded, np.asarray(symbols, dtype=np.int64))


def test_huffman_codes_are_prefix_free_and_short_for_frequent_symbols():
    lengths = code_lengths({0: 100, 1: 50, 2: 25, 3: 12, 4: 6, 5: 6})
    assert lengths[0] < lengths[3] <= lengths[5]
    codes = canonical_codes(lengths)
    words = [format(c, f"0{n}b") for c, n in codes.values()]
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    skewed = np.random.default_rng(1).geometric(0.5, 4000) % 16
    _, n_bits = round_trip(skewed)
    assert n_bits < 4 * len(skewed)  # beats 4 fixed bits
    with pytest.raises(ValueError, match="truncated|ended"):
        data, n = encode(skewed, code_lengths({int(s): 1 for s in np.unique(skewed)}))
        decode(data[:3], n, len(skewed), code_lengths({int(s): 1 for s in np.unique(skewed)}))


def test_magnitude_pruning_keeps_the_largest():
    w = np.array([[0.1, -5.0], [0.3, 2.0]])
    np.testing.assert_array_equal(magnitude_mask(w, 0.5), [[False, True], [False, True]])
    ties = np.array([1.0, -3.0, 1.0, 2.0, -1.0, 1.0])     # keep ceil(0.5 * 6) = 3: -3, 2, then the first 1.0
    np.testing.assert_array_equal(magnitude_mask(ties, 0.5), [True, True, False, True, False, False])
    np.testing.assert_array_equal(magnitude_mask(ties, 1.0), [True] * 6)
    np.testing.assert_array_equal(magnitude_mask(np.full(5, 0.5), 0.3), [True, True, False, False, False])
    model = squeezenet1_1(num_classes=10)
    masks = prune(model, 0.25)
    for name, mask in masks.items():
        weight = dict(model.named_parameters())[name].data
        assert abs(mask.mean() - 0.25) < 0.01 and not weight[~mask].any()
    assert all(not name.endswith("bias") for name in masks)
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\]"):
        prune(model, 0.0)


def test_paper_policy_prunes_the_large_layers_to_reach_the_target():
    from tinysqueeze.compress.prune import layer_densities
    from tinysqueeze.models import squeezenet1_0

    model = squeezenet1_0()
    densities = layer_densities(model, 0.339, "paper")
    assert densities["features.0.weight"] == 1.0 and densities["features.3.squeeze.weight"] == 1.0
    assert densities["features.3.expand1x1.weight"] == 1.0
    assert densities["features.3.expand3x3.weight"] == densities["classifier.1.weight"] < 0.339
    masks = prune(model, 0.339, "paper")
    kept = sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
    assert abs(kept - 0.339) < 0.001
    with pytest.raises(ValueError, match="below what the 'paper' policy can reach"):
        layer_densities(model, 0.05, "paper")
    with pytest.raises(ValueError, match="policy must be one of"):
        layer_densities(model, 0.5, "random")


@pytest.mark.parametrize("make_optimizer", [
    lambda model: SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda model: LARS(layer_groups(model), lr=0.01, momentum=0.9, weight_decay=0.01),
    lambda model: Adam(model.parameters(), lr=0.01, weight_decay=0.01)], ids=["sgd", "lars", "adam"])
def test_pruned_weights_stay_zero_through_training(make_optimizer):
    """gradient_masker, run between backward and step (train_step's after_backward), is all it takes:
    with momentum and weight decay, under SGD, LARS and Adam, a pruned weight stays exactly zero."""
    conv = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(0))
    model = nn.Sequential(conv)
    masks = prune(model, 0.3)
    optimizer = make_optimizer(model)
    zero_pruned_gradients = gradient_masker(model, masks, optimizer)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    for _ in range(5):
        optimizer.zero_grad()
        out = model(x)
        model.backward(np.ones_like(out))
        zero_pruned_gradients()
        optimizer.step()
    assert not conv.weight.data[~masks["0.weight"]].any()
    assert conv.weight.data[masks["0.weight"]].all()


@pytest.mark.parametrize("make_optimizer", [
    lambda model: SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda model: LARS(layer_groups(model), lr=0.01, momentum=0.9, weight_decay=0.01),
    lambda model: Adam(model.parameters(), lr=0.01, weight_decay=0.01)], ids=["sgd", "lars", "adam"])
def test_pruned_weights_stay_zero_under_an_optimizer_that_trained_before_pruning(make_optimizer):
    """Lesson 16's loop, with an optimizer that already has momentum: it trained the dense layer for 3
    steps, then the layer is pruned and fine-tuned through gradient_masker. Every pruned weight must be
    exactly zero after every step (the momentum they had must not move them), and the kept weights
    must still train. (Masking the gradients alone left all of them non-zero under SGD and LARS.)"""
    conv = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(0))
    model = nn.Sequential(conv)
    optimizer = make_optimizer(model)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)

    def step(after_backward=lambda: None):
        optimizer.zero_grad()
        out = model(x)
        model.backward(out)                       # gradient of 0.5 * sum(out**2)
        after_backward()
        optimizer.step()

    for _ in range(3):
        step()
    masks = prune(model, 0.3)
    pruned = ~masks["0.weight"]
    zero_pruned = gradient_masker(model, masks, optimizer)
    for _ in range(4):
        kept_before = conv.weight.data[~pruned].copy()
        step(zero_pruned)
        assert np.count_nonzero(conv.weight.data[pruned]) == 0
        assert not np.array_equal(conv.weight.data[~pruned], kept_before)


def test_gradient_masker_refuses_an_optimizer_whose_momentum_it_cannot_clear():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, rng=np.random.default_rng(0)))
    masks = prune(model, 0.5)

    class Opaque:
        params = model.parameters()

    with pytest.raises(TypeError, match="Opaque keeps no per-parameter state"):
        gradient_masker(model, masks, Opaque())


def test_kmeans_linear_init_and_quantized_weights():
    values = np.concatenate([np.full(50, -1.0), np.full(30, 0.5), np.full(20, 2.0)])
    centroids, assign = kmeans_1d(values, 3)
    np.testing.assert_allclose(centroids, [-1.0, 0.5, 2.0], atol=1e-6)
    w = np.where(np.random.default_rng(0).random((8, 8)) < 0.5, 0, np.random.default_rng(1).standard_normal((8, 8)))
    codebook, codes = quantize_weight(w.astype(np.float32), 3)
    assert codebook.shape == (8,) and codebook[0] == 0.0
    np.testing.assert_array_equal(codes == 0, w == 0)  # pruned weights, and only they, take code 0
    assert np.abs(codebook[codes] - w).max() < np.abs(w).max() / 2
    with pytest.raises(ValueError, match="bits must be an integer from 1 to 8"):
        quantize_weight(w, 9)


def test_centroid_gradient_is_the_sum_of_its_weights_gradients():
    # L(codebook) = sum(linear(x; W = codebook[codes]) * G); check dL/dcodebook by finite differences
    rng = np.random.default_rng(0)
    layer = nn.Linear(6, 4, rng=rng).to(np.float64)
    codes = rng.integers(0, 5, size=(4, 6)).astype(np.uint8)
    codebook = np.array([0.0, -0.7, -0.2, 0.4, 1.1])
    x, upstream = distinct_input((3, 6), seed=1), rng.standard_normal((3, 4))

    def loss():
        layer.weight.data = codebook[codes]
        return float(np.sum(layer(x) * upstream))

    loss()
    layer.zero_grad()
    layer.backward(upstream)
    analytic = centroid_gradient(layer.weight.grad, codes, 5).astype(np.float64)
    numeric = numeric_gradient(loss, codebook, range(1, 5), 1e-6)
    assert rel_error(analytic[1:], numeric) < 1e-6
    assert analytic[0] == 0.0  # the pruned code never moves


def test_finetuning_keeps_zeros_and_codes():
    model = squeezenet1_1(num_classes=10)
    masks = prune(model, 0.5)
    finetune_pruned(model, masks, tiny_loader(), 1, progress=False)
    params = dict(model.named_parameters())
    assert all(not params[n].data[~m].any() for n, m in masks.items())
    shared = SharedWeights(model, 4, list(masks))
    before = {id(w): codes.copy() for w, _, codes in shared.entries}
    centroids_before = [cb.data.copy() for cb in shared.parameters()]
    finetune_shared(model, shared, tiny_loader(), 1, progress=False)
    for (weight, codebook, codes), old in zip(shared.entries, centroids_before):
        np.testing.assert_array_equal(codes, before[id(weight)])
        assert len(np.unique(weight.data)) <= 16 and codebook.data[0] == 0.0
        np.testing.assert_array_equal(weight.data, codebook.data[codes])
    assert any(not np.array_equal(cb.data, old) for cb, old in zip(shared.parameters(), centroids_before))


def test_sparse_index_fillers():
    codes = np.zeros(60, dtype=np.uint8)
    codes[[0, 40, 41, 59]] = [3, 1, 2, 7]
    entry_codes, gaps = sparse_entries(codes)
    assert gaps.max() <= 15 and (entry_codes == 0).sum() == 3  # 39 zeros need two fillers, 17 one
    np.testing.assert_array_equal(dense_codes(entry_codes, gaps, 60), codes)
    # by hand: 39 pruned before position 40 = two fillers of 16 positions, then a gap of 7; 17 = 16 + 1
    np.testing.assert_array_equal(entry_codes, [3, 0, 0, 1, 2, 0, 7])
    np.testing.assert_array_equal(gaps, [0, 15, 15, 7, 0, 15, 1])
    assert [a.size for a in sparse_entries(np.zeros(5, dtype=np.uint8))] == [0, 0]


def test_huffman_bits_by_hand_and_in_chunks():
    """lengths 0:1, 1:2, 2:2 are the canonical codes 0, 10, 11: [1, 0, 2, 2] is 10 0 11 11, padded to a byte."""
    lengths = {0: 1, 1: 2, 2: 2}
    assert encode([1, 0, 2, 2], lengths) == (bytes([0b10011110]), 7)
    symbols = np.random.default_rng(2).integers(0, 3, 1001)
    assert encode(symbols, lengths, chunk=7) == encode(symbols, lengths)     # chunk edges change nothing


@pytest.mark.slow
def test_tsq_round_trip_is_bit_identical_and_loads_everywhere(tmp_path):
    model = squeezenet1_1(num_classes=10, seed=3)
    compressed = deep_compress(model, 0.4, 5)
    path = tmp_path / "m.tsq"
    rows = save_compressed(path, compressed, "squeezenet1_1")
    state, header = read_tsq(path)
    reference = model.state_dict()
    assert header["bits"] == 5 and set(state) == set(reference)
    for key in reference:
        np.testing.assert_array_equal(state[key], reference[key])
    assert sum(r.huffman_bytes for r in rows) == path.stat().st_size
    fresh = squeezenet1_1(num_classes=10)
    fresh.load_state_dict(load_weights(path))  # every command that takes weights takes a .tsq
    np.testing.assert_array_equal(fresh.state_dict()["classifier.1.weight"], reference["classifier.1.weight"])


@pytest.fixture(scope="module")
def small_tsq(tmp_path_factory):
    """squeezenet1_1(num_classes=10) at density 0.5 and 4 bits, as a .tsq (written once: encoding takes
    seconds). Read it only."""
    path = tmp_path_factory.mktemp("tsq") / "m.tsq"
    save_compressed(path, deep_compress(squeezenet1_1(num_classes=10), 0.5, 4), "squeezenet1_1")
    return path


def test_corrupt_and_truncated_tsq_are_refused(tmp_path, small_tsq):
    path = small_tsq
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    (tmp_path / "flipped.tsq").write_bytes(bytes(data))
    (tmp_path / "cut.tsq").write_bytes(path.read_bytes()[:-100])
    for bad in ("flipped.tsq", "cut.tsq"):
        with pytest.raises(ValueError, match="damaged or truncated"):
            load_weights(tmp_path / bad)


@pytest.mark.slow
def test_squeezenet1_0_at_6_bits_fits_in_half_a_megabyte(tmp_path):
    from tinysqueeze.models import squeezenet1_0
    model = squeezenet1_0()
    path = tmp_path / "v10.tsq"
    save_compressed(path, deep_compress(model, 0.33, 6), "squeezenet1_0")
    assert path.stat().st_size < 500_000


def test_low_rank_svd():
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(16, 24, 1, rng=rng)
    conv.weight.data = (rng.standard_normal((24, 4)) @ rng.standard_normal((4, 16))).reshape(24, 16, 1, 1).astype(np.float32)
    exact, info = low_rank(conv, energy=1.0)                 # a rank-4 matrix: rank 4 keeps everything
    x = np.random.default_rng(1).standard_normal((2, 16, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(exact(x), conv(x), rtol=1e-4, atol=1e-4)
    assert info["rank"] == 4 and info["params_after"] == 4 * (16 + 24) and info["relative_error"] < 1e-6
    fresh = nn.Conv2d(16, 24, 1, rng=np.random.default_rng(0))
    _, half = low_rank(fresh, energy=0.5)
    assert half["rank"] < 16 and half["params_after"] < half["params_before"] and half["relative_error"] > 0.1
    with pytest.raises(ValueError, match="1x1 convolutions"):
        low_rank(nn.Conv2d(3, 3, 3))


def test_low_rank_refuses_a_rank_past_break_even():
    """A fresh 64 -> 256 layer: its singular values are all alike, so 99% of the energy needs rank 62
    (measured), and 62 * (64 + 256) = 19,840 weights > 64 * 256 = 16,384. Break-even, by hand:
    C F / (C + F) = 16384 / 320 = 51.2."""
    with pytest.raises(ValueError, match=r"needs rank 62, but any rank of at least C\*F/\(C\+F\) = 51.2 .*19,840.*16,384"):
        low_rank(nn.Conv2d(64, 256, 1, rng=np.random.default_rng(0)), energy=0.99)


@pytest.mark.slow
def test_cli_compress_prints_the_table(tmp_path, capsys):
    weights = tmp_path / "w.npz"
    from tinysqueeze.formats.weights import save_weights
    save_weights(squeezenet1_1(num_classes=10), weights)
    out = tmp_path / "m.tsq"
    assert main(["compress", "--model", "squeezenet1_1", "--checkpoint", str(weights), "--density", "0.5",
                 "--bits", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Huffman B" in printed and "smaller than AlexNet" in printed and out.is_file()
    assert main(["compress", "--density", "0", "--out", str(out)]) == 2
    assert "density must be in (0, 1]" in capsys.readouterr().err


def test_a_tsq_of_more_than_8_bits_is_neither_written_nor_read(tmp_path, monkeypatch):
    """A code is one byte: 9-bit codes (code 300) would wrap to 300 - 256 = 44. Refused both ways; the
    file is crafted by letting the writer through once."""
    from tinysqueeze.formats import tsq

    sparse = {"w": (np.arange(512, dtype=np.float32), np.array([0, 300, 5, 511], dtype=np.uint16))}
    with pytest.raises(ValueError, match="bits must be a whole number from 1 to 8"):
        write_tsq(tmp_path / "b9.tsq", {"model": "squeezenet1_1", "bits": 9}, sparse, {})
    monkeypatch.setattr(tsq, "MAX_BITS", 16)
    write_tsq(tmp_path / "b9.tsq", {"model": "squeezenet1_1", "bits": 9}, sparse, {})
    monkeypatch.setattr(tsq, "MAX_BITS", 8)
    with pytest.raises(ValueError, match="bits must be a whole number from 1 to 8, got 9"):
        read_tsq(tmp_path / "b9.tsq")


def rewrite_header(path, change) -> bytes:
    """The .tsq at `path` with its JSON header changed by `change(header)` and a correct CRC-32:
    what an attacker can make."""
    import json
    import struct
    import zlib
    data = path.read_bytes()
    head_len = struct.unpack("<I", data[5:9])[0]
    header = json.loads(data[9 : 9 + head_len])
    change(header)
    head = json.dumps(header).encode()
    body = data[:4] + struct.pack("<BI", data[4], len(head)) + head + data[9 + head_len : -4]
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize("change, says", [
    (lambda h: h["arrays"][0].update(shape=[100000, 100000, 100]), "more than 268435456"),
    (lambda h: h["arrays"][0].update(shape=[-1, 4]), "shape must be a list"),
    (lambda h: h["arrays"][0].update(shape="big"), "shape must be a list"),
    (lambda h: h["arrays"][0].update(entries=10 ** 12), "entries must be a whole number up to"),
    (lambda h: h["arrays"][0].update(entries="many"), "entries must be a whole number"),
    (lambda h: h["arrays"][0].update(code_bits=10 ** 9), "code_bits must be a whole number up to"),
    (lambda h: h["arrays"][0].update(sizes=[1, 2]), "sizes must be 5 byte counts"),
    (lambda h: h["arrays"][0].update(kind="exotic"), "kind must be 'raw' or 'sparse'"),
    (lambda h: h.update(bits="8"), "bits must be a whole number from 1 to 8"),
    (lambda h: h.update(bits=40), "bits must be a whole number from 1 to 8"),
    (lambda h: h.update(bits=9), "bits must be a whole number from 1 to 8"),
    (lambda h: h.update(arrays={"a": 1}), "expected an object with a list of arrays"),
    (lambda h: h["arrays"].append({"name": "extra", "kind": "raw", "shape": [4], "sizes": [16]}),
     "sizes must be 1 byte counts within the file|the arrays take"),
])
def test_a_crafted_tsq_header_is_refused_clearly(tmp_path, small_tsq, change, says):
    model, path = squeezenet1_1(num_classes=10), small_tsq
    crafted = tmp_path / "crafted.tsq"
    crafted.write_bytes(rewrite_header(path, change))
    with pytest.raises(ValueError, match="bad .tsq header: .*(" + says + ")"):
        load_weights(crafted)
    untouched = tmp_path / "untouched.tsq"
    untouched.write_bytes(rewrite_header(path, lambda h: None))
    assert set(load_weights(untouched)) == set(model.state_dict())      # the crafting itself is sound


def test_kmeans_moves_its_centroids_away_from_a_wrong_start():
    """Linear initialisation puts 2 centroids at the extremes, 0 and 10; the clusters' means are
    0.5 and 9.5 (by hand), so a k-means that never moves its centroids fails here."""
    values = np.repeat([0.0, 1.0, 9.0, 10.0], 10)
    centroids, assign = kmeans_1d(values, 2)
    np.testing.assert_allclose(centroids, [0.5, 9.5])
    np.testing.assert_array_equal(assign, np.repeat([0, 0, 1, 1], 10))


def test_kmeans_equals_lloyds_algorithm_written_plainly():
    """Lloyd's algorithm as the textbook says it (every value to its nearest centroid, each centroid to
    its values' mean), against kmeans_1d's sorted running sums, on 3,000 skewed values."""
    values = np.random.default_rng(4).standard_t(3, 3000)
    centroids = np.linspace(values.min(), values.max(), 7)
    for _ in range(30):
        nearest = np.abs(values[:, None] - centroids[None, :]).argmin(axis=1)
        moved = np.array([values[nearest == k].mean() if (nearest == k).any() else centroids[k] for k in range(7)])
        moved.sort()
        if np.allclose(moved, centroids):
            break
        centroids = moved
    got, assign = kmeans_1d(values, 7)
    np.testing.assert_allclose(got, centroids.astype(np.float32), rtol=1e-6)
    np.testing.assert_array_equal(assign, np.abs(values[:, None] - centroids[None, :]).argmin(axis=1))


def test_low_rank_layers_fit_where_the_layer_was_inside_the_batch_inside_features():
    """A squeeze layer of SqueezeNet's features is a Conv2dCNHW (the batch inside): its low-rank pair
    is of the same kind, so it can take the layer's place and the network still runs."""
    model = squeezenet1_1(num_classes=10, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    before = model(x)
    layer = model.features[3].squeeze
    pair, info = low_rank(layer, 0.6)
    assert all(type(m) is type(layer) for m in pair) and info["rank"] < info["full_rank"]
    model.features[3].squeeze = pair
    after = model(x)
    assert after.shape == before.shape and np.isfinite(after).all() and not np.array_equal(after, before)
