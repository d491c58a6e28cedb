// Package dashboard serves the operator's live dashboard: one page at
// /dashboard with charts of the key figures (writes and reads per second,
// latency, pipeline lag and backlog, cache hit rate, pool usage,
// corrections), the alerts that fire and the settings in force, updated
// once a second by server-sent events computed from the process's
// Prometheus registry. Every asset is embedded: it works without a
// network. Access takes the operator token, in an Authorization header or
// through a login form that opens a session on the server (Sessions,
// shared by the instances) and sets its id in an HttpOnly,
// SameSite=Strict cookie, Secure when the request came over TLS (here or
// at a trusted proxy). Logging out ends the session on every instance at
// once; the server enforces its expiry. Wrong tokens go through the
// operator guard: limited per client address, counted and logged.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/operator"
	"hmp/internal/ratelimit"
)

//go:embed assets
var assets embed.FS

// Alert is one alert as the dashboard shows it.
type Alert struct {
	Name     string    `json:"name"`
	Severity string    `json:"severity"`
	State    string    `json:"state"` // pending, firing, resolved
	Value    float64   `json:"value"`
	Since    time.Time `json:"since"`
}

// AlertSource lists the alerts (the alert evaluator's).
type AlertSource interface {
	Alerts() []Alert
}

// Sessions keep the dashboard's login sessions on the server
// (settings.Sessions: in the bus's settings bucket, shared by every
// instance).
type Sessions interface {
	// Open starts a session: its id and expiry.
	Open(ctx context.Context) (string, time.Time, error)
	// Valid reports whether id is open and unexpired.
	Valid(ctx context.Context, id string) (bool, error)
	// End ends id everywhere.
	End(ctx context.Context, id string) error
	// TTL is how long a session lasts (the cookie's max-age).
	TTL() time.Duration
}

// Config is what the dashboard shows and who may see it.
type Config struct {
	// Guard checks the operator token (HMP_ADMIN_TOKEN) of the login form
	// and the Authorization header. Nil or without a token: the dashboard
	// answers 401 to everyone.
	Guard *operator.Guard
	// Sessions keep the logins. Nil: no login (the header still works).
	Sessions Sessions
	// Gatherer is the process's registry.
	Gatherer prometheus.Gatherer
	// Alerts lists the alerts; nil: none shown.
	Alerts AlertSource
	// Settings returns the settings in force (JSON-encodable); nil: none.
	Settings func() any
	// Pool returns the database connections in use and the pool's size;
	// nil: no pool chart.
	Pool func() (inUse, size int32)
	// Interval is the time between two samples. Default 1 s.
	Interval time.Duration
	// StreamFor is how long one event stream lasts before the browser
	// reconnects (it keeps every stream under the server's write timeout).
	// Default 25 s.
	StreamFor time.Duration
	// Logger, nil: discard.
	Logger *slog.Logger
}

// Dashboard is the dashboard's HTTP handler.
type Dashboard struct {
	cfg   Config
	files http.Handler
	page  *template.Template

	ctx    context.Context // cancelled by Close: ends the event streams
	cancel context.CancelFunc
}

// CookieName names the session cookie.
const CookieName = "hmp_dashboard"

// New returns the dashboard.
func New(cfg Config) *Dashboard {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.StreamFor <= 0 {
		cfg.StreamFor = 25 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sub, _ := fs.Sub(assets, "assets")
	d := &Dashboard{cfg: cfg, files: http.StripPrefix("/dashboard/assets/", http.FileServerFS(sub)),
		page: template.Must(template.ParseFS(assets, "assets/page.html"))}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

// Close ends every open event stream (the server is shutting down). Safe
// on nil and twice.
func (d *Dashboard) Close() {
	if d == nil {
		return
	}
	d.cancel()
}

// ServeHTTP routes /dashboard, its login and logout, its events and its
// assets.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	switch {
	case r.URL.Path == "/dashboard" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		d.index(w, r)
	case r.URL.Path == "/dashboard/login" && r.Method == http.MethodPost:
		d.login(w, r)
	case r.URL.Path == "/dashboard/logout" && r.Method == http.MethodPost:
		d.logout(w, r)
	case r.URL.Path == "/dashboard/events" && r.Method == http.MethodGet:
		a := d.access(r)
		if !a.ok {
			a.refuse(w)
			http.Error(w, http.StatusText(a.status), a.status)
			return
		}
		d.events(w, r, a.session)
	case strings.HasPrefix(r.URL.Path, "/dashboard/assets/") && r.Method == http.MethodGet:
		h.Set("Cache-Control", "no-cache")
		d.files.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// access is the decision on one request.
type access struct {
	ok      bool
	status  int           // the refusal's: 401, 429 or 503
	wait    time.Duration // 429: until the address may try again
	session string        // the session id the cookie carried (empty: the header)
	header  bool          // the operator token came in the header
}

func (a access) refuse(w http.ResponseWriter) {
	if a.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(a.wait)))
	}
	if a.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
}

// access decides r: the operator token in the Authorization header
// (through the guard), else the session cookie (checked on the server).
func (d *Dashboard) access(r *http.Request) access {
	if !d.cfg.Guard.On() {
		return access{status: http.StatusUnauthorized}
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		switch v, wait := d.cfg.Guard.Check(r, operator.SurfaceDashboard, strings.TrimSpace(tok)); v {
		case operator.Allowed:
			return access{ok: true, header: true}
		case operator.Limited:
			return access{status: http.StatusTooManyRequests, wait: wait}
		}
		return access{status: http.StatusUnauthorized}
	}
	c, err := r.Cookie(CookieName)
	if err != nil || d.cfg.Sessions == nil {
		return access{status: http.StatusUnauthorized}
	}
	ok, err := d.cfg.Sessions.Valid(r.Context(), c.Value)
	if err != nil {
		d.cfg.Logger.Warn("dashboard_session_check_failed", "error", err.Error())
		return access{status: http.StatusServiceUnavailable}
	}
	if !ok {
		return access{status: http.StatusUnauthorized}
	}
	return access{ok: true, session: c.Value}
}

// sessionCookie is the session cookie of value (maxAge in seconds;
// negative: delete it). Secure when r came over TLS, to this server or to
// a trusted proxy that says so.
func (d *Dashboard) sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/dashboard", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: d.cfg.Guard.Proxies().Secure(r)}
}

// openSession opens a session and sets its cookie; false (and an answer
// written) when the sessions cannot be reached.
func (d *Dashboard) openSession(w http.ResponseWriter, r *http.Request) bool {
	if d.cfg.Sessions == nil {
		return true // header only
	}
	id, _, err := d.cfg.Sessions.Open(r.Context())
	if err != nil {
		d.cfg.Logger.Warn("dashboard_session_open_failed", "error", err.Error())
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the sessions cannot be reached; retry shortly", http.StatusServiceUnavailable)
		return false
	}
	http.SetCookie(w, d.sessionCookie(r, id, max(1, int(d.cfg.Sessions.TTL()/time.Second))))
	return true
}

// logout ends the cookie's session on the server (every instance) and
// deletes the cookie.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil && d.cfg.Sessions != nil {
		if err := d.cfg.Sessions.End(r.Context(), c.Value); err != nil {
			d.cfg.Logger.Warn("dashboard_session_end_failed", "error", err.Error())
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the session could not be ended; retry shortly", http.StatusServiceUnavailable)
			return
		}
	}
	http.SetCookie(w, d.sessionCookie(r, "", -1))
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

type pageData struct {
	LoggedIn   bool
	Failed     bool
	Limited    bool
	RetryAfter int
	Off        bool
}

func (d *Dashboard) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	a := d.access(r)
	if !a.ok {
		a.refuse(w)
		w.WriteHeader(a.status)
		d.render(w, pageData{Off: !d.cfg.Guard.On(), Limited: a.status == http.StatusTooManyRequests,
			RetryAfter: ratelimit.RetryAfterSeconds(a.wait)})
		return
	}
	// The browser's event stream cannot send the header: it sends the
	// cookie of a session opened now.
	if a.header && !d.openSession(w, r) {
		return
	}
	d.render(w, pageData{LoggedIn: true})
}

func (d *Dashboard) render(w http.ResponseWriter, p pageData) {
	if err := d.page.Execute(w, p); err != nil {
		d.cfg.Logger.Warn("dashboard_render_failed", "error", err.Error())
	}
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	v, wait := d.cfg.Guard.Check(r, operator.SurfaceDashboard, tok)
	if v == operator.Allowed && d.cfg.Sessions != nil {
		if d.openSession(w, r) {
			http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch v {
	case operator.Limited:
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(wait)))
		w.WriteHeader(http.StatusTooManyRequests)
		d.render(w, pageData{Limited: true, RetryAfter: ratelimit.RetryAfterSeconds(wait)})
	default: // wrong, off, or no sessions to log in to
		w.WriteHeader(http.StatusUnauthorized)
		d.render(w, pageData{Failed: v == operator.Wrong, Off: v == operator.Off})
	}
}

// events streams a sample every Interval for StreamFor, then ends (the
// browser reconnects at once, and its charts carry on). A stream opened
// by a session ends as soon as the session has ended or expired.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request, session string) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(d.cfg.StreamFor + 10*time.Second))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := newSampler(d.cfg)
	end := time.NewTimer(d.cfg.StreamFor)
	defer end.Stop()
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	if _, err := w.Write([]byte("retry: 1000\n\n")); err != nil {
		return
	}
	for {
		b, err := json.Marshal(s.sample(time.Now()))
		if err != nil {
			d.cfg.Logger.Warn("dashboard_sample_failed", "error", err.Error())
			return
		}
		if _, err := w.Write(append(append([]byte("event: sample\ndata: "), b...), '\n', '\n')); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-d.ctx.Done():
			return
		case <-end.C:
			return
		case <-tick.C:
		}
		if session != "" {
			if ok, err := d.cfg.Sessions.Valid(r.Context(), session); err == nil && !ok {
				return
			}
		}
	}
}
