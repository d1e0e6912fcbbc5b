"""Reads from the runs database; every read a user can see goes through here.

One module per concept: ``access`` (who sees what), ``runs_list``,
``run_state`` (JSON shapes for the API and pushes), ``run_page`` (HTML rows),
``viewers`` (renditions behind viewer endpoints), ``topics``. Selectors read
the database only; object storage is ``runs.storage``.
"""
