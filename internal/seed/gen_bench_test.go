package seed

import (
	"testing"
	"time"
)

func BenchmarkGenerate(b *testing.B) {
	cfg := Config{Orgs: 1}.WithDefaults()
	g, err := newGenerator(cfg, time.Now(), []byte("x"))
	if err != nil {
		b.Fatal(err)
	}
	rows := 0
	for i := 0; b.Loop(); i++ {
		bt := &batch{}
		if err := g.gen(bt, i); err != nil {
			b.Fatal(err)
		}
		g.finish(bt)
		rows += int(bt.rows())
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
