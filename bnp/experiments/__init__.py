"""The experiments behind the command line: ``bnp compare`` and ``bnp hessian``."""
