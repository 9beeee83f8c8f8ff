import pytest
import torch
from torch.distributions import Bernoulli, Normal

from vaecore.conv import ConvDecoder, ConvEncoder
from vaecore.elbo import negative_elbo
from vaecore.likelihoods import bernoulli, normal
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.priors import StdNormalPrior
from vaecore.resnet import ResNetDecoder, ResNetEncoder
from vaecore.vae import VAE, Posterior, VAEOutput


def mlp(shape, d):
    return MLPEncoder(shape, d, hidden=(16,)), MLPDecoder(d, shape, hidden=(16,))


def conv(shape, d):
    return ConvEncoder(shape, d, channels=(4, 8), hidden=16), ConvDecoder(d, shape, channels=(8, 4), hidden=16)


def resnet(shape, d):
    return ResNetEncoder(shape, d, channels=(4, 8, 8)), ResNetDecoder(d, shape, channels=(8, 8, 4))


NETS = [(mlp, (1, 28, 28)), (mlp, (1, 32, 32)), (mlp, (3, 32, 32)),
        (conv, (1, 28, 28)), (conv, (1, 32, 32)), (conv, (3, 32, 32)),
        (resnet, (1, 32, 32)), (resnet, (3, 32, 32))]


@pytest.mark.parametrize("make, shape", NETS)
@pytest.mark.parametrize("latent_dim", [1, 2, 20])
def test_forward_sample_reconstruct_shapes(make, shape, latent_dim):
    torch.manual_seed(0)
    model = VAE(*make(shape, latent_dim))
    x = torch.rand(3, *shape)
    out = model(x)
    assert isinstance(out, VAEOutput) and model.latent_dim == latent_dim
    assert out.x_params.shape == (3, *shape)
    assert out.z.shape == out.mu.shape == out.logvar.shape == (3, latent_dim)
    model.eval()
    samples, recon = model.sample(4), model.reconstruct(x)
    assert samples.shape == (4, *shape) and recon.shape == x.shape
    for means in (samples, recon):  # Bernoulli means are probabilities
        assert means.min() >= 0 and means.max() <= 1


def test_forward_is_reparameterized_encoder_output():
    torch.manual_seed(0)
    model = VAE(*mlp((1, 4, 4), 3)).double()
    x = torch.rand(5, 1, 4, 4, dtype=torch.float64)
    out = model(x, generator=torch.Generator().manual_seed(1))
    mu, logvar = model.encoder(x)
    eps = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(out.z, mu + torch.exp(0.5 * logvar) * eps)
    torch.testing.assert_close(out.x_params, model.decoder(out.z))
    assert isinstance(model.encode(x), Posterior)
    torch.testing.assert_close(model.encode(x).logvar, logvar)


def test_log_likelihood_matches_torch_distributions():
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((4, 1, 4, 4), 0.3, dtype=torch.float64))
    z = torch.randn(4, 2, dtype=torch.float64)
    model = VAE(*mlp((1, 4, 4), 2)).double()
    expected = Bernoulli(logits=model.decoder(z)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(model.log_likelihood(x, z), expected)
    gaussian = VAE(*mlp((1, 4, 4), 2), likelihood=normal(-1.0)).double()
    std = torch.exp(torch.tensor(-0.5, dtype=torch.float64))
    expected = Normal(gaussian.decoder(z), std).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian.log_likelihood(x, z), expected)


def test_learned_variance_decoder():
    encoder = MLPEncoder((6,), 2, hidden=(8,))
    model = VAE(encoder, MLPDecoder(2, (6,), hidden=(8,), learned_var=True), likelihood=normal())
    x = torch.randn(3, 6)
    mean, logvar = model(x).x_params
    assert mean.shape == logvar.shape == (3, 6)
    assert model.sample(2, mean=False).shape == (2, 6)
    assert negative_elbo(model, x).log_likelihood.shape == (3,)


def test_sample_generator_no_grad_and_mode_unchanged():
    model = VAE(*mlp((1, 4, 4), 2))
    draw = model.sample(8, generator=torch.Generator().manual_seed(0), mean=False)
    assert set(draw.unique().tolist()) <= {0.0, 1.0} and not draw.requires_grad
    again = model.sample(8, generator=torch.Generator().manual_seed(0), mean=False)
    assert torch.equal(draw, again)
    assert model.training  # not switched to eval behind the user's back
    model.eval()
    model.sample(2)
    model.reconstruct(torch.rand(2, 1, 4, 4))
    assert not model.training


def test_reconstruct_decodes_the_posterior_mean():
    torch.manual_seed(0)
    model = VAE(*mlp((1, 4, 4), 2)).eval()
    x = torch.rand(3, 1, 4, 4)
    expected = torch.sigmoid(model.decoder(model.encoder(x)[0]))
    torch.testing.assert_close(model.reconstruct(x), expected)
    assert torch.equal(model.reconstruct(x), model.reconstruct(x))


@pytest.mark.parametrize("make, shape", [(mlp, (1, 28, 28)), (conv, (1, 28, 28)), (resnet, (3, 32, 32))])
def test_gradient_reaches_encoder_and_decoder(make, shape):
    torch.manual_seed(0)
    model = VAE(*make(shape, 2))
    negative_elbo(model, torch.rand(4, *shape)).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_resnet_vae_eval_is_deterministic():
    torch.manual_seed(0)
    model = VAE(*resnet((3, 32, 32), 4))
    x = torch.rand(4, 3, 32, 32)
    model(x)  # a train-mode pass updates the BatchNorm statistics
    model.eval()
    recon = model.reconstruct(x)
    assert torch.equal(model.reconstruct(x), recon)
    torch.testing.assert_close(model.reconstruct(x[:1]), recon[:1])
    samples = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.sample(3, generator=torch.Generator().manual_seed(0)), samples)


def test_default_prior_double_and_state_dict():
    model = VAE(*mlp((1, 4, 4), 3)).double()
    assert isinstance(model.prior, StdNormalPrior) and model.prior.latent_dim == 3
    assert model.sample(2).dtype == torch.float64
    assert not any(key.startswith("prior") for key in model.state_dict())
    assert model.likelihood is bernoulli


def test_latent_size_mismatch_raises():
    encoder, decoder = mlp((1, 4, 4), 3)
    with pytest.raises(ValueError, match="encoder.latent_dim=3, decoder.latent_dim=2"):
        VAE(encoder, MLPDecoder(2, (1, 4, 4)))
    with pytest.raises(ValueError, match="prior.latent_dim=4"):
        VAE(encoder, decoder, prior=StdNormalPrior(4))
    with pytest.raises(ValueError, match="Likelihood"):
        VAE(encoder, decoder, likelihood="bernoulli")


def test_bad_input_raises():
    model = VAE(*mlp((1, 28, 28), 3))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model(torch.rand(2, 784))
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        model.decode(torch.randn(2, 5))
    with pytest.raises(ValueError, match="positive integer"):
        model.sample(0)


class _Net(torch.nn.Module):
    """A stand-in encoder/decoder/prior that only declares its latent size."""

    def __init__(self, latent_dim, out_shape=(4,)):
        super().__init__()
        self.latent_dim, self.out_shape = latent_dim, out_shape
        self.weight = torch.nn.Parameter(torch.zeros(1))


@pytest.mark.parametrize("latent_dim", [-1, 0, 2.5, True])
def test_bad_latent_dim_is_refused_by_name(latent_dim):
    for build in (lambda d: VAE(*mlp((1, 4, 4), d)), lambda d: VAE(*conv((1, 4, 4), d)),
                  lambda d: VAE(*resnet((1, 8, 8), d)), StdNormalPrior,
                  lambda d: VAE(_Net(d), _Net(d), prior=_Net(d))):
        with pytest.raises(ValueError, match=r"latent_dim: expected a positive integer"):
            build(latent_dim)


@pytest.mark.parametrize("make, shape", [(mlp, (1, 28, 28)), (conv, (1, 28, 28)), (resnet, (3, 32, 32))])
def test_data_of_another_dtype_is_named_where_it_enters(make, shape):
    model = VAE(*make(shape, 3))
    x = torch.rand(2, *shape, dtype=torch.float64)
    message = r"x: expected torch.float32, the dtype of the model's parameters, got torch.float64"
    for call in (model, model.encode, model.reconstruct, model.encoder):
        with pytest.raises(ValueError, match=message):
            call(x)
    with pytest.raises(ValueError, match=r"z: expected torch.float32.*got torch.float64"):
        model.decode(torch.zeros(2, 3, dtype=torch.float64))
    model.double()
    assert model(x).mu.dtype == torch.float64
    model.to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts float32 on purpose
        assert model.encode(x.float()).mu.dtype == torch.bfloat16
        with pytest.raises(ValueError, match=message.replace("float32", "bfloat16")):
            model.encode(x)  # but never float64


def test_encode_names_the_dtype_for_any_encoder():
    class Affine(torch.nn.Module):
        latent_dim = 2

        def __init__(self):
            super().__init__()
            self.to_mu = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.to_mu(x), self.to_mu(x)

    model = VAE(Affine(), MLPDecoder(2, (4,), hidden=(3,)))
    with pytest.raises(ValueError, match=r"expected torch.float32.*got torch.float64"):
        model.encode(torch.rand(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"got a tuple of 2 \(did you pass \(x, y\)\?\)"):
        model.encode((torch.rand(2, 4), torch.arange(2)))
    assert model.encode(torch.rand(0, 4)).mu.shape == (0, 2)  # an empty batch encodes to nothing
