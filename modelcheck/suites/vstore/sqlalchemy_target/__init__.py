"""A second target: the store implemented client-side in Python with SQLAlchemy Core.

Logic runs in Python, data lives in Postgres (schema ``vstore`` plus one ``wt_<pk>``
schema per branch); see :mod:`modelcheck.suites.vstore.sqlalchemy_target.target`.
"""
