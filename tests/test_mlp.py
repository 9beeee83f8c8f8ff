import pytest
import torch
from torch import nn

from vaecore.mlp import MLPDecoder, MLPEncoder

SHAPES = [(1, 28, 28), (1, 32, 32), (3, 32, 32)]


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("latent_dim", [1, 2, 20])
def test_shapes(shape, latent_dim):
    encoder = MLPEncoder(shape, latent_dim, hidden=(32, 16))
    decoder = MLPDecoder(latent_dim, shape, hidden=(16, 32))
    mu, logvar = encoder(torch.rand(5, *shape))
    assert mu.shape == logvar.shape == (5, latent_dim)
    assert decoder(mu).shape == (5, *shape)
    assert (encoder.latent_dim, decoder.latent_dim, decoder.out_shape) == (latent_dim, latent_dim, shape)


def test_learned_var_returns_mean_and_logvar():
    decoder = MLPDecoder(3, (2, 4, 4), hidden=(8,), learned_var=True)
    mean, logvar = decoder(torch.randn(6, 3))
    assert mean.shape == logvar.shape == (6, 2, 4, 4)
    assert not torch.equal(mean, logvar)


def test_official_pytorch_example_size():
    # 784-400-(20, 20) and 20-400-784, as in the PyTorch examples repository.
    encoder, decoder = MLPEncoder((1, 28, 28), 20), MLPDecoder(20, (1, 28, 28))
    assert n_params(encoder) == 784 * 400 + 400 + 2 * (400 * 20 + 20)
    assert n_params(decoder) == 20 * 400 + 400 + 400 * 784 + 784
    assert n_params(encoder) + n_params(decoder) == 652_824


def test_layers_are_named_by_role_and_hidden_sizes_are_used():
    encoder = MLPEncoder((1, 28, 28), 4, hidden=(200, 200, 200), dropout=0.3)
    linears = [m for m in encoder.body if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [200, 200, 200]
    assert sum(isinstance(m, nn.Dropout) for m in encoder.body) == 3
    assert encoder.to_mu.out_features == encoder.to_logvar.out_features == 4


def test_no_hidden_layer_is_an_affine_map():
    torch.manual_seed(0)
    encoder = MLPEncoder((2, 3), 4, hidden=())
    x = torch.randn(5, 2, 3)
    mu, _ = encoder(x)
    torch.testing.assert_close(mu, x.flatten(1) @ encoder.to_mu.weight.T + encoder.to_mu.bias)


def test_dropout_active_in_train_only():
    torch.manual_seed(0)
    encoder = MLPEncoder((10,), 2, hidden=(64,), dropout=0.5)
    x = torch.randn(4, 10)
    assert not torch.equal(encoder(x)[0], encoder(x)[0])
    encoder.eval()
    assert torch.equal(encoder(x)[0], encoder(x)[0])


def test_decoder_returns_unclamped_logits():
    decoder = MLPDecoder(2, (1, 4, 4), hidden=(8,))
    with torch.no_grad():
        decoder.to_x[0].bias.fill_(5.0)
        decoder.to_x[0].weight.zero_()
    assert torch.all(decoder(torch.randn(3, 2)) == 5.0)


def test_bad_input_raises():
    encoder, decoder = MLPEncoder((1, 28, 28), 20), MLPDecoder(20, (1, 28, 28))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        encoder(torch.rand(2, 784))
    with pytest.raises(ValueError, match="floating"):
        encoder(torch.ones(2, 1, 28, 28, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(B, 20\)"):
        decoder(torch.randn(2, 10))
    with pytest.raises(ValueError, match="torch.Tensor"):
        decoder([[0.0] * 20])


@pytest.mark.parametrize("latent_dim", [-1, 0, 2.5, "2", True])
def test_bad_latent_dim_is_refused_by_name(latent_dim):
    with pytest.raises(ValueError, match=r"latent_dim: expected a positive integer"):
        MLPEncoder((1, 4, 4), latent_dim)
    with pytest.raises(ValueError, match=r"latent_dim: expected a positive integer"):
        MLPDecoder(latent_dim, (1, 4, 4))


def test_numpy_latent_dim_is_accepted():
    np = pytest.importorskip("numpy")
    encoder, decoder = MLPEncoder((1, 4, 4), np.int64(3)), MLPDecoder(np.int64(3), (1, 4, 4))
    assert encoder.latent_dim == decoder.latent_dim == 3 and type(encoder.latent_dim) is int


def test_other_dtype_is_named():
    encoder, decoder = MLPEncoder((1, 4, 4), 3, hidden=(8,)), MLPDecoder(3, (1, 4, 4), hidden=(8,))
    with pytest.raises(ValueError, match=r"x: expected torch.float32.*got torch.float64"):
        encoder(torch.rand(2, 1, 4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"z: expected torch.float32.*got torch.float64"):
        decoder(torch.randn(2, 3, dtype=torch.float64))
    assert decoder.double()(torch.randn(2, 3, dtype=torch.float64)).dtype == torch.float64
