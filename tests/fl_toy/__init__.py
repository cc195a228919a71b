"""A toy Flower app for the deployment tests (``tests/test_fl_deploy.py``).

The Flower processes import it as ``fl_toy.app`` (the tests put ``tests/`` on their
``PYTHONPATH``).
"""
