package loadtest

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// CPU is where the machine's CPU time went during a phase, in cores (CPU
// seconds per second of the phase) and in CPU microseconds per successful
// operation. On a machine shared by the generator, the API and PostgreSQL
// this says which of them a faster run has to make cheaper.
type CPU struct {
	// ProcessCores is this process (the generator, and the API when it
	// runs in-process).
	ProcessCores float64 `json:"processCores"`
	// PostgresCores is the PostgreSQL cluster serving the run (its
	// postmaster and every backend), when it runs on this machine.
	PostgresCores float64 `json:"postgresCores"`
	// OtherCores is every other busy CPU of the machine: pgbench, other
	// programs (and PostgreSQL when its processes are unknown).
	OtherCores float64 `json:"otherCores"`
	// StealCores is time the hypervisor gave to other guests: a noisy
	// neighbour, not this run.
	StealCores float64 `json:"stealCores"`
	// IdleCores is the unused rest.
	IdleCores float64 `json:"idleCores"`
	// ProcessPerOp, PostgresPerOp and OtherPerOp are CPU microseconds per
	// successful operation.
	ProcessPerOp  float64 `json:"processUsPerOp"`
	PostgresPerOp float64 `json:"postgresUsPerOp"`
	OtherPerOp    float64 `json:"otherUsPerOp"`
}

type cpuSample struct {
	at                     time.Time
	proc                   time.Duration // this process, user + system
	pg                     float64       // the PostgreSQL cluster, in seconds
	busy, steal, idle, all float64       // machine, in seconds
	ok                     bool
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// sampleCPU reads the counters; postmaster, when not 0, is the PID of the
// PostgreSQL cluster to account for.
func sampleCPU(postmaster int) cpuSample {
	s := cpuSample{at: time.Now()}
	if postmaster > 0 {
		s.pg = clusterCPU(postmaster)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.proc = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 9 || string(fields[0]) != "cpu" {
		return s
	}
	v := make([]float64, len(fields)-1)
	for i, f := range fields[1:] {
		n, _ := strconv.ParseFloat(string(f), 64)
		v[i] = n / clockTicks
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice]
	// (guest time is already counted in user).
	s.idle = v[3] + v[4]
	s.steal = v[7]
	s.busy = v[0] + v[1] + v[2] + v[5] + v[6]
	s.all = s.busy + s.idle + s.steal
	s.ok = true
	return s
}

// cpuBetween returns the usage from a to b for ops successful operations;
// nil when the machine's counters are not available.
func cpuBetween(a, b cpuSample, ops uint64) *CPU {
	wall := b.at.Sub(a.at).Seconds()
	if !a.ok || !b.ok || wall <= 0 {
		return nil
	}
	proc := (b.proc - a.proc).Seconds()
	pg := max(b.pg-a.pg, 0)
	other := max(b.busy-a.busy-proc-pg, 0)
	c := &CPU{
		ProcessCores:  proc / wall,
		PostgresCores: pg / wall,
		OtherCores:    other / wall,
		StealCores:    (b.steal - a.steal) / wall,
		IdleCores:     (b.idle - a.idle) / wall,
	}
	if ops > 0 {
		c.ProcessPerOp = proc / float64(ops) * 1e6
		c.PostgresPerOp = pg / float64(ops) * 1e6
		c.OtherPerOp = other / float64(ops) * 1e6
	}
	return c
}

// clusterCPU returns the CPU seconds a PostgreSQL cluster used so far: its
// postmaster's own and its exited children's (which the postmaster reaped)
// plus every live child's. Linux only; 0 elsewhere.
func clusterCPU(postmaster int) float64 {
	st, ok := procStat(postmaster)
	if !ok {
		return 0
	}
	total := st.utime + st.stime + st.cutime + st.cstime
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return total
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == postmaster {
			continue
		}
		if c, ok := procStat(pid); ok && c.ppid == postmaster {
			total += c.utime + c.stime
		}
	}
	return total
}

type procTimes struct {
	ppid                         int
	utime, stime, cutime, cstime float64 // seconds
}

func procStat(pid int) (procTimes, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procTimes{}, false
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procTimes{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 15 {
		return procTimes{}, false
	}
	num := func(j int) float64 {
		n, _ := strconv.ParseFloat(string(f[j]), 64)
		return n / clockTicks
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	return procTimes{ppid: ppid, utime: num(11), stime: num(12), cutime: num(13), cstime: num(14)}, true
}

// PostmasterPID returns the PID of the PostgreSQL server at url when it
// runs on this machine (the parent of the backend serving a connection),
// else 0: CPU accounting then counts it among "other".
func PostmasterPID(ctx context.Context, url string) int {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var backend int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0
	}
	st, ok := procStat(backend)
	if !ok || st.ppid <= 1 {
		return 0
	}
	return st.ppid
}

// Settle waits until this process and the PostgreSQL cluster (when
// postmaster is known) have together used less than 0.1 core over half a
// second, or maxWait passed, and returns how long it waited. Work a phase
// left behind (an event pipeline catching up, a checkpoint) then does not
// bill the next phase.
func Settle(ctx context.Context, postmaster int, maxWait time.Duration) time.Duration {
	start := time.Now()
	prev := sampleCPU(postmaster)
	for time.Since(start) < maxWait {
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-time.After(500 * time.Millisecond):
		}
		cur := sampleCPU(postmaster)
		used := (cur.proc - prev.proc).Seconds() + (cur.pg - prev.pg)
		if used/cur.at.Sub(prev.at).Seconds() < 0.1 {
			break
		}
		prev = cur
	}
	return time.Since(start)
}
