"""Everything that knows the Lightly formats and services, around one layout object.

* ``datasource``: :class:`Datasource`, the one place that names every path of an export, and
  Lightly's frame-naming rule.
* ``export`` / ``validate``: write the datasource (seed 004), check it, read predictions back.
* ``config``: selection configs: built from strengths, loaded from files, checked offline.
* ``selection``: run a config locally (``lightly_mundig``); ``schedule``: run it on Lightly's
  platform (``ApiWorkflowClient``); ``recorder``: the local stand-in behind ``schedule --dry-run``.
* ``push``: the export and its videos to a bucket (fsspec).
"""
