"""scangate: gate a CI/CD pipeline on the results of a commercial DAST scan.

The command line is the only supported interface; nothing here is a Python API.
"""

__version__ = "0.1.0"
