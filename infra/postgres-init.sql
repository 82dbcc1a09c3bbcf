-- Prefect's own database beside the metrics store, owned by the same role.
CREATE DATABASE prefect OWNER northstar;
