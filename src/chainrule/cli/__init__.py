"""The ``chainrule`` command line (``chainrule train | eval | graph``)."""
