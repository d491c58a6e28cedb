// Package loadtest drives a running HMP over HTTP and measures it: workload
// generators (Seed, RevenueCreates), closed-loop and open-loop runners
// (ClosedLoop, OpenLoop) that record latencies in an HDR-style Histogram,
// a pgbench baseline on the same database (Pgbench), and a Report printed
// as a table or written as JSON. Scenarios (Writes) combine them; `hmp
// loadtest <scenario>` is their command line.
//
// The generator and the server usually share one machine, so the client
// side is kept lean: request bodies are appended into per-worker buffers,
// answers are drained without decoding, and each phase stops by itself
// after its duration (and, for a closed loop, an optional request count).
// Targets must be loopback addresses.
package loadtest
