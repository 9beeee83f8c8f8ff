"""vaecore.seeding: a seeded block sees torch.manual_seed's numbers and leaves the global RNG alone."""
import pytest
import torch

from vaecore.seeding import local_seed


def test_the_block_is_seeded_and_the_caller_stream_is_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with local_seed(0):
        inside = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(inside, torch.rand(4))
    torch.manual_seed(123)
    with local_seed(0):
        torch.rand(100)
    assert torch.equal(torch.rand(3), expected_next)


def test_seed_must_be_an_int():
    with pytest.raises(ValueError, match="seed"):
        with local_seed(1.5):
            pass
