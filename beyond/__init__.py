"""Everything beyond the blog, on top of dqn.py: one module per job.

cli (argv to a finished run) uses hooks, evaluation, files, watching and pixels; each of
those uses dqn.py and nothing above it. dqn.py never imports from here.
"""


class UsageError(Exception):
    """A bad flag, path or file: reported as one line on stderr, exit status 2."""
