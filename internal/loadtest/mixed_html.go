package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"strings"
)

// The HTML report: one self-contained page (inline SVG drawn here, no
// script, no network) with throughput and latency over time, a latency
// histogram per operation, and bars comparing the profiles.

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

type chartSeries struct {
	Name   string
	Color  string
	X, Y   []float64
	Dashed bool
}

const (
	chartW, chartH = 720.0, 240.0
	padL, padR     = 60.0, 20.0
	padT, padB     = 30.0, 40.0
)

func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func svgOpen(b *strings.Builder, title, yLabel string) {
	fmt.Fprintf(b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(b, `<text x="%.0f" y="18" font-size="14" font-weight="bold">%s</text>`, padL, template.HTMLEscapeString(title))
	fmt.Fprintf(b, `<text x="12" y="%.0f" font-size="11" transform="rotate(-90 12 %.0f)">%s</text>`, chartH/2, chartH/2, template.HTMLEscapeString(yLabel))
}

func axes(b *strings.Builder, xMax, yMax float64, xLabel string) {
	x0, y0, x1, y1 := padL, chartH-padB, chartW-padR, padT
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`, x0, y0, x1, y0)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`, x0, y0, x0, y1)
	for i := 0; i <= 4; i++ {
		y := y0 - float64(i)/4*(y0-y1)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, x0, y, x1, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="end">%s</text>`, x0-4, y+3, short(yMax*float64(i)/4))
	}
	if xMax > 0 {
		for i := 0; i <= 4; i++ {
			x := x0 + float64(i)/4*(x1-x0)
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%s</text>`, x, y0+14, short(xMax*float64(i)/4))
		}
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>`, (x0+x1)/2, chartH-6, template.HTMLEscapeString(xLabel))
}

func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 10 || v == 0:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func legend(b *strings.Builder, names, colors []string) {
	width := 0.0
	for _, n := range names {
		width += 14 + 7*float64(len(n)) + 16
	}
	x := max(chartW-padR-width, padL+7*30) // right-aligned, clear of the title
	for i, n := range names {
		fmt.Fprintf(b, `<rect x="%.0f" y="8" width="10" height="10" fill="%s"/><text x="%.0f" y="17" font-size="11">%s</text>`, x, colors[i], x+14, template.HTMLEscapeString(n))
		x += 14 + 7*float64(len(n)) + 16
	}
}

// lineChart draws series over a shared x axis.
func lineChart(title, xLabel, yLabel string, series []chartSeries) template.HTML {
	var xMax, yMax float64
	for _, s := range series {
		for i := range s.X {
			xMax, yMax = max(xMax, s.X[i]), max(yMax, s.Y[i])
		}
	}
	yMax = niceMax(yMax)
	var b strings.Builder
	svgOpen(&b, title, yLabel)
	axes(&b, xMax, yMax, xLabel)
	var names, colors []string
	for _, s := range series {
		if len(s.X) == 0 {
			continue
		}
		var d strings.Builder
		for i := range s.X {
			x := padL + s.X[i]/max(xMax, 1e-9)*(chartW-padL-padR)
			y := chartH - padB - s.Y[i]/yMax*(chartH-padB-padT)
			if i == 0 {
				fmt.Fprintf(&d, "M%.1f %.1f", x, y)
			} else {
				fmt.Fprintf(&d, " L%.1f %.1f", x, y)
			}
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="5 4"`
		}
		fmt.Fprintf(&b, `<path class="series" d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, d.String(), s.Color, dash)
		names, colors = append(names, s.Name), append(colors, s.Color)
	}
	legend(&b, names, colors)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// barChart draws grouped bars: one group per label, one bar per series.
func barChart(title, yLabel string, labels []string, names []string, values [][]float64) template.HTML {
	var yMax float64
	for _, vs := range values {
		for _, v := range vs {
			yMax = max(yMax, v)
		}
	}
	yMax = niceMax(yMax)
	var b strings.Builder
	svgOpen(&b, title, yLabel)
	axes(&b, 0, yMax, "")
	colors := palette[:min(len(names), len(palette))]
	group := (chartW - padL - padR) / float64(max(len(labels), 1))
	bar := group * 0.8 / float64(max(len(names), 1))
	for g, l := range labels {
		gx := padL + float64(g)*group + group*0.1
		for s := range names {
			v := values[s][g]
			h := v / yMax * (chartH - padB - padT)
			fmt.Fprintf(&b, `<path class="series bar" d="M%.1f %.1f h%.1f v%.1f h%.1f Z" fill="%s"><title>%s %s: %s</title></path>`,
				gx+float64(s)*bar, chartH-padB, bar-1, -max(h, 0.5), -(bar - 1), colors[s%len(colors)],
				template.HTMLEscapeString(names[s]), template.HTMLEscapeString(l), short(v))
		}
		label := l
		if len(label) > 14 {
			label = label[:14]
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%s</text>`, gx+group*0.4, chartH-padB+12, template.HTMLEscapeString(label))
	}
	legend(&b, names, colors)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HMP mixed load: {{.R.Scenario}}, {{.R.Orgs}} orgs</title>
<style>body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse;font-size:12px;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.chart{display:block;margin:12px 0;border:1px solid #eee}.grid{display:flex;flex-wrap:wrap;gap:8px}.grid .chart{width:360px;height:120px}</style>
</head><body>
<h1>HMP mixed load</h1>
<p>Scenario <b>{{.R.Scenario}}</b> over {{.R.Orgs}} organizations, started {{.R.StartedAt.Format "2006-01-02 15:04:05 UTC"}} on {{.R.Host.CPUs}} CPUs ({{.R.Host.Hostname}}).
{{with .R.Data}} Data: {{.Days}} days, density {{.Density}}, {{printf "%.1f" .SeedSeconds}} s to seed, {{.DatabaseBytes}} bytes.{{end}}</p>
{{range .R.Notes}}<p><i>{{.}}</i></p>{{end}}
<h2>Summary</h2>
{{range .R.Profiles}}<h3>Profile {{if .Profile}}{{.Profile}}{{else}}-{{end}} ({{.Mode}} loop{{if .Rate}}, {{.Rate}}/s{{end}}{{if .Clients}}, {{.Clients}} clients{{end}})</h3>
<table><tr><th>operation</th><th>ok/s</th><th>ok</th><th>failed</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>
{{range .Ops}}<tr><td>{{.Name}}</td><td>{{.Throughput}}</td><td>{{.OK}}</td><td>{{.Failed}}</td><td>{{.P50Ms}}</td><td>{{.P95Ms}}</td><td>{{.P99Ms}}</td><td>{{.MaxMs}}</td></tr>{{end}}
<tr><th>all</th><th>{{.All.Throughput}}</th><th>{{.All.OK}}</th><th>{{.All.Failed}}</th><th>{{.All.P50Ms}}</th><th>{{.All.P95Ms}}</th><th>{{.All.P99Ms}}</th><th>{{.All.MaxMs}}</th></tr></table>
<p>{{with .Freshness}}Freshness p50 {{.P50Ms}} ms, p99 {{.P99Ms}} ms. {{end}}Drain {{.DrainMs}} ms.
{{with .CPU}}CPU: process {{printf "%.2f" .ProcessCores}}, PostgreSQL {{printf "%.2f" .PostgresCores}} cores.{{end}}
{{with .Ramp}}{{with .Knee}}Ramp knee: {{.Rate}} requests/s ({{.Throughput}} ok/s, p99 {{.P99Ms}} ms).{{end}}{{end}}</p>
{{end}}
<h2>Over time</h2>
{{.Throughput}}
{{.ReadLatency}}
{{.WriteLatency}}
{{if .Compare}}<h2>Profiles compared</h2>{{.CompareP99}}{{.CompareTput}}{{end}}
<h2>Latency histogram per operation</h2>
<div class="grid">{{range .Histograms}}{{.}}{{end}}</div>
</body></html>
`))

// WriteHTML writes the page to path.
func (r *MixedReport) WriteHTML(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	if err := r.RenderHTML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// RenderHTML writes the page to w.
func (r *MixedReport) RenderHTML(w io.Writer) error {
	var tput, rlat, wlat []chartSeries
	for i, p := range r.Profiles {
		c := palette[i%len(palette)]
		name := orDash(p.Profile)
		var xs, ok, rl, wl, target []float64
		for _, t := range p.Timeline {
			xs = append(xs, t.AtS)
			ok = append(ok, float64(t.ReadOK+t.WriteOK))
			rl = append(rl, t.ReadP99Ms)
			wl = append(wl, t.WriteP99Ms)
			target = append(target, t.TargetRate)
		}
		tput = append(tput, chartSeries{Name: name + " ok/s", Color: c, X: xs, Y: ok})
		if p.Mode == "open" && i == 0 {
			tput = append(tput, chartSeries{Name: "target rate", Color: "#999", X: xs, Y: target, Dashed: true})
		}
		rlat = append(rlat, chartSeries{Name: name + " read p99", Color: c, X: xs, Y: rl})
		wlat = append(wlat, chartSeries{Name: name + " write p99", Color: c, X: xs, Y: wl})
	}
	data := struct {
		R                                     *MixedReport
		Throughput, ReadLatency, WriteLatency template.HTML
		Compare                               bool
		CompareP99, CompareTput               template.HTML
		Histograms                            []template.HTML
	}{R: r,
		Throughput:   lineChart("Throughput over time", "seconds", "ok requests per second", tput),
		ReadLatency:  lineChart("Read latency over time (p99 per second)", "seconds", "ms", rlat),
		WriteLatency: lineChart("Write latency over time (p99 per second)", "seconds", "ms", wlat),
	}
	var names []string
	for _, p := range r.Profiles {
		names = append(names, orDash(p.Profile))
	}
	if len(r.Profiles) > 0 {
		// The comparison bars (one profile: its own figures).
		var labels []string
		p99 := make([][]float64, len(r.Profiles))
		tp := make([][]float64, len(r.Profiles))
		for _, op := range r.Profiles[0].Ops {
			labels = append(labels, op.Name)
			for i, p := range r.Profiles {
				var s OpStats
				for _, o := range p.Ops {
					if o.Name == op.Name {
						s = o
					}
				}
				p99[i] = append(p99[i], s.P99Ms)
				tp[i] = append(tp[i], s.Throughput)
			}
		}
		data.Compare = true
		data.CompareP99 = barChart("p99 latency per operation and profile", "ms", labels, names, p99)
		data.CompareTput = barChart("Throughput per operation and profile", "ok per second", labels, names, tp)
		data.Histograms = r.histogramCharts(names)
	}
	return pageTmpl.Execute(w, data)
}

// histogramCharts are one chart per operation: its latency histogram for
// each profile.
func (r *MixedReport) histogramCharts(names []string) []template.HTML {
	var charts []template.HTML
	for _, op := range r.Profiles[0].Ops {
		// One chart per operation: its histogram for each profile.
		var buckets []string
		vals := make([][]float64, len(r.Profiles))
		for _, b := range op.Histogram {
			buckets = append(buckets, "≤"+short(b.LeMs))
		}
		for i, p := range r.Profiles {
			for _, o := range p.Ops {
				if o.Name != op.Name {
					continue
				}
				for j := range buckets {
					if j < len(o.Histogram) {
						vals[i] = append(vals[i], float64(o.Histogram[j].Count))
					} else {
						vals[i] = append(vals[i], 0)
					}
				}
			}
			for len(vals[i]) < len(buckets) {
				vals[i] = append(vals[i], 0)
			}
		}
		charts = append(charts, barChart(op.Name+" latency (ms)", "requests", buckets, names, vals))
	}
	return charts
}
