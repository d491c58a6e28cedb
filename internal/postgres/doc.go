// Package postgres holds what every storage package shares: the connection
// pool with the scaling guide's defaults, the one transaction helper, the
// translation of driver errors into the domain error model, the runner of
// the packages' embedded migrations, and a private local cluster for the
// embedded default and for tests.
package postgres
