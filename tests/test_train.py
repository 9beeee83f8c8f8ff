"""Tests for vaecore.train: fit, History, linear_decay, the NaN guard."""
import math
from typing import NamedTuple

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from vaecore.checkpoint import load_checkpoint
from vaecore.train import History, NonFiniteLossError, fit, linear_decay


class Recon(NamedTuple):
    loss: torch.Tensor
    mse: torch.Tensor


class Clf(NamedTuple):
    loss: torch.Tensor
    accuracy: torch.Tensor


def recon_loss(model, x):
    mse = ((model(x) - x) ** 2).sum(dim=1)
    return Recon(mse.mean(), mse)


def noisy_recon_loss(model, x):
    """Uses the global RNG, as a VAE's reparameterisation does."""
    return recon_loss(model, x + 0.1 * torch.randn_like(x))


def tiny_autoencoder():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 3), nn.Linear(3, 8))


def low_rank_data(n=256):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, generator=g) @ torch.randn(3, 8, generator=g)


def binarize(x, generator):
    return torch.bernoulli(x, generator=generator)


def train_quiet(model, loss_fn, data, **kwargs):
    kwargs.setdefault("batch_size", 64)
    return fit(model, loss_fn, data, progress=False, **kwargs)


def test_loss_decreases_and_means_are_example_weighted():
    x = low_rank_data(250)  # 250 = 3 * 64 + 58: the last batch is smaller
    history = train_quiet(tiny_autoencoder(), recon_loss, x, epochs=10, lr=3e-2)
    assert len(history) == 10
    assert history.train["loss"][-1] < 0.3 * history.train["loss"][0]
    # loss is the batch mean of mse, so example weighting makes the two equal
    assert_close(history.train["loss"], history.train["mse"], rtol=1e-6, atol=0)


def test_recorded_fields_are_exact_dataset_means():
    class Terms(NamedTuple):
        loss: torch.Tensor
        row_sum: torch.Tensor
        constant: float
        z: torch.Tensor

    def loss_fn(model, x):
        row_sum = x.sum(dim=1)
        return Terms((model(x) ** 2).mean(), row_sum, 2.5, torch.zeros(len(x), 3))

    x = low_rank_data(100)
    history = train_quiet(tiny_autoencoder(), loss_fn, x, epochs=2, batch_size=32)
    assert set(history.train) == {"loss", "row_sum", "constant"}  # z is not (B,): skipped
    assert history.train["row_sum"][0] == pytest.approx(x.sum(1).double().mean().item(), rel=1e-12)
    assert history.train["constant"] == [2.5, 2.5]


def test_same_seed_gives_identical_history_and_weights():
    x = torch.rand(200, 8)
    runs = []
    for seed in (3, 3, 4):
        model = tiny_autoencoder()
        h = train_quiet(model, noisy_recon_loss, x, val=x[:50], epochs=3, seed=seed,
                        transform=binarize)
        runs.append((h.train, h.val, model.state_dict()))
    assert runs[0][:2] == runs[1][:2]  # float-exact
    assert_close(runs[0][2], runs[1][2], rtol=0, atol=0)
    assert runs[0][0] != runs[2][0]  # the seed matters


def test_validation_does_not_change_training():
    x = torch.rand(200, 8)
    with_val = train_quiet(tiny_autoencoder(), noisy_recon_loss, x, val=x[:40], epochs=3)
    without = train_quiet(tiny_autoencoder(), noisy_recon_loss, x, epochs=3)
    assert with_val.train == without.train
    assert without.val == {}


def test_val_metrics_in_eval_mode_without_grad():
    x = low_rank_data(200)
    model = nn.Sequential(nn.Linear(8, 3), nn.Dropout(0.5), nn.Linear(3, 8))
    history = train_quiet(model, recon_loss, x[:150], val=x[150:], epochs=3)
    assert set(history.val) == {"loss", "mse"} and len(history.val["loss"]) == 3
    assert model.training  # back in training mode after validation
    model.eval()
    with torch.no_grad():
        expected = recon_loss(model, x[150:]).loss  # dropout off: deterministic
    assert history.val["loss"][-1] == pytest.approx(expected.item(), rel=1e-6)


def test_val_transform_uses_the_same_noise_every_epoch():
    x = torch.rand(128, 8)
    opt = lambda params: torch.optim.SGD(params, lr=0.0)  # weights never change
    history = train_quiet(tiny_autoencoder(), recon_loss, x, val=x, epochs=3,
                          transform=binarize, optimizer=opt)
    assert len(set(history.val["loss"])) == 1
    assert len(set(history.train["loss"])) == 3  # fresh binarisation each epoch


def test_tuple_data_is_sliced_together_for_a_classifier():
    g = torch.Generator().manual_seed(0)
    centres = 4 * torch.randn(3, 8, generator=g)
    y = torch.randint(0, 3, (300,), generator=g)
    x = centres[y] + torch.randn(300, 8, generator=g)

    def clf_loss(model, x, y):
        logits = model(x)
        return Clf(nn.functional.cross_entropy(logits, y),
                   (logits.argmax(1) == y).float())

    torch.manual_seed(0)
    history = train_quiet(nn.Linear(8, 3), clf_loss, (x, y), epochs=5, lr=1e-2)
    assert history.train["accuracy"][-1] > 0.95  # x and y shuffled apart would give ~1/3


def test_nan_loss_names_epoch_and_step_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"train": 0}

    def nan_at_epoch_2_step_3(model, x):
        out = recon_loss(model, x)
        if model.training:
            calls["train"] += 1
            if calls["train"] == 4 + 3:  # 256 / 64 = 4 steps per epoch
                return Recon(out.loss * math.nan, out.mse)
        return out

    saved = {}
    snapshot = lambda epoch, h: saved.update({k: v.clone() for k, v in model.state_dict().items()})
    model, path = tiny_autoencoder(), tmp_path / "run.pt"
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 3 of 4") as err:
        train_quiet(model, nan_at_epoch_2_step_3, low_rank_data(256), val=low_rank_data(32),
                    epochs=3, checkpoint=path, callbacks=[snapshot])
    assert isinstance(err.value, FloatingPointError)
    assert "nan" in str(err.value) and f"{path} (epoch 1)" in str(err.value)
    ckpt = load_checkpoint(path)
    assert len(ckpt.history) == 1 and math.isfinite(ckpt.metrics["train"]["loss"])
    assert_close(dict(ckpt.state_dict), saved, rtol=0, atol=0)  # epoch 1's weights
    assert all(torch.isfinite(v).all() for v in ckpt.state_dict.values())


def test_nan_loss_without_checkpoint_says_so():
    def always_nan(model, x):
        return Recon(torch.tensor(math.inf), x.sum(1))

    message = r"loss is inf at epoch 1, step 1 of 1; this run saved no checkpoint"
    with pytest.raises(NonFiniteLossError, match=message):
        train_quiet(tiny_autoencoder(), always_nan, low_rank_data(64), epochs=1)


def test_callbacks_every_epoch_and_early_stop():
    seen = []
    record = lambda epoch, h: seen.append((epoch, len(h), h.train["loss"][-1]))
    stop_at_2 = lambda epoch, h: epoch == 2
    history = train_quiet(tiny_autoencoder(), recon_loss, low_rank_data(), epochs=5,
                          callbacks=[record, stop_at_2])
    assert [(e, n) for e, n, _ in seen] == [(1, 1), (2, 2)]
    assert len(history) == 2 and seen[-1][2] == history.train["loss"][-1]


def test_linear_decay_schedule_in_history_lr():
    history = train_quiet(tiny_autoencoder(), recon_loss, low_rank_data(), epochs=4,
                          lr=0.01, lr_schedule=linear_decay(4))
    assert history.lr == pytest.approx([0.01, 0.0075, 0.005, 0.0025], rel=1e-12)
    schedule = linear_decay(4, final=0.2)
    assert [schedule(e) for e in (0, 2, 4, 9)] == pytest.approx([1.0, 0.6, 0.2, 0.2])


@pytest.mark.parametrize("epochs, final", [(0, 0.0), (3, 1.5), (3, -0.1)])
def test_linear_decay_rejects_bad_arguments(epochs, final):
    with pytest.raises(ValueError, match="expected"):
        linear_decay(epochs, final)


def test_resume_continues_epochs_and_schedule():
    x = low_rank_data()
    first = train_quiet(tiny_autoencoder(), recon_loss, x, epochs=2, lr=0.01,
                        lr_schedule=linear_decay(4))
    seen = []
    second = train_quiet(tiny_autoencoder(), recon_loss, x, epochs=2, lr=0.01,
                         lr_schedule=linear_decay(4), history=first,
                         callbacks=[lambda epoch, h: seen.append(epoch)])
    assert seen == [3, 4] and len(second) == 4 and len(first) == 2  # not mutated
    assert second.train["loss"][:2] == first.train["loss"]
    assert second.lr == pytest.approx([0.01, 0.0075, 0.005, 0.0025], rel=1e-12)


@pytest.mark.parametrize("max_norm", [None, 0.05])
def test_gradient_clipping_caps_the_norm(max_norm):
    norms = []

    def adam_recording_grad_norm(params):
        opt = torch.optim.Adam(params, lr=1e-3)
        grads = lambda: [p.grad for g in opt.param_groups for p in g["params"]]
        opt.register_step_pre_hook(
            lambda *_: norms.append(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads()])).item()))
        return opt

    train_quiet(tiny_autoencoder(), recon_loss, 10 * low_rank_data(), epochs=1,
                optimizer=adam_recording_grad_norm, clip_grad_norm=max_norm)
    assert len(norms) == 4
    if max_norm is None:
        assert min(norms) > 1.0  # so the cap below is doing something
    else:
        assert max(norms) == pytest.approx(max_norm, rel=1e-4)


def test_progress_false_prints_nothing(capsys):
    train_quiet(tiny_autoencoder(), recon_loss, low_rank_data(), epochs=2)
    assert capsys.readouterr() == ("", "")
    fit(tiny_autoencoder(), recon_loss, low_rank_data(), epochs=2, progress=True)
    assert "epochs" in capsys.readouterr().err


def test_history_round_trips_through_plain_dict():
    history = train_quiet(tiny_autoencoder(), recon_loss, low_rank_data(), val=low_rank_data(32),
                          epochs=2)
    d = history.to_dict()
    assert History.from_dict(d) == history and type(d["train"]["loss"][0]) is float
    assert history.last() == {k: v[-1] for k, v in history.train.items()}
    assert history.last("val")["loss"] == history.val["loss"][-1]
    with pytest.raises(ValueError, match="'train' or 'val'"):
        history.last("test")
    with pytest.raises(ValueError, match="epoch_time"):
        History.from_dict({"train": {}})


X = low_rank_data(16)


@pytest.mark.parametrize("data, kwargs, message", [
    (X, {"epochs": 0}, "epochs: expected a positive integer"),
    (X, {"epochs": 1, "batch_size": 0}, "batch_size: expected a positive integer"),
    (X, {"epochs": 1.5}, "epochs: expected a positive integer"),
    (torch.empty(0, 8), {"epochs": 1}, "at least one example"),
    ((X, torch.zeros(15)), {"epochs": 1}, r"one first dimension, got lengths \[16, 15\]"),
    ((), {"epochs": 1}, "empty tuple"),
    (X.numpy(), {"epochs": 1}, "expected a torch.Tensor"),
    (X, {"epochs": 1, "val": (X, X[:3])}, "val: expected tensors with one first dimension"),
    (X, {"epochs": 1, "clip_grad_norm": -1.0}, "clip_grad_norm: expected a positive"),
    (X, {"epochs": 1, "history": {"train": {}}}, "history: expected a History or None"),
])
def test_bad_arguments_raise_value_error(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(tiny_autoencoder(), recon_loss, data, progress=False, **kwargs)


def test_model_without_parameters_raises_value_error():
    with pytest.raises(ValueError, match="model: expected a module with trainable parameters"):
        fit(nn.Identity(), recon_loss, X, epochs=1, progress=False)


@pytest.mark.parametrize("bad_loss_fn", [
    lambda model, x: recon_loss(model, x).loss,  # a bare tensor, not a NamedTuple
    lambda model, x: Recon(*recon_loss(model, x))._replace(loss=torch.zeros(2)),
])
def test_loss_fn_must_return_named_tuple_with_scalar_loss(bad_loss_fn):
    with pytest.raises(ValueError, match="first field `loss` is a scalar"):
        train_quiet(tiny_autoencoder(), bad_loss_fn, X, epochs=1)


def test_default_optimizer_is_fused_adam_where_available():
    from vaecore.train import adam
    opt = adam(torch.nn.Linear(3, 2).parameters(), 0.01)
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["fused"] is True
    assert opt.defaults["lr"] == 0.01


def test_adam_falls_back_when_there_is_no_fused_kernel(monkeypatch):
    from vaecore import train as train_module
    real = torch.optim.Adam

    def no_fused(params, lr, fused=None):
        if fused:
            raise RuntimeError("fused=True requires all params on a supported device")
        return real(params, lr)
    monkeypatch.setattr(train_module.torch.optim, "Adam", no_fused)
    opt = train_module.adam(torch.nn.Linear(3, 2).parameters(), 0.01)
    assert not opt.defaults.get("fused")
    assert sum(len(g["params"]) for g in opt.param_groups) == 2  # the parameters were kept
