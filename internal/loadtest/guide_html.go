package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"os"
	"strings"
)

// The guide's HTML page: one self-contained page (inline SVG, no script,
// no network) with the guide's claim beside each measured figure, as a
// table and as bar charts.

// WriteHTML writes the page to path.
func (r *GuideReport) WriteHTML(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.RenderHTML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// RenderHTML writes the page to w.
func (r *GuideReport) RenderHTML(w io.Writer) error {
	var b strings.Builder
	esc := template.HTMLEscapeString
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hmp loadtest guide</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.met{color:#2ca02c}.missed{color:#d62728}
.chart{display:block;margin:1em 0}.note{color:#555;font-size:90%}</style></head><body>`)
	fmt.Fprintf(&b, `<h1>The scaling guide's table, measured</h1><p>%s · %d CPUs · %s · PostgreSQL %s (fsync=%s)</p>`,
		esc(r.StartedAt.Format("2006-01-02 15:04 MST")), r.Host.CPUs, esc(r.Host.GoVersion), esc(r.Server["server_version"]), esc(r.Server["fsync"]))
	ps := make([]string, len(r.Params))
	for i, p := range r.Params {
		ps[i] = esc(p.Name + "=" + p.Value)
	}
	fmt.Fprintf(&b, `<p class="note">%s</p>`, strings.Join(ps, " "))

	r.htmlClaims(&b)
	b.WriteString(`<h2>The machine's limits (same run)</h2><table><tr><th>limit</th><th>per second</th><th>p99 ms</th></tr>`)
	fmt.Fprintf(&b, `<tr><td>pgbench, two-insert commit</td><td>%.0f</td><td>%.2f</td></tr><tr><td>bare net/http JSON endpoint</td><td>%.0f</td><td>%.2f</td></tr></table>`,
		r.Limits.PgbenchTps, r.Limits.PgbenchP99Ms, r.Limits.BareHTTPRps, r.Limits.BareHTTPP99Ms)

	r.htmlProfiles(&b)
	r.htmlOperations(&b)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, `<p class="note">%s</p>`, esc(n))
	}
	b.WriteString(`</body></html>`)
	_, err := io.WriteString(w, b.String())
	return err
}

// htmlClaims writes the guide's claims beside the measured figures, with
// their charts.
func (r *GuideReport) htmlClaims(b *strings.Builder) {
	esc := template.HTMLEscapeString
	b.WriteString(`<h2>The guide's claims beside the measured figures</h2><table><tr><th>claim</th><th>profile</th><th>the guide says</th><th>measured</th><th></th></tr>`)
	for _, c := range r.Claims {
		cls, verdict := "met", "met"
		if !c.Met {
			cls, verdict = "missed", "not met"
		}
		fmt.Fprintf(b, `<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="%s">%s</td></tr>`, esc(c.Name), esc(c.Profile),
			esc(claimValue(c.Claim, c.Unit)), esc(claimValue(c.Measured, c.Unit)), cls, verdict)
	}
	b.WriteString(`</table>`)
	for _, name := range []string{"event processing capacity", "auto-correction efficiency", "response time lower (p99)"} {
		var labels []string
		var claim, measured []float64
		unit := "x"
		for _, c := range r.Claims {
			if c.Name == name {
				labels, claim, measured, unit = append(labels, c.Profile), append(claim, c.Claim), append(measured, c.Measured), c.Unit
			}
		}
		if len(labels) > 0 {
			yl := "× the reference (" + esc(first(r.Order)) + ")"
			if unit == "%" {
				yl = "% lower than the reference"
			}
			b.WriteString(pairBars(name+": the guide's claim vs measured", yl, labels, claim, measured))
		}
	}

}

// htmlProfiles writes every profile's figures and their charts.
func (r *GuideReport) htmlProfiles(b *strings.Builder) {
	esc := template.HTMLEscapeString
	b.WriteString(`<h2>Per profile</h2><table><tr><th>profile</th><th>events/s</th><th>× ref</th><th>corrections/s</th><th>mode</th><th>× ref</th>` +
		`<th>cache entries</th><th>hit rate</th><th>reads/s</th><th>p50 ms</th><th>p99 ms</th><th>writes/s</th><th>÷ pgbench</th><th>freshness p99 ms</th></tr>`)
	var events, corrections, writes, p99 []float64
	for _, name := range r.Order {
		p := r.Profiles[name]
		fmt.Fprintf(b, `<tr><td>%s</td><td>%.0f</td><td>%.2f</td><td>%.0f</td><td>%s</td><td>%.2f</td><td>%d</td><td>%.2f</td><td>%.1f</td><td>%.2f</td><td>%.2f</td><td>%.0f</td><td>%.2f</td><td>%.1f</td></tr>`,
			esc(name), p.EventsPerSecond, r.Ratios.EventCapacity[name], p.CorrectionsPerSecond, esc(p.CorrectionMode), r.Ratios.CorrectionsByProfile[name],
			p.CacheEntries, p.CacheHitRate, p.ReadsPerSecond, p.P50Ms["all"], p.P99Ms["all"], p.WritesPerSecond, r.Ratios.WritesToPgbench[name], p.FreshnessP99Ms)
		events, corrections = append(events, p.EventsPerSecond), append(corrections, p.CorrectionsPerSecond)
		writes, p99 = append(writes, p.WritesPerSecond), append(p99, p.P99Ms["all"])
	}
	b.WriteString(`</table>`)
	b.WriteString(bars("events/s (backlog drain)", "events/s", r.Order, events))
	b.WriteString(bars("corrections/s", "corrections/s", r.Order, corrections))
	b.WriteString(bars("writes/s (closed loop), pgbench beside", "per second", append(append([]string{}, r.Order...), "pgbench"), append(writes, r.Limits.PgbenchTps)))
	b.WriteString(bars(fmt.Sprintf("p99 ms of all requests at %s/s offered", paramValue(r.Params, "rate")), "ms", r.Order, p99))
}

// htmlOperations writes each operation's p99 per profile.
func (r *GuideReport) htmlOperations(b *strings.Builder) {
	esc := template.HTMLEscapeString
	if len(r.Order) > 0 {
		b.WriteString(`<h2>p99 ms per operation</h2><table><tr><th>operation</th>`)
		for _, name := range r.Order {
			fmt.Fprintf(b, `<th>%s</th>`, esc(name))
		}
		b.WriteString(`</tr>`)
		for _, op := range guideOps(r) {
			fmt.Fprintf(b, `<tr><td>%s</td>`, esc(op))
			for _, name := range r.Order {
				fmt.Fprintf(b, `<td>%.2f</td>`, r.Profiles[name].P99Ms[op])
			}
			b.WriteString(`</tr>`)
		}
		b.WriteString(`</table>`)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func paramValue(ps []Param, name string) string {
	for _, p := range ps {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// bars draws one bar per label (mixed_html.go's barChart).
func bars(title, yLabel string, labels []string, values []float64) string {
	return string(barChart(title, yLabel, labels, []string{"measured"}, [][]float64{values}))
}

// pairBars draws, per label, the guide's claim beside the measured figure.
func pairBars(title, yLabel string, labels []string, claim, measured []float64) string {
	return string(barChart(title, yLabel, labels, []string{"the guide's claim", "measured"}, [][]float64{claim, measured}))
}
