// Package loadtest drives a running HMP over HTTP and measures it: workload
// generators (Seed, RevenueCreates), closed-loop and open-loop runners
// (ClosedLoop, OpenLoop) that record latencies in an HDR-style Histogram,
// a pgbench baseline on the same database (Pgbench), and a Report printed
// as a table or written as JSON. Scenarios combine them: Writes (the API
// against pgbench), Projection (a generated event backlog through the
// reports projector, one scaling profile against another) and Freshness
// (how long a write takes to show in the reports, from the projector's
// histogram and from end-to-end probes); `hmp loadtest <scenario>` is
// their command line.
//
// The generator and the server usually share one machine, so the client
// side is kept lean: request bodies are appended into per-worker buffers,
// answers are drained without decoding, and each phase stops by itself
// after its duration (and, for a closed loop, an optional request count).
// Targets must be loopback addresses.
package loadtest
