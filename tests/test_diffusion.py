"""vaecore.diffusion against closed forms: the forward marginal, the one-step posterior,
and the sampler run with the exact noise predictor of Gaussian data."""
import pytest
import torch
from torch.distributions import MultivariateNormal, Normal

from vaecore import diffusion
from vaecore.diffusion import Schedule


def test_the_closed_form_marginal_matches_iterated_noising():
    schedule = Schedule.linear(50)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000, 1), 1.5, dtype=torch.float64)
    x = x0.clone()
    for t in range(30):  # x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) noise
        x = (1 - schedule.betas[t]).sqrt() * x + schedule.betas[t].sqrt() * torch.randn(
            x.shape, generator=g, dtype=torch.float64)
    bar = schedule.alpha_bar[29]
    direct = diffusion.q_sample(schedule, x0, torch.full((len(x0),), 29),
                                torch.randn(x0.shape, generator=g, dtype=torch.float64))
    for samples in (x, direct):
        assert samples.mean().item() == pytest.approx(1.5 * bar.sqrt().item(), abs=0.01)
        assert samples.var().item() == pytest.approx((1 - bar).item(), rel=0.01)


def test_the_one_step_posterior_is_bayes_rule():
    """q(x_{t-1} | x_t, x_0) against the joint Gaussian of (x_{t-1}, x_t) given x_0."""
    schedule = Schedule.cosine(20)
    x0, xt = torch.tensor([[0.7]], dtype=torch.float64), torch.tensor([[-0.4]], dtype=torch.float64)
    for t in (1, 7, 19):
        a_prev, alpha = schedule.alpha_bar[t - 1], schedule.alphas[t]
        mean = torch.stack([a_prev.sqrt() * x0[0, 0], (a_prev * alpha).sqrt() * x0[0, 0]])
        v = 1 - a_prev
        cov = torch.stack([torch.stack([v, alpha.sqrt() * v]),
                           torch.stack([alpha.sqrt() * v, alpha * v + schedule.betas[t]])])
        joint = MultivariateNormal(mean, cov)
        # conditional of the first coordinate given the second
        cond_mean = mean[0] + cov[0, 1] / cov[1, 1] * (xt[0, 0] - mean[1])
        cond_var = cov[0, 0] - cov[0, 1] ** 2 / cov[1, 1]
        post = schedule.posterior(x0, xt, torch.tensor([t]))
        assert post.mean.item() == pytest.approx(cond_mean.item(), rel=1e-10)
        assert post.variance.item() == pytest.approx(cond_var.item(), rel=1e-10)
        # and as densities: log q(y | x_t, x_0) = log q(y, x_t | x_0) - log q(x_t | x_0)
        y = torch.tensor(0.3, dtype=torch.float64)
        conditional = (joint.log_prob(torch.stack([y, xt[0, 0]]))
                       - Normal(mean[1], cov[1, 1].sqrt()).log_prob(xt[0, 0]))
        assert Normal(post.mean[0, 0], post.variance[0, 0].sqrt()).log_prob(y).item() == \
            pytest.approx(conditional.item(), rel=1e-10)
    assert schedule.posterior_variance[0] == 0


def oracle(schedule, mu, s2):
    """The exact E[noise | x_t] when x_0 ~ N(mu, s2 I): b (x_t - a mu) / (a² s2 + b²)."""
    def predict(x, t):
        bar = schedule.alpha_bar.to(x.dtype)[t].view(-1, *([1] * (x.dim() - 1)))
        a, b = bar.sqrt(), (1 - bar).sqrt()
        return b * (x - a * mu) / (a * a * s2 + b * b)
    return predict


@pytest.mark.parametrize("steps", [None, 25])
def test_sampling_with_the_exact_denoiser_is_exact_where_ho_et_al_say_it_is(steps):
    """With the exact noise predictor the sampler's mean step is E[x_{t-1} | x_t]; the
    variance sigma_t^2 = beta_t is the exact reverse variance when x_0 ~ N(0, I), and
    sigma_t^2 = beta-tilde_t when x_0 is a single point (Ho et al., Section 3.2); for data
    in between, the two bracket the data's variance. Also with a respaced schedule."""
    train = Schedule.linear(100)
    schedule = train if steps is None else train.respaced(steps)
    g = torch.Generator().manual_seed(1)
    n = 20_000  # the sample variance's standard error is then sqrt(2 / n) = 1 % of it

    def draw(mu, s2, variance):
        return diffusion.sample(oracle(train, mu, s2), schedule, (n, 1), generator=g,
                                variance=variance, dtype=torch.float64)

    standard = draw(0.0, 1.0, "beta")
    assert standard.mean().item() == pytest.approx(0.0, abs=4 / n ** 0.5)
    assert standard.var().item() == pytest.approx(1.0, rel=4 * (2 / n) ** 0.5)
    point = draw(2.0, 0.0, "posterior")
    assert point.sub(2.0).abs().max().item() < 1e-6
    low, high = draw(2.0, 0.25, "posterior"), draw(2.0, 0.25, "beta")
    for x in (low, high):
        assert x.mean().item() == pytest.approx(2.0, abs=4 * 0.5 / n ** 0.5)
    assert low.var().item() < 0.25 * (1 - 4 * (2 / n) ** 0.5) < high.var().item()


def test_clipping_the_estimate_of_x0_goes_through_the_one_step_posterior():
    """Unclamped (a range no estimate reaches), the posterior-mean step is Algorithm 2's;
    clamped, the last step returns the clamped estimate, so samples stay in the range."""
    schedule = Schedule.linear(50)
    torch.manual_seed(0)
    wild = diffusion.MLPDenoiser(3, hidden=16, layers=2).double()
    plain = diffusion.sample(wild, schedule, (64, 3), generator=torch.Generator().manual_seed(1),
                             dtype=torch.float64)
    wide = diffusion.sample(wild, schedule, (64, 3),
                            generator=torch.Generator().manual_seed(1), dtype=torch.float64,
                            clip=(-1e12, 1e12))
    torch.testing.assert_close(wide, plain, rtol=1e-9, atol=1e-9)
    far = diffusion.sample(lambda x, t: torch.full_like(x, -40.0), schedule, (64, 3),
                           generator=torch.Generator().manual_seed(1), clip=(-1.0, 1.0))
    assert far.min().item() >= -1.0 and far.max().item() == 1.0
    with pytest.raises(ValueError, match=r"clip must be \(low, high\) with low < high"):
        diffusion.sample(wild, schedule, (1, 3), clip=(1.0, -1.0))


def test_respacing_keeps_alpha_bar_at_the_kept_steps():
    train = Schedule.linear(1000)
    short = train.respaced(50)
    assert len(short) == 50 and short.timesteps[-1] == 999 and short.timesteps[0] == 0
    torch.testing.assert_close(short.alpha_bar, train.alpha_bar[short.timesteps])
    assert train.respaced(1000).betas.sub(train.betas).abs().max() < 1e-12
    with pytest.raises(ValueError, match="cannot respace 1000 steps into 2000"):
        train.respaced(2000)
    one = train.respaced(1)  # a single step starts from the last one, x_T
    assert one.timesteps.tolist() == [999]
    assert one.alpha_bar[0].item() == pytest.approx(train.alpha_bar[-1].item(), rel=1e-9)


def test_the_schedules_end_near_pure_noise():
    for schedule in (Schedule.linear(1000), Schedule.linear(100), Schedule.cosine(100)):
        assert schedule.alpha_bar[-1] < 1e-3 and schedule.alpha_bar[0] > 0.99


def test_the_loss_is_the_squared_noise_error_per_example():
    schedule = Schedule.linear(100)
    x0 = torch.randn(64, 3, generator=torch.Generator().manual_seed(2))
    zero = diffusion.noise_prediction_loss(lambda x, t: torch.zeros_like(x), schedule, x0,
                                           generator=torch.Generator().manual_seed(3))
    assert zero.shape == (64,)
    # with a zero prediction the loss is |noise|²: chi-square with 3 degrees of freedom
    assert zero.mean().item() == pytest.approx(3, rel=0.25)
    denoiser = diffusion.MLPDenoiser(3, hidden=32, layers=2)
    loss = diffusion.noise_prediction_loss(denoiser, schedule, x0)
    loss.mean().backward()
    assert loss.shape == (64,) and denoiser.inp.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="must predict the noise"):
        diffusion.noise_prediction_loss(lambda x, t: x[:, :1], schedule, x0)


def test_a_trained_mlp_denoiser_learns_a_gaussian():
    torch.manual_seed(0)
    schedule = Schedule.linear(100)
    data = 1.0 + 0.5 * torch.randn(4096, 2)
    denoiser = diffusion.MLPDenoiser(2, hidden=64, layers=2, time_dim=16)
    opt = torch.optim.Adam(denoiser.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(250):
        batch = data[torch.randint(len(data), (256,), generator=g)]
        loss = diffusion.noise_prediction_loss(denoiser, schedule, batch, generator=g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = diffusion.sample(denoiser, schedule, (2000, 2), generator=g)
    assert x.mean(0).sub(1.0).abs().max() < 0.1
    assert x.std(0).sub(0.5).abs().max() < 0.1


def test_inputs_are_checked():
    schedule = Schedule.linear(10)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 9\]"):
        diffusion.q_sample(schedule, torch.zeros(2, 1), torch.tensor([0, 10]), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="integer tensor of shape"):
        diffusion.q_sample(schedule, torch.zeros(2, 1), torch.tensor([0.5, 1]), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="every value in"):
        Schedule(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="'posterior' or 'beta'"):
        diffusion.sample(lambda x, t: x, schedule, (1, 1), variance="ddim")
    with pytest.raises(ValueError, match="dim must be even"):
        diffusion.TimeEmbedding(5)


def test_the_time_embedding_and_the_latent_scale():
    e = diffusion.TimeEmbedding(8)(torch.tensor([0, 5]))
    assert e.shape == (2, 8) and torch.equal(e[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    z = 3.0 * torch.randn(10_000, 4, generator=torch.Generator().manual_seed(0))
    assert diffusion.latent_scale(z) == pytest.approx(1 / 3, rel=0.02)
    with pytest.raises(ValueError, match="cannot rescale"):
        diffusion.latent_scale(torch.ones(5, 2))
