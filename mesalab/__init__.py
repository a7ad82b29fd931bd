"""mesalab: when does a learning algorithm emerge in a network's activations?

One import namespace: ``mesalab.tasks`` (the task generator: torch, numpy and einops only),
``mesalab.archs``, ``mesalab.studies``, ``mesalab.analysis`` (these need ``mesalab[study]``).

A built wheel holds those packages under ``mesalab/``. A source checkout keeps them as folders at
its top (the project's layout), beside this one, so there this package's search path is widened
to the checkout's root. Nothing is imported here: ``import mesalab.tasks`` stays light.
"""

from pathlib import Path

_here = Path(__file__).resolve().parent
if not (_here / "tasks").is_dir() and (_here.parent / "tasks" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # noqa: F821 (a package's __path__)
