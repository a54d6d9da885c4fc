"""Where Postgres comes from (an embedded cluster or your server) and clean databases."""
