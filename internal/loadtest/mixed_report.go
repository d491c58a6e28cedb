package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// MixedSchema names the JSON schema of MixedReport; it changes only when a
// field changes meaning or disappears.
const MixedSchema = "hmp.loadtest.mixed/v1"

// MixedReport is a mixed run over one or more profiles (--compare): each
// profile's figures, and their comparison with the first.
type MixedReport struct {
	Schema    string    `json:"schema"`
	StartedAt time.Time `json:"startedAt"`
	Host      Host      `json:"host"`
	Target    string    `json:"target"`
	Embedded  bool      `json:"embedded"`
	Scenario  string    `json:"scenario"`
	Orgs      int       `json:"orgs"`
	Params    []Param   `json:"params"`
	// Data describes the seeded data set the run used (when known).
	Data *DataSet `json:"data,omitempty"`
	// Profiles are the runs in the order they ran.
	Profiles []MixedResult `json:"profiles"`
	// Comparison compares every profile with the first (two or more).
	Comparison []CompareRow `json:"comparison,omitempty"`
	Notes      []string     `json:"notes,omitempty"`
}

// DataSet is the seeded data a run read and wrote.
type DataSet struct {
	Orgs          int     `json:"orgs"`
	Days          int     `json:"days"`
	Density       float64 `json:"density"`
	Rows          int64   `json:"rows"`
	SeedSeconds   float64 `json:"seedSeconds"`
	RowsPerSecond float64 `json:"rowsPerSecond"`
	DatabaseBytes int64   `json:"databaseBytes"`
	Reused        bool    `json:"reused"`
	// Password is the seeded users' password.
	Password string `json:"-"`
}

// CompareRow is one operation (or reads, writes, all, freshness) across
// profiles: values in profile order, ratios against the first profile.
type CompareRow struct {
	Name            string    `json:"name"`
	Throughput      []float64 `json:"throughput"`
	P99Ms           []float64 `json:"p99Ms"`
	ThroughputRatio []float64 `json:"throughputRatio"`
	P99Ratio        []float64 `json:"p99Ratio"`
}

// NewMixedReport returns a report of runs, with the comparison filled in
// when there are two or more.
func NewMixedReport(results []MixedResult) *MixedReport {
	r := &MixedReport{Schema: MixedSchema, StartedAt: time.Now().UTC(), Host: ThisHost(), Profiles: results}
	if len(results) > 0 {
		r.Scenario, r.Orgs = results[0].Scenario, results[0].Orgs
	}
	if len(results) < 2 {
		return r
	}
	row := func(name string, get func(MixedResult) (OpStats, bool)) {
		c := CompareRow{Name: name}
		for _, p := range results {
			s, _ := get(p)
			c.Throughput = append(c.Throughput, s.Throughput)
			c.P99Ms = append(c.P99Ms, s.P99Ms)
		}
		for i := range results {
			c.ThroughputRatio = append(c.ThroughputRatio, ratio(c.Throughput[i], c.Throughput[0]))
			c.P99Ratio = append(c.P99Ratio, ratio(c.P99Ms[i], c.P99Ms[0]))
		}
		r.Comparison = append(r.Comparison, c)
	}
	row("all", func(p MixedResult) (OpStats, bool) { return p.All, true })
	row("reads", func(p MixedResult) (OpStats, bool) { return p.Reads, true })
	row("writes", func(p MixedResult) (OpStats, bool) { return p.Writes, true })
	for _, op := range results[0].Ops {
		name := op.Name
		row(name, func(p MixedResult) (OpStats, bool) {
			for _, o := range p.Ops {
				if o.Name == name {
					return o, true
				}
			}
			return OpStats{}, false
		})
	}
	row("freshness", func(p MixedResult) (OpStats, bool) {
		if p.Freshness == nil {
			return OpStats{}, false
		}
		return *p.Freshness, true
	})
	return r
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round2(a / b)
}

// WriteJSON writes the report to path ("-": w).
func (r *MixedReport) WriteJSON(path string, w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = w.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}

// Print writes the short text summary.
func (r *MixedReport) Print(w io.Writer) error {
	fmt.Fprintf(w, "mixed load, scenario %s, %d orgs", r.Scenario, r.Orgs)
	if r.Data != nil {
		fmt.Fprintf(w, " (%d days, density %g, %.1f MiB", r.Data.Days, r.Data.Density, float64(r.Data.DatabaseBytes)/(1<<20))
		if !r.Data.Reused {
			fmt.Fprintf(w, ", seeded in %.1f s at %.0f rows/s", r.Data.SeedSeconds, r.Data.RowsPerSecond)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	for _, p := range r.Profiles {
		if err := printMixedResult(w, p); err != nil {
			return err
		}
	}
	if err := r.printComparison(w); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

// printMixedResult prints one run: its operations, errors, freshness,
// CPU, cache and ramp.
func printMixedResult(w io.Writer, p MixedResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	mode := fmt.Sprintf("open loop %.0f/s", p.Rate)
	if p.Mode == "closed" {
		mode = fmt.Sprintf("closed loop %d clients", p.Clients)
	}
	fmt.Fprintf(w, "\nprofile %s: %s, %.1f s measured\n", orDash(p.Profile), mode, p.DurationMs/1000)
	fmt.Fprintln(tw, "operation\tok/s\tok\tfailed\tp50 ms\tp95 ms\tp99 ms\tmax ms\t")
	for _, s := range append(append([]OpStats{}, p.Ops...), p.Reads, p.Writes, p.All) {
		fmt.Fprintf(tw, "%s\t%.1f\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", s.Name, s.Throughput, s.OK, s.Failed, s.P50Ms, s.P95Ms, s.P99Ms, s.MaxMs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p.ColdRedirects > 0 {
		fmt.Fprintf(w, "%d requests went to the most popular organization while theirs logged in (--login-first logs in more beforehand)\n", p.ColdRedirects)
	}
	if p.All.Failed > 0 {
		fmt.Fprintf(w, "errors by status: %v (first: %s)\n", p.All.Statuses, p.All.FirstError)
	}
	if f := p.Freshness; f != nil {
		fmt.Fprintf(w, "freshness (write to visible): p50 %.1f ms, p99 %.1f ms over %d probes (%d failed); drain after the load %.1f ms\n",
			f.P50Ms, f.P99Ms, f.OK+f.Failed, f.Failed, p.DrainMs)
	}
	if c := p.CPU; c != nil {
		fmt.Fprintf(w, "cpu: process %.2f cores, postgres %.2f cores, other %.2f, idle %.2f; rss %.0f MiB (peak %.0f MiB)\n",
			c.ProcessCores, c.PostgresCores, c.OtherCores, c.IdleCores, float64(p.RSSBytes)/(1<<20), float64(p.PeakRSSBytes)/(1<<20))
	}
	if p.CacheHitRate != nil {
		fmt.Fprintf(w, "cache hit rate %.0f %%\n", 100**p.CacheHitRate)
	} else {
		fmt.Fprintln(w, "cache hit rate: no cache metrics (hmp_cache_hits_total) on this server")
	}
	if rp := p.Ramp; rp != nil {
		for _, s := range rp.Steps {
			fmt.Fprintf(w, "ramp %8.0f/s: %8.1f ok/s, p99 %8.2f ms, errors %.2f %% %s\n", s.Rate, s.Throughput, s.P99Ms, 100*s.ErrorShare, passWord(s.Pass))
		}
		if rp.Knee != nil {
			fmt.Fprintf(w, "knee: %.0f requests/s (%.1f ok/s, p99 %.2f ms within %.0f ms)", rp.Knee.Rate, rp.Knee.Throughput, rp.Knee.P99Ms, rp.BudgetMs)
		} else {
			fmt.Fprintf(w, "knee: below the first step (%.0f/s)", p.Rate)
		}
		if rp.Broke != "" {
			fmt.Fprintf(w, "; stopped: %s", rp.Broke)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// printComparison prints the profiles side by side with their ratios to
// the first.
func (r *MixedReport) printComparison(w io.Writer) error {
	if len(r.Comparison) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\ncomparison (ratio = profile / %s):\n", orDash(r.Profiles[0].Profile))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "operation\t")
	for _, p := range r.Profiles {
		fmt.Fprintf(tw, "%s ok/s\t%s p99 ms\t", orDash(p.Profile), orDash(p.Profile))
	}
	for _, p := range r.Profiles[1:] {
		fmt.Fprintf(tw, "%s ok/s ratio\t%s p99 ratio\t", orDash(p.Profile), orDash(p.Profile))
	}
	fmt.Fprintln(tw)
	for _, c := range r.Comparison {
		fmt.Fprintf(tw, "%s\t", c.Name)
		for i := range r.Profiles {
			fmt.Fprintf(tw, "%.1f\t%.2f\t", c.Throughput[i], c.P99Ms[i])
		}
		for i := 1; i < len(r.Profiles); i++ {
			fmt.Fprintf(tw, "%.2f\t%.2f\t", c.ThroughputRatio[i], c.P99Ratio[i])
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func passWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "OVER"
}
