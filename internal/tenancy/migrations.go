package tenancy

import (
	"embed"

	"hmp/internal/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the tables this package owns.
func Migrations() postgres.MigrationSet {
	return postgres.EmbeddedSet("tenancy", migrationFiles)
}
