"""The classifier loss used by the course's judges: cross-entropy per example, accuracy."""
import torch
import torch.nn.functional as F

from vaecore.classify import classifier_loss


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
