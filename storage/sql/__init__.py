"""The SQL store: each transaction written once (:mod:`storage.sql.store` and its domain
mixins), run by an engine per database (:mod:`storage.sql.sqlite`,
:mod:`storage.sql.postgres`) that holds what really differs between them."""
