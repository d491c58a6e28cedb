package loadtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The mixed scenario: many organizations, tenants drawn with a Zipf skew,
// a read share of report and list calls and a write share of creates,
// reviews, edits and deletes, in an open loop (latency from each request's
// scheduled time) or a closed loop.

// Operation names, the keys of MixedResult.Ops.
const (
	OpDailyReport   = "daily_report"
	OpDailyRange    = "daily_reports_range"
	OpMonthly       = "monthly_report"
	OpYearly        = "yearly_summary"
	OpListRevenues  = "list_revenues"
	OpListExpenses  = "list_expenses"
	OpRevenueCreate = "revenue_create"
	OpExpenseCreate = "expense_create"
	OpManagerCreate = "manager_create"
	OpApprove       = "approve"
	OpEdit          = "edit"
	OpDelete        = "delete"
)

// readOps and writeOps with their weights within their share.
var (
	readOps = []weighted{{OpDailyReport, 40}, {OpDailyRange, 20}, {OpMonthly, 15}, {OpYearly, 5}, {OpListRevenues, 10}, {OpListExpenses, 10}}
	// A review needs a pending row (a manager's create), an edit and a
	// delete a row of the tenant's: each falls back to the create that
	// makes one when the tenant has none yet.
	writeOps = []weighted{{OpRevenueCreate, 30}, {OpExpenseCreate, 20}, {OpManagerCreate, 15}, {OpApprove, 15}, {OpEdit, 12}, {OpDelete, 8}}
)

type weighted struct {
	name   string
	weight int
}

func pick(r *rand.Rand, ops []weighted) string {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	n := r.IntN(total)
	for _, o := range ops {
		if n < o.weight {
			return o.name
		}
		n -= o.weight
	}
	return ops[len(ops)-1].name
}

// IsWrite reports whether op writes.
func IsWrite(op string) bool {
	for _, o := range writeOps {
		if o.name == op {
			return true
		}
	}
	return false
}

// Scenarios of the mixed load.
const (
	ScenarioSteady     = "steady"
	ScenarioBurst      = "burst"
	ScenarioRamp       = "ramp"
	ScenarioHotTenant  = "hot-tenant"
	ScenarioBackDated  = "back-dated"
	defaultZipfS       = 1.1
	defaultRampBudget  = 250 * time.Millisecond
	rampMaxErrorShare  = 0.001
	timelineResolution = time.Second
)

// Scenarios lists the mixed scenarios.
func Scenarios() []string {
	return []string{ScenarioSteady, ScenarioBurst, ScenarioRamp, ScenarioHotTenant, ScenarioBackDated}
}

// MixedTenant is one organization of the mixed load: tokens of its ADMIN
// and MANAGER, its properties, and the rows the run made there (to
// review, edit and delete).
type MixedTenant struct {
	Index        int
	AdminToken   string
	ManagerToken string
	Properties   []string

	mu      sync.Mutex
	rows    []rowRef // the run's rows, newest last
	pending []rowRef // the manager's rows awaiting review
}

type rowRef struct {
	kind, id string // kind: revenues or expenses
}

func (t *MixedTenant) push(list *[]rowRef, r rowRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	*list = append(*list, r)
	if len(*list) > 256 {
		*list = (*list)[len(*list)-128:]
	}
}

func (t *MixedTenant) pop(list *[]rowRef) (rowRef, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(*list) == 0 {
		return rowRef{}, false
	}
	r := (*list)[len(*list)-1]
	*list = (*list)[:len(*list)-1]
	return r, true
}

// SeededTenants logs in to the organizations of a seeded data set (see
// package seed: admin-<i>@seed.hmp.test and manager-<i>@seed.hmp.test, one
// password) on first use, once per organization.
type SeededTenants struct {
	Client   *Client
	Password string
	// AdminEmail and ManagerEmail give organization i's emails.
	AdminEmail, ManagerEmail func(i int) string
	// Days is the history of the data set, for back-dated writes and
	// report ranges.
	Days int

	slots   []tenantSlot
	semOnce sync.Once
	sem     chan struct{}
}

type tenantSlot struct {
	once          sync.Once
	started, done atomic.Bool
	t             *MixedTenant
	err           error
}

// NewSeededTenants returns the tenants of a data set of n organizations.
func NewSeededTenants(c *Client, n int, password string, admin, manager func(int) string) *SeededTenants {
	return &SeededTenants{Client: c, Password: password, AdminEmail: admin, ManagerEmail: manager, slots: make([]tenantSlot, n)}
}

// Len is the number of organizations.
func (s *SeededTenants) Len() int { return len(s.slots) }

// Get returns organization i, logging in on first use.
func (s *SeededTenants) Get(ctx context.Context, i int) (*MixedTenant, error) {
	sl := &s.slots[i]
	sl.once.Do(func() {
		sl.t, sl.err = s.login(ctx, i)
		sl.done.Store(true)
	})
	return sl.t, sl.err
}

// Ready returns organization i if it is logged in already; otherwise it
// starts its login in the background (a few at a time) and returns false,
// so that a measured request never waits for a login.
func (s *SeededTenants) Ready(ctx context.Context, i int) (*MixedTenant, bool) {
	sl := &s.slots[i]
	if sl.done.Load() {
		return sl.t, sl.err == nil
	}
	if sl.started.CompareAndSwap(false, true) {
		s.initSem()
		go func() {
			s.sem <- struct{}{}
			defer func() { <-s.sem }()
			_, _ = s.Get(context.WithoutCancel(ctx), i)
		}()
	}
	return nil, false
}

func (s *SeededTenants) initSem() {
	s.semOnce.Do(func() { s.sem = make(chan struct{}, 4) })
}

// Warm logs in to the first n organizations, workers at a time.
func (s *SeededTenants) Warm(ctx context.Context, n, workers int) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Pointer[error]
	)
	n = min(n, len(s.slots))
	for range max(workers, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := s.Get(ctx, i); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}

func (s *SeededTenants) login(ctx context.Context, i int) (*MixedTenant, error) {
	t := &MixedTenant{Index: i}
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if err := s.Client.call(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": s.AdminEmail(i), "password": s.Password}, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("log in to org %d: %w", i, err)
	}
	t.AdminToken = out.AccessToken
	if err := s.Client.call(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": s.ManagerEmail(i), "password": s.Password}, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("log in to org %d: %w", i, err)
	}
	t.ManagerToken = out.AccessToken
	var props struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := s.Client.call(ctx, http.MethodGet, "/v1/properties", t.AdminToken, nil, http.StatusOK, &props); err != nil {
		return nil, fmt.Errorf("properties of org %d: %w", i, err)
	}
	for _, p := range props.Items {
		t.Properties = append(t.Properties, p.ID)
	}
	if len(t.Properties) == 0 {
		return nil, fmt.Errorf("org %d has no property", i)
	}
	// Let the manager write: a pending row of theirs from an earlier day
	// would otherwise close the daily approval gate. Today in any zone is
	// one of these UTC dates.
	mgr, err := tokenSubject(t.ManagerToken)
	if err != nil {
		return nil, err
	}
	today := time.Now().UTC()
	for _, d := range []time.Time{today.AddDate(0, 0, -1), today, today.AddDate(0, 0, 1)} {
		err := s.Client.call(ctx, http.MethodPost, "/v1/finance/daily-approvals", t.AdminToken,
			map[string]string{"managerUserId": mgr, "date": d.Format("2006-01-02")}, http.StatusCreated, nil)
		if err != nil && !strings.Contains(err.Error(), "status 409") {
			return nil, fmt.Errorf("daily approval in org %d: %w", i, err)
		}
	}
	return t, nil
}

// tokenSubject reads the user id (sub) of an access token without
// checking it: the server that issued it will.
func tokenSubject(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("access token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("access token payload: %w", err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Sub == "" {
		return "", errors.New("access token has no subject")
	}
	return c.Sub, nil
}

// Tenants is where the mixed load finds organization i (0 the most
// popular).
type Tenants interface {
	Len() int
	Get(ctx context.Context, i int) (*MixedTenant, error)
}

// MixedConfig sets up a mixed run. Zero values mean the defaults.
type MixedConfig struct {
	Client  *Client
	Tenants Tenants
	// Scenario is steady (default), burst, ramp, hot-tenant or back-dated.
	Scenario string
	// Rate is the open loop's requests per second (ramp: the first
	// step's). Clients, when > 0 and Rate is 0, runs a closed loop instead.
	// Default rate 200.
	Rate    float64
	Clients int
	// Duration is the measured window (ramp: the longest it may run).
	// Default 30 s. Warmup runs the load unmeasured first; default none.
	Duration, Warmup time.Duration
	// ReadShare is the fraction of requests that read. Default 0.8;
	// negative: none.
	ReadShare float64
	// ZipfS is the skew of tenant popularity (> 1). Default 1.1.
	ZipfS float64
	// Days is the history reads and back-dated writes reach into.
	// Default 30.
	Days int
	// MaxInFlight bounds the open loop's concurrency. Default 256.
	MaxInFlight int
	// RampStep is how long each ramp step runs (default 5 s), RampFactor
	// how much each raises the rate (default 1.5) and RampBudget the p99
	// a step must stay under (default 250 ms).
	RampStep   time.Duration
	RampFactor float64
	RampBudget time.Duration
	// ProbeRate is freshness probes per second, on an organization of
	// their own (ProbeTenant). Default 5; negative: none.
	ProbeRate   float64
	ProbeTenant *Tenant
	// Postmaster is the PostgreSQL cluster's PID for CPU accounting (0:
	// unknown).
	Postmaster int
	// DrainTimeout bounds the wait for the projector to drain after the
	// load. Default 60 s.
	DrainTimeout time.Duration
	Seed         uint64
	Logger       *slog.Logger
}

func (c MixedConfig) withDefaults() MixedConfig {
	if c.Scenario == "" {
		c.Scenario = ScenarioSteady
	}
	if c.Rate == 0 && c.Clients == 0 {
		c.Rate = 200
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	switch {
	case c.ReadShare == 0:
		c.ReadShare = 0.8
	case c.ReadShare < 0:
		c.ReadShare = 0
	}
	if c.ZipfS == 0 {
		c.ZipfS = defaultZipfS
	}
	if c.Days == 0 {
		c.Days = 30
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 256
	}
	if c.RampStep == 0 {
		c.RampStep = 5 * time.Second
	}
	if c.RampFactor == 0 {
		c.RampFactor = 1.5
	}
	if c.RampBudget == 0 {
		c.RampBudget = defaultRampBudget
	}
	if c.ProbeRate == 0 {
		c.ProbeRate = 5
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = time.Minute
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem of a resolved c (see validate.go); the
// client and tenants are Mixed's to check.
func (c MixedConfig) Validate() error {
	var errs []error
	if !slices.Contains(Scenarios(), c.Scenario) {
		errs = append(errs, fmt.Errorf("--scenario must be one of %s, got %q", strings.Join(Scenarios(), ", "), c.Scenario))
	}
	if c.Rate > 0 && c.Clients > 0 {
		errs = append(errs, errors.New("give --rate (open loop) or --clients (closed loop), not both"))
	}
	notNegative(&errs, "rate", c.Rate)
	notNegative(&errs, "clients", c.Clients)
	if c.Clients > 0 && c.Scenario == ScenarioRamp {
		errs = append(errs, errors.New("--scenario ramp raises a rate: use --rate, not --clients"))
	}
	positive(&errs, "duration", c.Duration)
	notNegative(&errs, "warmup", c.Warmup)
	if c.ReadShare < 0 || c.ReadShare > 1 {
		errs = append(errs, fmt.Errorf("--read-share must be between 0 and 1, got %g", c.ReadShare))
	}
	positive(&errs, "days", c.Days)
	if c.ZipfS <= 1 {
		errs = append(errs, fmt.Errorf("--zipf must be above 1, got %g", c.ZipfS))
	}
	if c.RampFactor <= 1 {
		errs = append(errs, fmt.Errorf("--ramp-factor must be above 1, got %g", c.RampFactor))
	}
	positive(&errs, "ramp-step", c.RampStep)
	positive(&errs, "ramp-budget", c.RampBudget)
	positive(&errs, "max-in-flight", c.MaxInFlight)
	return errors.Join(errs...)
}

// opTally is one operation's record, per shard.
type opTally struct {
	mu       sync.Mutex
	hist     Histogram
	ok, fail uint64
	statuses map[int]uint64
	firstErr string
}

// recorder keeps every operation's tallies and the timeline.
type recorder struct {
	start    time.Time
	measured atomic.Bool
	mu       sync.Mutex
	ops      map[string]*opTally
	timeline []*slot
}

// slot is one second of the timeline.
type slot struct {
	ok, fail     [2]uint64 // read, write
	read, write  Histogram
	measuredSlot bool
}

func newRecorder(start time.Time) *recorder {
	return &recorder{start: start, ops: map[string]*opTally{}}
}

func (r *recorder) record(op string, status, want int, err error, due time.Time, lat time.Duration) {
	ok := err == nil && status == want
	r.mu.Lock()
	t := r.ops[op]
	if t == nil {
		t = &opTally{statuses: map[int]uint64{}}
		r.ops[op] = t
	}
	i := max(int(due.Sub(r.start)/timelineResolution), 0)
	for len(r.timeline) <= i {
		r.timeline = append(r.timeline, &slot{})
	}
	s := r.timeline[i]
	w := 0
	if IsWrite(op) {
		w = 1
		s.write.Record(lat)
	} else {
		s.read.Record(lat)
	}
	s.measuredSlot = s.measuredSlot || r.measured.Load()
	if ok {
		s.ok[w]++
	} else {
		s.fail[w]++
	}
	r.mu.Unlock()
	if !r.measured.Load() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hist.Record(lat)
	t.statuses[status]++
	if ok {
		t.ok++
		return
	}
	t.fail++
	if t.firstErr == "" {
		if err != nil {
			t.firstErr = err.Error()
		} else {
			t.firstErr = "status " + strconv.Itoa(status)
		}
	}
}

// mixed is one run's state.
type mixed struct {
	cfg     MixedConfig
	rec     *recorder
	backDay bool
	hot     bool
	cold    atomic.Uint64 // requests redirected while their tenant logged in
}

// op performs one operation chosen by w's random source and returns the
// operation's name, the status and the status it wanted.
func (m *mixed) op(ctx context.Context, w *Worker, z *rand.Zipf) (string, int, int, error) {
	i := int(z.Uint64())
	if m.hot && w.Rand.IntN(2) == 0 {
		i = 0 // half of everything goes to one organization
	}
	var t *MixedTenant
	if lazy, ok := m.cfg.Tenants.(interface {
		Ready(ctx context.Context, i int) (*MixedTenant, bool)
	}); ok && i > 0 {
		// A tenant not logged in yet logs in aside; meanwhile its request
		// goes to one that is (the most popular), and is counted.
		if t, ok = lazy.Ready(ctx, i); !ok {
			m.cold.Add(1)
			i = 0
		}
	}
	if t == nil {
		var err error
		if t, err = m.cfg.Tenants.Get(ctx, i); err != nil {
			return "login", 0, 200, err
		}
	}
	read := w.Rand.Float64() < m.cfg.ReadShare
	if read {
		name := pick(w.Rand, readOps)
		status, err := m.read(ctx, w, t, name)
		return name, status, http.StatusOK, err
	}
	return m.write(ctx, w, t, pick(w.Rand, writeOps))
}

func (m *mixed) day(w *Worker, back int) time.Time {
	return time.Now().UTC().AddDate(0, 0, -w.Rand.IntN(back+1))
}

func (m *mixed) read(ctx context.Context, w *Worker, t *MixedTenant, name string) (int, error) {
	prop := t.Properties[w.Rand.IntN(len(t.Properties))]
	var path string
	switch name {
	case OpDailyReport:
		path = "/v1/reports/daily-report?propertyId=" + prop + "&date=" + m.day(w, m.cfg.Days).Format("2006-01-02")
	case OpDailyRange:
		end := m.day(w, m.cfg.Days)
		path = "/v1/reports/daily-reports?propertyId=" + prop + "&startDate=" + end.AddDate(0, 0, -6).Format("2006-01-02") + "&endDate=" + end.Format("2006-01-02")
	case OpMonthly:
		d := m.day(w, m.cfg.Days)
		path = "/v1/reports/monthly-report?propertyId=" + prop + "&year=" + strconv.Itoa(d.Year()) + "&month=" + strconv.Itoa(int(d.Month()))
	case OpYearly:
		path = "/v1/reports/yearly-summary?propertyId=" + prop + "&year=" + strconv.Itoa(time.Now().UTC().Year())
	case OpListRevenues:
		path = "/v1/finance/revenues?limit=20&propertyId=" + prop
	case OpListExpenses:
		path = "/v1/finance/expenses?limit=20&propertyId=" + prop
	}
	return m.cfg.Client.Send(ctx, Request{Method: http.MethodGet, Path: path, Token: t.AdminToken})
}

func (m *mixed) write(ctx context.Context, w *Worker, t *MixedTenant, name string) (string, int, int, error) {
	switch name {
	case OpApprove:
		if r, ok := t.pop(&t.pending); ok {
			action := "/approve"
			if w.Rand.IntN(10) == 0 {
				action = "/reject"
			}
			status, err := m.cfg.Client.Send(ctx, Request{Method: http.MethodPost, Path: "/v1/finance/" + r.kind + "/" + r.id + action, Token: t.AdminToken, Body: []byte(`{}`)})
			if status == http.StatusOK && action == "/approve" {
				t.push(&t.rows, r)
			}
			return name, status, http.StatusOK, err
		}
		name = OpManagerCreate
	case OpEdit, OpDelete:
		if r, ok := t.pop(&t.rows); ok {
			if name == OpDelete {
				status, err := m.cfg.Client.Send(ctx, Request{Method: http.MethodDelete, Path: "/v1/finance/" + r.kind + "/" + r.id, Token: t.AdminToken})
				return name, status, http.StatusNoContent, err
			}
			body := `{"amountCents":` + strconv.Itoa(100+w.Rand.IntN(100_000)) + `,"description":"edited by the load test"}`
			status, err := m.cfg.Client.Send(ctx, Request{Method: http.MethodPatch, Path: "/v1/finance/" + r.kind + "/" + r.id, Token: t.AdminToken, Body: []byte(body)})
			if status == http.StatusOK {
				t.push(&t.rows, r)
			}
			return name, status, http.StatusOK, err
		}
		name = OpRevenueCreate
	}
	kind, token := "revenues", t.AdminToken
	if name == OpExpenseCreate || (name == OpManagerCreate && w.Rand.IntN(2) == 0) {
		kind = "expenses"
	}
	if name == OpManagerCreate {
		token = t.ManagerToken
	}
	at := time.Now().UTC().Add(-time.Duration(w.Rand.IntN(3600)) * time.Second)
	if m.backDay {
		at = at.AddDate(0, 0, -1-w.Rand.IntN(max(m.cfg.Days-1, 1)))
	}
	field, value := "source", "room"
	if kind == "expenses" {
		field, value = "category", "supplies"
	}
	prop := t.Properties[w.Rand.IntN(len(t.Properties))]
	cents := 100 + w.Rand.Int64N(500_000)
	b := appendTxnBody(w.Buf[:0], prop, field, value, cents, w.Rand.IntN(2) == 0, at)
	w.Buf = b
	status, body, err := m.cfg.Client.SendBody(ctx, Request{Method: http.MethodPost, Path: "/v1/finance/" + kind, Token: token, Body: b})
	if status == http.StatusCreated {
		var row struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &row) == nil && row.ID != "" {
			if name == OpManagerCreate {
				t.push(&t.pending, rowRef{kind, row.ID})
			} else {
				t.push(&t.rows, rowRef{kind, row.ID})
			}
		}
	}
	return name, status, http.StatusCreated, err
}

// SendBody is Send that also returns the answer's body, through the
// standard client: for the few calls whose answer the load needs (the id
// of a created row).
func (c *Client) SendBody(ctx context.Context, r Request) (int, []byte, error) {
	var body io.Reader
	if r.Body != nil {
		body = strings.NewReader(string(r.Body))
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.base+r.Path, body)
	if err != nil {
		return 0, nil, err
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// rateAt is the open loop's rate at offset d of the run.
func (m *mixed) rateAt(d time.Duration, stepRate float64) float64 {
	switch m.cfg.Scenario {
	case ScenarioBurst:
		// Every 20 s, 5 s at four times the rate.
		if d >= m.cfg.Warmup && (d-m.cfg.Warmup)%(20*time.Second) >= 15*time.Second {
			return 4 * m.cfg.Rate
		}
	case ScenarioRamp:
		return stepRate
	}
	return m.cfg.Rate
}

// processRSS returns this process's resident set size in bytes (0 when
// unknown).
func processRSS() (cur, peak int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = n * 1024
		case "VmHWM:":
			peak = n * 1024
		}
	}
	return cur, peak
}
