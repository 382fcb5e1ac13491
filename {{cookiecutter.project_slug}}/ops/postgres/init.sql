-- Run once by the compose PostgreSQL on its first start (an empty data volume). The two roles of
-- docs/development.md: the owner runs migrations, the runtime role serves under row-level security.
-- Local development passwords only.
CREATE ROLE app_owner LOGIN PASSWORD 'owner-password';
CREATE ROLE app_runtime LOGIN PASSWORD 'runtime-password' NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE app_dev OWNER app_owner;
