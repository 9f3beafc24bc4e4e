-- The foundation's one table: key/value settings the server keeps between starts
-- (for example the instance id and the schema's first start).
-- +goose Up
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at ${TIME} NOT NULL DEFAULT ${NOW}
);

-- +goose Down
DROP TABLE settings;
