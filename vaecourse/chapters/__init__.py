"""One module per chapter, named after its notebook: ``chapters/05_first_vae.ipynb`` ↔ ``ch05_first_vae``.

Each module holds its chapter's recipes (``RECIPES``, checkpoint name →
:class:`vaecourse.recipe.Recipe`) and the helpers only that chapter uses.
Chapters 1 to 4 load no checkpoint and have no module here.
"""
