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
    second = train_quiet(tiny_autoencoder(), recon_loss, x, epochs=4, lr=0.01,
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


# The NaN guard: refused steps, good epochs, the checkpoint that keeps the last good one

def gradient_nan_at(epoch, step, how, before):
    """recon_loss, with a finite loss whose gradient is NaN at one training step (4 per epoch)."""
    calls = {"train": 0}

    def loss_fn(model, x):
        out = recon_loss(model, x)
        if not model.training:
            return out
        calls["train"] += 1
        if calls["train"] != 4 * (epoch - 1) + step:
            return out
        before.update({k: v.clone() for k, v in model.state_dict().items()})
        if how == "sqrt at 0":  # d/dw sqrt(0 * w) = 0 * inf = NaN; its value is 0
            return Recon(out.loss + torch.sqrt(0 * model[0].weight.sum()), out.mse)
        out.loss.register_hook(lambda g: g * math.nan)  # a hook that breaks the gradient
        return out

    return loss_fn


@pytest.mark.parametrize("how", ["sqrt at 0", "hook"])
def test_nan_gradient_is_refused_and_the_weights_are_not_updated(tmp_path, how):
    model, path, before = tiny_autoencoder(), tmp_path / "run.pt", {}
    with pytest.raises(NonFiniteLossError, match=r"gradient of .*has NaN or infinite entries at "
                       r"epoch 2, step 3 of 4") as err:
        train_quiet(model, gradient_nan_at(2, 3, how, before), low_rank_data(256),
                    val=low_rank_data(32), epochs=3, checkpoint=path)
    assert type(err.value).__name__ == "NonFiniteGradientError"
    assert f"the last good checkpoint is {path} (epoch 1)" in str(err.value)
    assert_close(model.state_dict(), before, rtol=0, atol=0)  # the step was not applied
    ckpt = load_checkpoint(path)
    assert len(ckpt.history) == 1
    assert all(torch.isfinite(v).all() for v in ckpt.state_dict.values())


def test_nan_gradient_in_the_first_epoch_saves_no_checkpoint(tmp_path):
    model, path, before = tiny_autoencoder(), tmp_path / "run.pt", {}
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 4 of 4.*this run saved no "
                       r"checkpoint"):
        train_quiet(model, gradient_nan_at(1, 4, "sqrt at 0", before), low_rank_data(256),
                    val=low_rank_data(32), epochs=2, checkpoint=path)
    assert not path.exists()
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_nan_validation_loss_stops_training_and_is_not_saved(tmp_path):
    calls = {"val": 0}

    def nan_validation_at_epoch_2(model, x):
        out = recon_loss(model, x)
        if not model.training:
            calls["val"] += 1
            if calls["val"] == 2:
                return Recon(out.loss * math.nan, out.mse * math.nan)
        return out

    seen, path = [], tmp_path / "run.pt"
    message = (r"validation loss is nan after epoch 2; the last good checkpoint is .*run.pt "
               r"\(epoch 1\), with train loss [0-9.]+, val loss")
    with pytest.raises(NonFiniteLossError, match=message):
        train_quiet(tiny_autoencoder(), nan_validation_at_epoch_2, low_rank_data(256),
                    val=low_rank_data(32), epochs=3, checkpoint=path,
                    callbacks=[lambda epoch, h: seen.append(epoch)])
    assert seen == [1]  # epoch 2 never reached its callbacks
    ckpt = load_checkpoint(path)
    assert len(ckpt.history) == 1 and math.isfinite(ckpt.metrics["val"]["loss"])


def test_non_finite_weights_are_never_saved_over_a_good_checkpoint(tmp_path):
    # one step per epoch; in epoch 2 the step size overflows the weights while the
    # epoch's training loss (computed before the step) is still finite
    sgd = lambda params: torch.optim.SGD(params, lr=1.0)
    overflow_in_epoch_2 = lambda e: 1e35 if e == 1 else 1e-3  # gradients here are >> 10
    path = tmp_path / "run.pt"
    with pytest.raises(NonFiniteLossError, match=r"parameters .*weight.* have NaN or infinite "
                       r"entries after epoch 2; the last good checkpoint is .*run.pt \(epoch 1\)"):
        train_quiet(tiny_autoencoder(), recon_loss, 10 * low_rank_data(64), epochs=3,
                    optimizer=sgd, lr_schedule=overflow_in_epoch_2, checkpoint=path)
    ckpt = load_checkpoint(path)
    assert len(ckpt.history) == 1
    assert all(torch.isfinite(v).all() for v in ckpt.state_dict.values())


def test_the_rule_a_finite_epoch_is_good_however_large_its_loss(tmp_path):
    """Finite losses are not judged (they rise legitimately); the error shows the saved losses."""
    calls = {"train": 0}

    def huge_in_epoch_2_nan_in_epoch_3(model, x):
        out = recon_loss(model, x)
        calls["train"] += 1
        if calls["train"] > 8:
            return Recon(out.loss * math.nan, out.mse)
        if calls["train"] > 4:
            return Recon(out.loss + 1e29, out.mse)  # huge but finite; same gradient
        return out

    path = tmp_path / "run.pt"
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 3, step 1 of 4; the last "
                       r"good checkpoint is .*run.pt \(epoch 2\), with train loss 1e\+29"):
        train_quiet(tiny_autoencoder(), huge_in_epoch_2_nan_in_epoch_3, low_rank_data(256),
                    epochs=3, checkpoint=path)
    assert load_checkpoint(path).metrics["train"]["loss"] == pytest.approx(1e29)


def test_a_constant_loss_is_a_clear_error():
    def constant(model, x):
        return Recon(torch.tensor(1.0), x.sum(1))

    with pytest.raises(ValueError, match="loss_fn: expected a loss computed from the model's "
                       r"parameters \(requires_grad\), got a constant"):
        train_quiet(tiny_autoencoder(), constant, low_rank_data(64), epochs=1)


# Seeds, dtypes and the caller's random stream

@pytest.mark.parametrize("seed", [None, 1.5, "0", True, 2**64])
def test_seed_must_be_an_integer(seed):
    with pytest.raises(ValueError, match=r"seed: expected an integer"):
        train_quiet(tiny_autoencoder(), recon_loss, X, epochs=1, seed=seed)


def test_numpy_integer_seed_is_the_same_seed(tmp_path):
    import numpy as np
    runs = []
    for seed in (3, np.int64(3)):
        model = tiny_autoencoder()
        train_quiet(model, noisy_recon_loss, X, epochs=2, seed=seed, checkpoint=tmp_path / "r.pt")
        runs.append(model.state_dict())
    assert_close(runs[0], runs[1], rtol=0, atol=0)
    assert type(load_checkpoint(tmp_path / "r.pt").config["seed"]) is int


@pytest.mark.parametrize("data, kwargs, message", [
    (X.double(), {}, r"train\[0\]: expected torch.float32, the dtype of the model's parameters, "
                     r"got torch.float64"),
    (X, {"val": X.double()}, r"val\[0\]: expected torch.float32, .* got torch.float64"),
    ((X, X.half()), {}, r"train\[1\]: expected torch.float32, .* got torch.float16"),
])
def test_floating_data_must_have_the_models_dtype(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_quiet(tiny_autoencoder(), lambda m, x, *rest: recon_loss(m, x), data, epochs=1,
                    **kwargs)


def test_float64_model_trains_on_float64_data_and_integer_labels_are_fine():
    history = train_quiet(tiny_autoencoder().double(), lambda m, x, y: recon_loss(m, x),
                          (X.double(), torch.arange(len(X))), epochs=1)
    assert math.isfinite(history.train["loss"][0])


def test_fit_leaves_the_callers_global_rng_as_it_was():
    model, x = tiny_autoencoder(), torch.rand(128, 8)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    train_quiet(model, noisy_recon_loss, x, val=x[:32], epochs=2, transform=binarize, seed=7)
    assert torch.equal(torch.get_rng_state(), state)


def test_fit_is_the_plain_training_loop_bit_for_bit():
    """fit = seed the global RNG, shuffle with a seeded generator, fused Adam: exactly."""
    x, seed, batch_size = torch.rand(200, 8), 5, 64
    model = tiny_autoencoder()
    train_quiet(model, noisy_recon_loss, x, epochs=2, seed=seed, batch_size=batch_size, lr=0.01)
    reference = tiny_autoencoder()
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(reference.parameters(), 0.01, fused=True)
    for _ in range(2):
        order = torch.randperm(len(x), generator=shuffle)
        for start in range(0, len(x), batch_size):
            opt.zero_grad(set_to_none=True)
            noisy_recon_loss(reference, x[order[start:start + batch_size]]).loss.backward()
            opt.step()
    assert_close(model.state_dict(), reference.state_dict(), rtol=0, atol=0)


def test_bfloat16_autocast_is_an_option_that_trains_in_float32_weights():
    x = low_rank_data(250)
    plain = train_quiet(tiny_autoencoder(), recon_loss, x, epochs=5, lr=3e-2)
    model = tiny_autoencoder()
    mixed = train_quiet(model, recon_loss, x, epochs=5, lr=3e-2, autocast=torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert mixed.train["loss"] != plain.train["loss"]  # other arithmetic ...
    assert_close(mixed.train["loss"][-1], plain.train["loss"][-1], rtol=0.1, atol=0)  # ... same fit
    with pytest.raises(ValueError, match="autocast: expected None or torch.bfloat16"):
        train_quiet(tiny_autoencoder(), recon_loss, x, epochs=1, autocast=torch.float16)


@pytest.mark.slow
def test_compile_is_an_option_that_gives_the_same_training():
    x = low_rank_data(250)
    plain = train_quiet(tiny_autoencoder(), recon_loss, x, epochs=3, lr=3e-2)
    compiled = train_quiet(tiny_autoencoder(), recon_loss, x, epochs=3, lr=3e-2, compile=True)
    assert_close(compiled.train["loss"], plain.train["loss"], rtol=1e-4, atol=0)


def test_epochs_is_the_total_so_a_finished_run_trains_no_more():
    x = low_rank_data()
    done = train_quiet(tiny_autoencoder(), recon_loss, x, epochs=3, lr=0.01)
    model = tiny_autoencoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    again = train_quiet(model, recon_loss, x, epochs=3, lr=0.01, history=done)
    assert again == done and again is not done
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="at least the 3 already in history"):
        train_quiet(tiny_autoencoder(), recon_loss, x, epochs=2, history=done)


def test_the_fast_negative_elbo_under_bfloat16_trains_as_the_default_does():
    from vaecore.elbo import negative_elbo, negative_elbo_fast
    from vaecore.mlp import MLPDecoder, MLPEncoder
    from vaecore.vae import VAE

    def vae():
        torch.manual_seed(0)
        return VAE(MLPEncoder((1, 6, 6), 2, hidden=(32,)), MLPDecoder(2, (1, 6, 6), hidden=(32,)))

    g = torch.Generator().manual_seed(0)
    stripes = torch.rand(512, 1, 6, 1, generator=g).round().expand(512, 1, 6, 6).contiguous()
    exact = train_quiet(vae(), negative_elbo, stripes, epochs=8, lr=2e-2)
    model = vae()
    fast = train_quiet(model, negative_elbo_fast, stripes, epochs=8, lr=2e-2,
                       autocast=torch.bfloat16)
    assert set(fast.train) == set(exact.train) == {"loss", "log_likelihood", "kl"}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert fast.train["loss"][-1] < 0.8 * fast.train["loss"][0]  # it trains ...
    assert_close(fast.train["loss"][-1], exact.train["loss"][-1], rtol=0.1, atol=0)  # ... as far
