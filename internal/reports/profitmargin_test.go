package reports

import (
	"math"
	"math/big"
	"strconv"
	"testing"
)

// exactMargin rounds net × 100 / received to two decimals, halves away
// from zero, in exact rational arithmetic, and formats it.
func exactMargin(net, received int64) string {
	r := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(net), big.NewInt(10000)), big.NewInt(received))
	half := big.NewRat(1, 2)
	if r.Sign() < 0 {
		r.Sub(r, half)
	} else {
		r.Add(r, half)
	}
	q := new(big.Int).Quo(r.Num(), r.Denom()) // truncates towards zero
	f, _ := new(big.Rat).SetFrac(q, big.NewInt(100)).Float64()
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func TestProfitMarginRoundsExactly(t *testing.T) {
	t.Parallel()
	cases := []struct {
		net, received int64
		want          float64
	}{
		{0, 0, 0},
		{5, 0, 0},
		{14200, 22500, 63.11},
		{23, 160, 14.38}, // 14.375: a float quotient rounds it down
		{-23, 160, -14.38},
		{1, 3, 33.33},
		{2, 3, 66.67},
		{1, 8, 12.5},
		{-6, 4, -150},
		{math.MaxInt64, math.MaxInt64, 100},
		{-math.MaxInt64, 1, -922337203685477580700},
		{1, math.MaxInt64, 0},
	}
	for _, c := range cases {
		if got := ProfitMargin(c.net, c.received); got != c.want {
			t.Errorf("ProfitMargin(%d, %d) = %v, want %v", c.net, c.received, got, c.want)
		}
	}
	for received := int64(1); received <= 400; received++ {
		for net := -2 * received; net <= received; net++ {
			got := strconv.FormatFloat(ProfitMargin(net, received), 'f', -1, 64)
			if want := exactMargin(net, received); got != want {
				t.Fatalf("ProfitMargin(%d, %d) = %s, want %s", net, received, got, want)
			}
		}
	}
}
