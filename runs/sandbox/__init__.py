"""The recipe sandbox (docs/recipes.md): runs user-supplied Python under bubblewrap.

``bwrap.py`` builds the command line, ``runner.py`` runs it with rlimits and a
wall-clock timeout and collects bounded output, ``harness.py`` is the script
that runs *inside* the sandbox (it imports nothing of the project). No Django
here beyond settings: the recipe service and the task pass plain values in.
"""
