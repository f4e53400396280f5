"""The commands of the ``revenium`` command line, one module each (``revenium.cli`` parses).

Each command module has ``configure_parser(parser)``, which adds the command's arguments, and
``run(args, out) -> int``, which returns the exit code. A problem the user can fix (a missing
or corrupt file, no API key) is raised as :class:`~revenium._cli.common.CliError`, which
``revenium.cli.main`` prints as one line on stderr.
"""
