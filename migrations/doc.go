// Package migrations owns the database schema: versioned SQL files embedded in the binary,
// applied with goose on SQLite (the embedded default) and PostgreSQL (production), and Open,
// which turns a DSN into a ready *gorm.DB.
//
// Each package owns its tables, so its migrations take version numbers from its own range:
// foundation 1–99, bot 100–199, bounties 200–299, ci 300–399, runners 400–499, web 500–599.
// Files may use the dialect tokens listed in dialect.go so one file serves both databases.
package migrations
