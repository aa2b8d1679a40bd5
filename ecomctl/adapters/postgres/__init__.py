"""PostgreSQL: connection pool, repositories, migrations."""
