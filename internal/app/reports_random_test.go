package app_test

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"hmp/internal/apptest"
)

// The randomized property test of the cash book: thousands of random
// writes of every kind over several properties in different zones and
// several months, by an ADMIN and by MANAGERs, from concurrent workers;
// the test keeps its own account of every row. Once the pipeline has
// drained (a read with the newest consistency token), every daily report
// of every property and day of the range, every monthly report and yearly
// summary equals the test's own computation to the cent, and
// reconciliation finds nothing wrong.
//
// HMP_REPORTS_SEED replays a seed (it is logged, and printed again on
// failure); HMP_REPORTS_OPS changes the number of operations (default
// 6000).
func TestReportsRandomized(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("HMP_REPORTS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("HMP_REPORTS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	ops := 6000
	if s := os.Getenv("HMP_REPORTS_OPS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("HMP_REPORTS_OPS=%q: want a positive number", s)
		}
		ops = v
	}
	const workers = 4
	t.Logf("seed %d, %d operations, %d workers", seed, ops, workers)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with HMP_REPORTS_SEED=%d HMP_REPORTS_OPS=%d", seed, ops)
		}
	})
	started := time.Now()

	f := repStart(t, "Random Stays")
	w := &repWorld{env: f.env, admin: f.admin, ledger: newRepLedger(),
		first: repParse(t, "2025-11-01"), last: repParse(t, "2026-03-31")}
	for i, tz := range []string{"UTC", "Asia/Kolkata", "America/New_York", "Pacific/Chatham"} {
		id := f.property(fmt.Sprintf("Random %d", i), tz)
		w.props = append(w.props, id)
		w.ledger.zones[id] = repZone(t, tz)
	}
	p := w.props
	for i, assigned := range [][]string{{p[0], p[1]}, {p[1], p[2], p[3]}, {p[3]}} {
		_, token := f.env.Manager(f.admin, fmt.Sprintf("random%d@stays.test", i), assigned...)
		w.managers = append(w.managers, repManager{token: token, props: assigned})
	}

	// Each worker owns the rows it creates and the cash counts of every
	// workers-th day, so the outcome does not depend on how the workers
	// interleave: it is a function of the seed.
	results := make([]*repWorker, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		results[i] = &repWorker{world: w, n: i, of: workers, rnd: rand.New(rand.NewPCG(seed, uint64(i))),
			rows: map[string]*repRow{}, requests: map[string]*repRequest{}, counts: map[string]int64{}}
		wg.Go(func() { errs[i] = results[i].run(ops / workers) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	stats := map[string]int{}
	for _, r := range results {
		for id, row := range r.rows {
			w.ledger.rows[id] = row
		}
		for k, v := range r.counts {
			w.ledger.counts[k] = v
		}
		for k, v := range r.stats {
			stats[k] += v
		}
	}
	t.Logf("operations by outcome: %v; %d rows remain; writes took %s", stats, len(w.ledger.rows), time.Since(started).Round(time.Millisecond))

	// One more write after every other: its token covers them all.
	f.write(201, "POST", "/v1/reports/cash-counts", f.admin, map[string]any{"propertyId": p[0], "date": "2026-04-08", "countedClosingCents": 12345})
	w.ledger.counts[p[0]+"/2026-04-08"] = 12345

	repCheckServedRows(t, f, w.ledger)

	start, end := repParse(t, "2025-10-25"), repParse(t, "2026-04-10")
	for _, prop := range w.props {
		for _, pending := range []bool{false, true} {
			want := w.ledger.days([]string{prop}, start, end, pending)
			got := f.dailies(f.admin, prop, start.Format(time.DateOnly), end.Format(time.DateOnly), pending)
			what := fmt.Sprintf("daily-reports of %s (includePending %v)", prop, pending)
			repSameDays(t, what, got.Reports, want)
			repCheckSummary(t, what, got.Summary, want)
		}
		// Every day again, one daily-report at a time.
		want := w.ledger.days([]string{prop}, start, end, false)
		for _, d := range want {
			got := f.daily(f.admin, prop, d.Date, false)
			repSameDays(t, "daily-report of "+prop, []repDay{got}, []repDay{d})
		}
	}

	// Monthly reports: each property, and summed over what each caller sees.
	scopes := []struct {
		token, prop string
		props       []string
	}{{f.admin, "", w.props}}
	for _, prop := range w.props {
		scopes = append(scopes, struct {
			token, prop string
			props       []string
		}{f.admin, prop, []string{prop}})
	}
	for _, m := range w.managers {
		scopes = append(scopes, struct {
			token, prop string
			props       []string
		}{m.token, "", m.props})
	}
	for _, s := range scopes {
		for month := repParse(t, "2025-10-01"); !month.After(end); month = month.AddDate(0, 1, 0) {
			last := month.AddDate(0, 1, -1)
			for _, pending := range []bool{false, true} {
				want := w.ledger.days(s.props, month, last, pending)
				if s.prop == "" {
					for i := range want {
						want[i].PropertyID = "" // a summed report names no property
					}
				}
				got := f.monthly(s.token, s.prop, month.Year(), int(month.Month()), pending)
				what := fmt.Sprintf("monthly-report %s of %q over %d properties (includePending %v)", month.Format("2006-01"), s.prop, len(s.props), pending)
				repCheckMonth(t, what, got, want)
				if wm := repMargin(got.NetCashFlowCents, got.TotalCashReceivedCents+got.TotalBankReceivedCents); got.ProfitMargin != wm {
					t.Fatalf("%s: profitMargin %v, want %v", what, got.ProfitMargin, wm)
				}
			}
		}
		for _, year := range []int{2025, 2026} {
			repCheckYear(t, f.yearly(s.token, s.prop, year), w.ledger.days(s.props, time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC),
				time.Date(year, 12, 31, 0, 0, 0, 0, time.UTC), false))
		}
	}

	// Reconciliation recomputes everything from the transactions.
	distinct := 0
	for _, days := range w.ledger.flows(true) {
		distinct += len(days)
	}
	rec := repReconcile(f, f.admin, map[string]any{})
	if rec.MismatchCount != 0 || len(rec.Mismatches) != 0 {
		t.Fatalf("reconciliation found %d mismatches: %+v", rec.MismatchCount, rec.Mismatches)
	}
	if rec.DaysChecked < int64(distinct) || rec.CountsChecked != int64(len(w.ledger.counts)) || rec.MonthsChecked < 1 {
		t.Fatalf("reconciliation checked %d days (want at least %d), %d counts (want %d), %d months",
			rec.DaysChecked, distinct, rec.CountsChecked, len(w.ledger.counts), rec.MonthsChecked)
	}
	for _, prop := range w.props {
		if r := repReconcile(f, f.admin, map[string]any{"propertyId": prop}); r.MismatchCount != 0 || r.DaysChecked == 0 {
			t.Fatalf("reconciliation of %s = %+v", prop, r)
		}
	}
	t.Logf("checked %d property days with rows, %d cash counts; total %s", distinct, len(w.ledger.counts), time.Since(started).Round(time.Millisecond))
}

// repWorld is what every worker shares, read only.
type repWorld struct {
	env         *apptest.Env
	admin       string
	props       []string
	managers    []repManager
	ledger      *repLedger // zones only while the workers run
	first, last repDate    // the range of business dates written to
}

type repManager struct {
	token string
	props []string
}

func (m repManager) assigned(prop string) bool {
	for _, p := range m.props {
		if p == prop {
			return true
		}
	}
	return false
}

// repRequest is a MANAGER's deletion request as the test expects it.
type repRequest struct {
	row     string
	pending bool
}

// repWorker runs random operations on rows of its own, checking every
// answer against its account of them.
type repWorker struct {
	world    *repWorld
	n, of    int
	rnd      *rand.Rand
	rows     map[string]*repRow
	ids      []string // the rows that exist, in creation order (for seeded picks)
	gone     []string // deleted rows
	requests map[string]*repRequest
	reqIDs   []string
	counts   map[string]int64
	stats    map[string]int
}

func (w *repWorker) run(ops int) error {
	w.stats = map[string]int{}
	for i := range ops {
		if err := w.step(); err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	return nil
}

func (w *repWorker) pick(list []string) string { return list[w.rnd.IntN(len(list))] }

// pickRow returns a random existing row, preferring one with status when
// status is not "".
func (w *repWorker) pickRow(status string) string {
	if status != "" && w.rnd.IntN(10) < 9 {
		var match []string
		for _, id := range w.ids {
			if w.rows[id].status == status {
				match = append(match, id)
			}
		}
		if len(match) > 0 {
			return w.pick(match)
		}
	}
	return w.pick(w.ids)
}

// instant returns a random occurredAt whose business date in prop's zone
// falls in the world's range; one in five lies within 90 minutes of a
// local midnight.
func (w *repWorker) instant(prop string) time.Time {
	loc := w.world.ledger.zones[prop]
	days := int(w.world.last.Sub(w.world.first).Hours()/24) + 1
	d := w.world.first.AddDate(0, 0, w.rnd.IntN(days))
	midnight := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	var at time.Time
	if w.rnd.IntN(5) == 0 {
		at = midnight.Add(time.Duration(w.rnd.IntN(180*60)-90*60) * time.Second)
	} else {
		at = midnight.Add(time.Duration(w.rnd.IntN(24*3600)) * time.Second)
	}
	// Keep the business date in range at the edges.
	if bd := at.In(loc).Format(time.DateOnly); bd < w.world.first.Format(time.DateOnly) || bd > w.world.last.Format(time.DateOnly) {
		at = midnight.Add(12 * time.Hour)
	}
	return at.UTC()
}

func (w *repWorker) amount() int64 {
	if w.rnd.IntN(50) == 0 {
		return 1 + w.rnd.Int64N(1_000_000_000_000)
	}
	return 1 + w.rnd.Int64N(1_000_000)
}

func (w *repWorker) mode() string {
	if w.rnd.IntN(2) == 0 {
		return "cash"
	}
	return "bank"
}

func (w *repWorker) kind() string {
	if w.rnd.IntN(5) < 3 {
		return "revenue"
	}
	return "expense"
}

// actor picks who acts on prop: the ADMIN (-1) or a MANAGER, one assigned
// to prop unless stranger.
func (w *repWorker) actor(prop string, stranger bool) (int, string) {
	if !stranger && w.rnd.IntN(2) == 0 {
		return -1, w.world.admin
	}
	var fit []int
	for i, m := range w.world.managers {
		if m.assigned(prop) != stranger {
			fit = append(fit, i)
		}
	}
	if len(fit) == 0 {
		return -1, w.world.admin
	}
	i := fit[w.rnd.IntN(len(fit))]
	return i, w.world.managers[i].token
}

func (w *repWorker) step() error {
	if len(w.ids) < 5 {
		return w.create()
	}
	switch n := w.rnd.IntN(100); {
	case n < 30:
		return w.create()
	case n < 50:
		return w.patch()
	case n < 62:
		return w.review("approve")
	case n < 67:
		return w.review("reject")
	case n < 73:
		return w.adminDelete()
	case n < 81:
		return w.requestDeletion()
	case n < 89:
		return w.decide()
	case n < 94:
		return w.count()
	case n < 97:
		return w.managerReviews()
	default:
		return w.touchGone()
	}
}

func (w *repWorker) create() error {
	prop := w.pick(w.world.props)
	stranger := w.rnd.IntN(50) == 0
	who, token := w.actor(prop, stranger)
	kind, amount, mode, at := w.kind(), w.amount(), w.mode(), w.instant(prop)
	body := map[string]any{"propertyId": prop, "amountCents": amount, "paymentMode": mode, "occurredAt": at.Format(time.RFC3339)}
	if kind == "revenue" {
		body["source"] = []string{"room", "addon", "other"}[w.rnd.IntN(3)]
	} else {
		body["category"] = "supplies"
	}
	what := fmt.Sprintf("create %s %d %s at %s in %s by %d", kind, amount, mode, at.Format(time.RFC3339), prop, who)
	if who >= 0 && !w.world.managers[who].assigned(prop) {
		return w.expect(what, "create_foreign", 404, "POST", "/v1/finance/"+kind+"s", token, body, nil)
	}
	var row apptest.Row
	if err := w.expect(what, "create", 201, "POST", "/v1/finance/"+kind+"s", token, body, &row); err != nil {
		return err
	}
	r := &repRow{kind: kind, prop: prop, amount: amount, mode: mode, at: at, status: "approved"}
	if who >= 0 {
		r.status = "pending"
	}
	w.rows[row.ID] = r
	w.ids = append(w.ids, row.ID)
	return w.same(what, row, row.ID)
}

func (w *repWorker) patch() error {
	id := w.pickRow("")
	r := w.rows[id]
	stranger := w.rnd.IntN(30) == 0
	who, token := w.actor(r.prop, stranger)
	next := *r
	body := map[string]any{}
	for len(body) == 0 {
		if w.rnd.IntN(10) < 4 {
			next.amount = w.amount()
			body["amountCents"] = next.amount
		}
		if w.rnd.IntN(10) < 4 {
			next.at = w.instant(r.prop)
			body["occurredAt"] = next.at.Format(time.RFC3339)
		}
		if w.rnd.IntN(10) < 3 {
			next.mode = map[string]string{"cash": "bank", "bank": "cash"}[r.mode]
			body["paymentMode"] = next.mode
		}
		if w.rnd.IntN(10) < 3 {
			next.prop = w.pick(w.world.props)
			if who >= 0 && w.rnd.IntN(10) < 9 {
				next.prop = w.pick(w.world.managers[who].props)
			}
			body["propertyId"] = next.prop
		}
	}
	what := fmt.Sprintf("patch %s %s (%+v) with %v by %d", r.kind, id, *r, body, who)
	path := "/v1/finance/" + r.kind + "s/" + id
	switch {
	case who >= 0 && !w.world.managers[who].assigned(r.prop):
		return w.expect(what, "patch_foreign_row", 404, "PATCH", path, token, body, nil)
	case r.status == "rejected":
		return w.expect(what, "patch_rejected", 409, "PATCH", path, token, body, nil)
	case who >= 0 && !w.world.managers[who].assigned(next.prop):
		return w.expect(what, "patch_to_foreign_property", 404, "PATCH", path, token, body, nil)
	}
	var row apptest.Row
	if err := w.expect(what, "patch", 200, "PATCH", path, token, body, &row); err != nil {
		return err
	}
	if who >= 0 {
		next.status = "pending"
	}
	*r = next
	return w.same(what, row, id)
}

func (w *repWorker) review(verb string) error {
	id := w.pickRow("pending")
	r := w.rows[id]
	what := fmt.Sprintf("%s %s %s (%+v)", verb, r.kind, id, *r)
	path := "/v1/finance/" + r.kind + "s/" + id + "/" + verb
	if r.status != "pending" {
		return w.expect(what, verb+"_not_pending", 409, "POST", path, w.world.admin, map[string]any{}, nil)
	}
	var row apptest.Row
	if err := w.expect(what, verb, 200, "POST", path, w.world.admin, map[string]any{"notes": "random"}, &row); err != nil {
		return err
	}
	r.status = map[string]string{"approve": "approved", "reject": "rejected"}[verb]
	return w.same(what, row, id)
}

func (w *repWorker) forget(id string) {
	delete(w.rows, id)
	for i, x := range w.ids {
		if x == id {
			w.ids = append(w.ids[:i], w.ids[i+1:]...)
			break
		}
	}
	w.gone = append(w.gone, id)
	for _, req := range w.requests {
		if req.row == id {
			req.pending = false // an ADMIN's delete settles a pending request
		}
	}
}

func (w *repWorker) adminDelete() error {
	id := w.pickRow("")
	r := w.rows[id]
	what := fmt.Sprintf("delete %s %s (%+v)", r.kind, id, *r)
	if err := w.expect(what, "delete", 204, "DELETE", "/v1/finance/"+r.kind+"s/"+id, w.world.admin, nil, nil); err != nil {
		return err
	}
	w.forget(id)
	return nil
}

func (w *repWorker) requestDeletion() error {
	id := w.pickRow("")
	r := w.rows[id]
	stranger := w.rnd.IntN(20) == 0
	who, token := w.actor(r.prop, stranger)
	for who < 0 {
		who, token = w.actor(r.prop, stranger)
	}
	what := fmt.Sprintf("request deletion of %s %s (%+v) by %d", r.kind, id, *r, who)
	path := "/v1/finance/" + r.kind + "s/" + id
	if !w.world.managers[who].assigned(r.prop) {
		return w.expect(what, "request_deletion_foreign", 404, "DELETE", path, token, nil, nil)
	}
	var out struct {
		DeletionRequestID string `json:"deletionRequestId"`
	}
	if err := w.expect(what, "request_deletion", 202, "DELETE", path, token, nil, &out); err != nil {
		return err
	}
	if req, ok := w.requests[out.DeletionRequestID]; ok {
		if !req.pending || req.row != id {
			return fmt.Errorf("%s: answered request %s, which is %+v", what, out.DeletionRequestID, *req)
		}
		return nil
	}
	for rid, req := range w.requests {
		if req.row == id && req.pending {
			return fmt.Errorf("%s: a second pending request %s beside %s", what, out.DeletionRequestID, rid)
		}
	}
	w.requests[out.DeletionRequestID] = &repRequest{row: id, pending: true}
	w.reqIDs = append(w.reqIDs, out.DeletionRequestID)
	return nil
}

func (w *repWorker) decide() error {
	if len(w.reqIDs) == 0 {
		return w.requestDeletion()
	}
	rid := w.reqIDs[w.rnd.IntN(len(w.reqIDs))]
	if w.rnd.IntN(10) < 8 { // mostly a pending one
		for _, x := range w.reqIDs {
			if w.requests[x].pending {
				rid = x
				break
			}
		}
	}
	req := w.requests[rid]
	verb := "approve"
	if w.rnd.IntN(3) == 0 {
		verb = "reject"
	}
	what := fmt.Sprintf("%s deletion request %s of %s (%+v)", verb, rid, req.row, *req)
	path := "/v1/finance/deletion-requests/" + rid + "/" + verb
	if !req.pending {
		return w.expect(what, "decide_settled", 409, "POST", path, w.world.admin, map[string]any{}, nil)
	}
	var out struct{ ID, Status string }
	if err := w.expect(what, "decide_"+verb, 200, "POST", path, w.world.admin, map[string]any{}, &out); err != nil {
		return err
	}
	if want := map[string]string{"approve": "approved", "reject": "rejected"}[verb]; out.ID != rid || out.Status != want {
		return fmt.Errorf("%s: answered %+v, want status %s", what, out, want)
	}
	req.pending = false
	if verb == "approve" {
		w.forget(req.row)
	}
	return nil
}

func (w *repWorker) count() error {
	prop := w.pick(w.world.props)
	days := int(w.world.last.Sub(w.world.first).Hours()/24) + 1
	day := w.rnd.IntN(days/w.of)*w.of + w.n // this worker's days only
	date := w.world.first.AddDate(0, 0, day).Format(time.DateOnly)
	stranger := w.rnd.IntN(20) == 0
	who, token := w.actor(prop, stranger)
	counted := w.rnd.Int64N(5_000_000)
	body := map[string]any{"propertyId": prop, "date": date, "countedClosingCents": counted}
	what := fmt.Sprintf("count %d on %s in %s by %d", counted, date, prop, who)
	if who >= 0 && !w.world.managers[who].assigned(prop) {
		return w.expect(what, "count_foreign", 404, "POST", "/v1/reports/cash-counts", token, body, nil)
	}
	if err := w.expect(what, "count", 201, "POST", "/v1/reports/cash-counts", token, body, nil); err != nil {
		return err
	}
	w.counts[prop+"/"+date] = counted
	return nil
}

func (w *repWorker) managerReviews() error {
	id := w.pickRow("pending")
	r := w.rows[id]
	m := w.world.managers[w.rnd.IntN(len(w.world.managers))]
	verb := []string{"approve", "reject"}[w.rnd.IntN(2)]
	return w.expect("a MANAGER's "+verb+" of "+id, "manager_review", 403, "POST", "/v1/finance/"+r.kind+"s/"+id+"/"+verb, m.token, map[string]any{}, nil)
}

func (w *repWorker) touchGone() error {
	if len(w.gone) == 0 {
		return w.create()
	}
	id := w.pick(w.gone)
	for _, kind := range []string{"revenue", "expense"} {
		if err := w.expect("patch deleted "+id, "touch_deleted", 404, "PATCH", "/v1/finance/"+kind+"s/"+id, w.world.admin, map[string]any{"amountCents": 5}, nil); err != nil {
			return err
		}
	}
	return nil
}

// same checks a served row against the worker's account of it.
func (w *repWorker) same(what string, got apptest.Row, id string) error {
	r := w.rows[id]
	bd := w.world.ledger.businessDate(r.prop, r.at)
	if got.ID != id || got.PropertyID != r.prop || got.AmountCents != r.amount || got.PaymentMode != r.mode || got.Status != r.status || got.BusinessDate != bd {
		return fmt.Errorf("%s: served %+v, want %+v on %s; the row's history: %s", what, got, *r, bd, w.history(id))
	}
	return nil
}

// history returns the event history of a row, for failure messages.
func (w *repWorker) history(id string) string {
	r, err := w.world.env.Send("GET", "/v1/finance/events?entityId="+id, w.world.admin, nil)
	if err != nil {
		return err.Error()
	}
	return string(r.Body)
}

// expect sends a request, checks its status and decodes a success into out.
func (w *repWorker) expect(what, stat string, status int, method, path, token string, body, out any) error {
	r, err := w.world.env.Send(method, path, token, body)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if r.Status != status {
		return fmt.Errorf("%s: %s %s answered %s, want %d", what, method, path, r, status)
	}
	if status < 300 && r.Header.Get("X-Consistency-Token") == "" {
		return fmt.Errorf("%s: no X-Consistency-Token", what)
	}
	w.stats[stat]++
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return fmt.Errorf("%s: decode %s: %w", what, r.Body, err)
		}
	}
	return nil
}

// repCheckServedRows compares every row the API lists with the ledger, so
// that a wrong expectation shows up as such and not as a report mismatch.
func repCheckServedRows(t *testing.T, f *repFixture, l *repLedger) {
	t.Helper()
	served := map[string]apptest.Row{}
	for _, kind := range []string{"revenue", "expense"} {
		cursor := ""
		for {
			var page struct {
				Items      []apptest.Row `json:"items"`
				NextCursor *string       `json:"nextCursor"`
			}
			f.get(repQuery("/v1/finance/"+kind+"s", "limit", "500", "cursor", cursor), f.admin, &page)
			for _, r := range page.Items {
				served[r.ID] = r
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
	}
	if len(served) != len(l.rows) {
		t.Fatalf("the API lists %d rows, the test expects %d", len(served), len(l.rows))
	}
	for id, r := range l.rows {
		got, ok := served[id]
		bd := l.businessDate(r.prop, r.at)
		if !ok || got.PropertyID != r.prop || got.AmountCents != r.amount || got.PaymentMode != r.mode || got.Status != r.status || got.BusinessDate != bd {
			t.Fatalf("row %s served as %+v, want %+v on %s", id, got, *r, bd)
		}
	}
}

// repCheckSummary compares a daily-reports summary with expected days.
func repCheckSummary(t *testing.T, what string, got repSummary, days []repDay) {
	t.Helper()
	want := repSummary{OpeningBalanceCents: days[0].OpeningBalanceCents, ClosingBalanceCents: days[len(days)-1].ClosingBalanceCents}
	for _, d := range days {
		want.CashReceivedCents += d.CashReceivedCents
		want.BankReceivedCents += d.BankReceivedCents
		want.CashExpensesCents += d.CashExpensesCents
		want.BankExpensesCents += d.BankExpensesCents
		want.TransactionCount += d.TransactionCount
	}
	want.TotalReceivedCents = want.CashReceivedCents + want.BankReceivedCents
	want.TotalExpensesCents = want.CashExpensesCents + want.BankExpensesCents
	want.NetCashFlowCents = want.TotalReceivedCents - want.TotalExpensesCents
	if got != want {
		t.Fatalf("%s summary = %+v, want %+v", what, got, want)
	}
}

// repCheckYear compares a yearly summary with the expected days of the
// whole year.
func repCheckYear(t *testing.T, got repYear, days []repDay) {
	t.Helper()
	if len(got.Months) != 12 {
		t.Fatalf("yearly summary %d of %q has %d months", got.Year, got.PropertyID, len(got.Months))
	}
	var received, spent, n int64
	for i := range 12 {
		want := repMonthSummary{Month: i + 1}
		first := true
		for _, d := range days {
			if d.Date[5:7] != fmt.Sprintf("%02d", i+1) {
				continue
			}
			if first {
				want.OpeningBalanceCents, first = d.OpeningBalanceCents, false
			}
			want.ClosingBalanceCents = d.ClosingBalanceCents
			want.TotalReceivedCents += d.TotalReceivedCents
			want.TotalExpensesCents += d.TotalExpensesCents
			want.TransactionCount += d.TransactionCount
		}
		want.NetCashFlowCents = want.TotalReceivedCents - want.TotalExpensesCents
		if got.Months[i] != want {
			t.Fatalf("yearly summary %d of %q, month %d = %+v, want %+v", got.Year, got.PropertyID, i+1, got.Months[i], want)
		}
		received, spent, n = received+want.TotalReceivedCents, spent+want.TotalExpensesCents, n+want.TransactionCount
	}
	tot := got.Totals
	if tot.TotalReceivedCents != received || tot.TotalExpensesCents != spent || tot.NetCashFlowCents != received-spent ||
		tot.TransactionCount != n || tot.ProfitMargin != repMargin(received-spent, received) {
		t.Fatalf("yearly summary %d of %q totals = %+v, want received %d spent %d n %d margin %v", got.Year, got.PropertyID, tot,
			received, spent, n, repMargin(received-spent, received))
	}
}

// repMargin is the test's own profit margin: net / received × 100 rounded
// to two decimals, halves away from zero, in exact arithmetic.
func repMargin(net, received int64) float64 {
	if received == 0 {
		return 0
	}
	r := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(net), big.NewInt(10000)), big.NewInt(received))
	if r.Sign() < 0 {
		r.Sub(r, big.NewRat(1, 2))
	} else {
		r.Add(r, big.NewRat(1, 2))
	}
	q := new(big.Int).Quo(r.Num(), r.Denom())
	v, _ := new(big.Rat).SetFrac(q, big.NewInt(100)).Float64()
	return v
}

// repReconcile runs a reconciliation job (after the newest write is
// projected) and returns its outcome.
func repReconcile(f *repFixture, token string, body map[string]any) repReconciliation {
	f.t.Helper()
	f.drain() // reconciliation itself takes no consistency token
	return reconcileJob(f.t, f.env, token, body)
}
