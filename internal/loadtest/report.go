package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a load run: what ran where, every measured
// phase, the phases merged over rounds, and the checks against targets.
// Print writes it as a table; it encodes as JSON as is.
type Report struct {
	Scenario  string    `json:"scenario"`
	StartedAt time.Time `json:"startedAt"`
	Host      Host      `json:"host"`
	// Target is the API's base URL; Embedded says the tool started that
	// server (and its database) itself, in this process.
	Target   string `json:"target"`
	Embedded bool   `json:"embedded"`
	// Server holds PostgreSQL settings that decide what a commit costs
	// (empty when the database is unknown); Durable says every commit
	// waited for its WAL to reach disk.
	Server  map[string]string `json:"server,omitempty"`
	Durable bool              `json:"durable"`
	Params  []Param           `json:"params"`
	// Results are the phases in the order they ran.
	Results []Result `json:"results"`
	// Totals merge each kind of phase over the rounds.
	Totals []Result `json:"totals"`
	Checks []Check  `json:"checks"`
	Notes  []string `json:"notes,omitempty"`
}

// Host describes the machine the run used.
type Host struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Hostname   string `json:"hostname"`
}

// ThisHost describes the running machine.
func ThisHost() Host {
	h, _ := os.Hostname()
	return Host{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, Hostname: h}
}

// Param is one setting of the run, as the operator gave it.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Check compares a measured figure with its target.
type Check struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Op     string  `json:"op"` // ">=", "<" or "<="
	Target float64 `json:"target"`
	Pass   bool    `json:"pass"`
}

// NewCheck evaluates value op target; op is ">=", "<" or "<=" (the last
// for a figure known only as a bucket's upper bound).
func NewCheck(name string, value float64, op string, target float64) Check {
	pass := value >= target
	switch op {
	case "<":
		pass = value < target
	case "<=":
		pass = value <= target
	}
	return Check{Name: name, Value: value, Op: op, Target: target, Pass: pass}
}

// Figure is a measurement of a phase that the table has no column for,
// such as the projector's average batch size.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// Passed reports whether every check passed.
func (r *Report) Passed() bool {
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return true
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Print writes r as a human-readable table.
func (r *Report) Print(w io.Writer) error {
	var b strings.Builder
	r.printHeader(&b)
	if err := r.printResults(&b); err != nil {
		return err
	}
	r.printFigures(&b)
	for _, res := range append(append([]Result{}, r.Results...), r.Totals...) {
		if res.FirstError != "" {
			fmt.Fprintf(&b, "\n%s round %d: %d failed, e.g. %s", res.Name, res.Round, res.Failed, res.FirstError)
		}
	}
	if err := r.printChecks(&b); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// printHeader prints the run, host, target, database and parameters.
func (r *Report) printHeader(b *strings.Builder) {
	fmt.Fprintf(b, "hmp loadtest %s   %s\n", r.Scenario, r.StartedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(b, "host:     %d CPUs, GOMAXPROCS %d, %s %s/%s\n", r.Host.CPUs, r.Host.GOMAXPROCS, r.Host.GoVersion, r.Host.OS, r.Host.Arch)
	where := "external server"
	if r.Embedded {
		where = "started by this run, in this process"
	}
	fmt.Fprintf(b, "target:   %s (%s)\n", r.Target, where)
	if len(r.Server) > 0 {
		durable := "NOT durable: commits do not wait for disk"
		if r.Durable {
			durable = "durable: every commit waits for its WAL on disk"
		}
		fmt.Fprintf(b, "postgres: %s fsync=%s synchronous_commit=%s wal_sync_method=%s full_page_writes=%s (%s)\n",
			r.Server["server_version"], r.Server["fsync"], r.Server["synchronous_commit"], r.Server["wal_sync_method"],
			r.Server["full_page_writes"], durable)
	}
	ps := make([]string, len(r.Params))
	for i, p := range r.Params {
		ps[i] = p.Name + "=" + p.Value
	}
	fmt.Fprintf(b, "params:   %s\n\n", strings.Join(ps, " "))
}

// printResults prints the table of phases (and their totals).
func (r *Report) printResults(b *strings.Builder) error {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tround\tclients\trate/s\tok\tfailed\tthroughput/s\tp50\tp90\tp99\tp99.9\tmax\tcores: proc\tpg\tother\tsteal\tµs/op: proc\tpg\tother\t")
	row := func(res Result, round string) {
		rate := "-"
		if res.Rate > 0 {
			rate = strconv.FormatFloat(res.Rate, 'f', 0, 64)
		}
		l := res.Latency
		cpu := "-\t-\t-\t-\t-\t-\t-"
		if c := res.CPU; c != nil {
			cpu = fmt.Sprintf("%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t%.0f", c.ProcessCores, c.PostgresCores, c.OtherCores, c.StealCores,
				c.ProcessPerOp, c.PostgresPerOp, c.OtherPerOp)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", res.Name, round, res.Clients, rate, res.OK, res.Failed,
			res.Throughput, fmtDur(l.P50), fmtDur(l.P90), fmtDur(l.P99), fmtDur(l.P999), fmtDur(l.Max), cpu)
	}
	for _, res := range r.Results {
		row(res, strconv.Itoa(res.Round))
	}
	if len(r.Totals) > 0 && len(r.Results) > len(r.Totals) {
		for _, res := range r.Totals {
			row(res, "all")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("(cores: CPU used during the measured window by this process, by the PostgreSQL cluster, by everything else, and\n" +
		" stolen by the hypervisor; µs/op: the same per successful request or transaction)\n")
	return nil
}

// printFigures prints each result's scenario figures.
func (r *Report) printFigures(b *strings.Builder) {
	withTotals := r.Results
	if len(r.Totals) > 0 && len(r.Results) > len(r.Totals) {
		withTotals = append(append([]Result{}, r.Results...), r.Totals...)
	}
	for _, res := range withTotals {
		if len(res.Figures) == 0 {
			continue
		}
		round := strconv.Itoa(res.Round)
		if res.Round == 0 {
			round = "all"
		}
		fs := make([]string, len(res.Figures))
		for i, f := range res.Figures {
			prec := 2
			if f.Value == math.Trunc(f.Value) {
				prec = 0
			}
			fs[i] = f.Name + " " + strconv.FormatFloat(f.Value, 'f', prec, 64)
			if f.Unit != "" {
				fs[i] += " " + f.Unit
			}
		}
		fmt.Fprintf(b, "%s round %s: %s\n", res.Name, round, strings.Join(fs, ", "))
	}
}

// printChecks prints the checks and their verdicts.
func (r *Report) printChecks(b *strings.Builder) error {
	if len(r.Checks) == 0 {
		return nil
	}
	b.WriteString("\nchecks:\n")
	ct := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(ct, "  %s\t%s\t%s %s\t%s\n", c.Name, fmtValue(c.Value), c.Op, fmtValue(c.Target), verdict)
	}
	return ct.Flush()
}

// fmtValue writes v with three significant digits, or as a whole number
// when it has more digits than that before the point.
func fmtValue(v float64) string {
	if math.Abs(v) >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}
