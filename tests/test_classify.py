"""The classifier loss used by the course's judges: cross-entropy per example, accuracy."""
import pytest
import torch
import torch.nn.functional as F

from vaecore.classify import classifier_loss, linear_probe_accuracy


def test_classifier_loss_matches_cross_entropy_and_counts_correct_answers():
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(4, 3).double()
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    terms = classifier_loss(model, x, y)
    logits = model(x)
    torch.testing.assert_close(terms.loss, F.cross_entropy(logits, y))
    torch.testing.assert_close(terms.nll, -logits.log_softmax(1)[torch.arange(6), y])
    assert terms.nll.shape == (6,) and terms.loss.shape == ()
    torch.testing.assert_close(terms.correct, (logits.argmax(1) == y).double().float())


def test_conv_classifier_shapes_and_layer_names():
    from vaecore.classify import ConvClassifier
    model = ConvClassifier((3, 32, 32), 2, channels=(16, 32, 32))
    assert model(torch.rand(5, 3, 32, 32)).shape == (5, 2)
    keys = set(model.state_dict())
    assert {"features.0.weight", "features.6.weight", "head.0.weight", "head.2.bias"} <= keys
    import pytest
    with pytest.raises(ValueError, match="divisible by 8"):
        ConvClassifier((1, 28, 28), 4, channels=(8, 16, 32))
    # the CIFAR judge's feature space: its convolutional stages, flattened (32 · 4 · 4)
    from vaecore.classify import features
    x = torch.rand(3, 3, 32, 32)
    f = features(model, x)
    assert f.shape == (3, 512)
    torch.testing.assert_close(f.float(), model.features(x).flatten(1))


def test_lenet_features_and_class_probabilities():
    from vaecore.classify import LeNet, class_probabilities, features
    torch.manual_seed(0)
    model = LeNet().train()
    x = torch.rand(7, 1, 32, 32)
    f = features(model, x, batch_size=3)
    assert f.shape == (7, 84) and f.dtype == torch.float64 and model.training
    torch.testing.assert_close(f.float(), model.body(x))
    p = class_probabilities(model, x, batch_size=3)
    assert p.shape == (7, 10) and not model.training
    torch.testing.assert_close(p.sum(1), torch.ones(7))
    torch.testing.assert_close(p, model(x).softmax(1))


def test_linear_probe_accuracy_reads_a_linear_label_and_not_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 5, generator=g)
    x[:, :2] += x[:, :2].sign()  # a margin of 2 between the quadrants
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()  # four classes, linearly separable
    assert linear_probe_accuracy(x[:300], y[:300], x[300:], y[300:]) > 0.98
    noise = torch.randn(600, 5, generator=g)
    assert linear_probe_accuracy(noise[:300], y[:300], noise[300:], y[300:]) < 0.4
    # a constant feature carries nothing: the probe predicts the fitting set's commonest class
    const = torch.ones(600, 2)
    acc = linear_probe_accuracy(const[:300], y[:300], const[300:], y[300:])
    commonest = torch.bincount(y[:300]).argmax()
    assert acc == pytest.approx((y[300:] == commonest).double().mean().item())
    with pytest.raises(ValueError, match="matching sizes"):
        linear_probe_accuracy(x[:300], y[:299], x[300:], y[300:])
    with pytest.raises(ValueError, match="finite"):
        linear_probe_accuracy(x[:300] * float("nan"), y[:300], x[300:], y[300:])
