"""The tasks. Importing this package registers every task (see :mod:`neuralsight.tasks.base` for the protocol).

Adding a task: write ``tasks/<name>.py`` with a class decorated by ``@register_task``, ship its preset in
``neuralsight/configs/<preset>.toml``, and import the module here.
"""

from neuralsight.tasks import classify, forecast, segment, segment3d, textgen  # noqa: F401
