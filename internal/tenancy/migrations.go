package tenancy

import (
	"embed"
	"io/fs"

	"hmp/internal/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the tables this package owns.
func Migrations() postgres.MigrationSet {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return postgres.MigrationSet{Name: "tenancy", FS: sub}
}
