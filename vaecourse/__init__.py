"""vaecourse: the course layer on top of the vaecore library.

What lives here names the course: one module per chapter
(``vaecourse.chapters.chNN_<notebook>``) with that chapter's recipes and
helpers, one module of exercise checks per chapter
(``vaecourse.exercises.chNN_<notebook>``), the shared MNIST protocol
(:mod:`vaecourse.protocol`) and the model zoo (:mod:`vaecourse.zoo`), which
maps every checkpoint name to its recipe and resolves the weights by name.

The layers point one way: vaecourse imports vaecore, and vaecore imports
nothing from here (a test checks). Both are installed by one
``pip install`` of the course's repository.
"""
from vaecore import __version__

__all__ = ["__version__", "REPOSITORY_URL", "CHECKPOINT_REF"]

#: The course's repository: ``repository.url`` in ``_config.yml`` (a test checks that they
#: agree; ``tools/set_repository_url.py`` rewrites both). Checkpoints are downloaded from
#: ``{REPOSITORY_URL}/raw/{CHECKPOINT_REF}/checkpoints/``.
REPOSITORY_URL = "https://github.com/vaecore/vae-course"

#: The git reference whose ``checkpoints/`` folder downloads come from: this release's tag,
#: so that an installed version always gets the weights it was published with.
CHECKPOINT_REF = f"v{__version__}"
