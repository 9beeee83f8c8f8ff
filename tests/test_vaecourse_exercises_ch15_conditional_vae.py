"""Chapter 15's exercise checks: the references pass, typical mistakes get the right hint."""
from __future__ import annotations

import torch

from vaecourse.exercises import ch15_conditional_vae as E


def _unlabelled(logits, labelled):
    log_q = torch.log_softmax(logits, -1)
    return (log_q.exp() * (labelled - log_q)).sum(-1)


def test_unlabelled_from_labelled_passes_and_names_the_usual_slips():
    assert E.check_unlabelled_from_labelled(_unlabelled).passed
    slips = {
        "no-entropy": lambda lo, la: (torch.softmax(lo, -1) * la).sum(-1),
        "entropy-sign": lambda lo, la: (torch.softmax(lo, -1) * (la + torch.log_softmax(lo, -1))
                                        ).sum(-1),
        "logits": lambda lo, la: (lo * la).sum(-1),
        "shape": lambda lo, la: _unlabelled(lo, la)[:, None],
        "value": lambda lo, la: _unlabelled(lo, la) + 0.1,
    }
    for hint, slip in slips.items():
        result = E.check_unlabelled_from_labelled(slip)
        assert not result.passed and result.hint == hint, (hint, result)


def test_the_closed_form_best_bound_is_the_numerical_maximum():
    for _, labelled in E._cases(7):
        assert torch.allclose(E._numerical_best(labelled), torch.logsumexp(labelled, -1),
                              atol=1e-3)


def test_best_unlabelled_bound_passes_and_names_the_usual_slips():
    assert E.check_best_unlabelled_bound(lambda la: torch.logsumexp(la, -1)).passed
    k = lambda la: torch.log(torch.tensor(float(la.shape[1]), dtype=la.dtype))
    slips = {"max": lambda la: la.max(-1).values,
             "prior-twice": lambda la: torch.logsumexp(la, -1) - k(la),
             "value": lambda la: torch.logsumexp(la, -1) + 1.0}
    for hint, slip in slips.items():
        result = E.check_best_unlabelled_bound(slip)
        assert not result.passed and result.hint == hint, (hint, result)


def test_float32_answers_pass():
    assert E.check_best_unlabelled_bound(lambda la: torch.logsumexp(la.float(), -1)).passed
    assert E.check_unlabelled_from_labelled(lambda lo, la: _unlabelled(lo.float(), la.float()))


def _digits(scale, offset=0, copies=False):
    def draw_digits(model, digit, n):
        z = scale * torch.randn(1 if copies else n, model.latent_dim).expand(n, -1)
        y = torch.nn.functional.one_hot(torch.full((n,), (digit + offset) % 10), 10).float()
        with torch.no_grad():
            return torch.sigmoid(model.decode(z, y)).view(n, 1, 28, 28)
    return draw_digits


def test_conditional_generator_passes_the_reference_and_names_the_failures():
    assert E.check_conditional_generator(_digits(0.5)).passed
    for hint, student in (("share", _digits(1.0)), ("copies", _digits(0.5, copies=True)),
                          ("class", _digits(0.5, offset=1)),
                          ("range", lambda m, d, n: _digits(0.5)(m, d, n) * 2),
                          ("shape", lambda m, d, n: _digits(0.5)(m, d, n)[0])):
        result = E.check_conditional_generator(student)
        assert not result.passed and result.hint == hint, (hint, result)
    first = E.check_conditional_generator(_digits(0.6)).message
    assert E.check_conditional_generator(_digits(0.6)).message == first  # seeded


def test_a_stub_reports_not_implemented():
    def stub(*args):
        raise NotImplementedError
    for check in (E.check_unlabelled_from_labelled, E.check_best_unlabelled_bound,
                  E.check_conditional_generator):
        assert check(stub).hint == "todo"
