"""A second target: the store implemented client-side in Python with SQLAlchemy Core.

Logic runs in Python, data lives in Postgres in the target's own layout (schema
``sa_store``, not docs/domain.md's ``vstore`` tables) plus one ``wt_<pk>`` schema per
branch, and the target brings its own observer; see
:mod:`modelcheck.suites.vstore.sqlalchemy_target.target`.
"""
