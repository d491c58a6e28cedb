// Package dashboard serves the operator's live dashboard: one page at
// /dashboard with charts of the key figures (writes and reads per second,
// latency, pipeline lag and backlog, cache hit rate, pool usage,
// corrections), the alerts that fire and the settings in force, updated
// once a second by server-sent events computed from the process's
// Prometheus registry. Every asset is embedded: it works without a
// network. Access takes the operator token, in an Authorization header or
// through a login form that sets an HttpOnly, SameSite=Strict cookie.
package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// Config is what the dashboard shows and who may see it.
type Config struct {
	// Token is the operator token (HMP_ADMIN_TOKEN). Empty: the dashboard
	// answers 401 to everyone.
	Token string
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
	cfg    Config
	files  http.Handler
	page   *template.Template
	cookie string // the session cookie's value: derived from the token

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
	if cfg.Token != "" {
		// The cookie proves the token was given without being the token:
		// a cookie that leaks does not leak the operator API's token.
		m := hmac.New(sha256.New, []byte(cfg.Token))
		m.Write([]byte("hmp dashboard session v1"))
		d.cookie = hex.EncodeToString(m.Sum(nil))
	}
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
		http.SetCookie(w, d.sessionCookie(r, "", -1))
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
	case r.URL.Path == "/dashboard/events" && r.Method == http.MethodGet:
		if !d.authorized(r) {
			http.Error(w, "operator token required", http.StatusUnauthorized)
			return
		}
		d.events(w, r)
	case strings.HasPrefix(r.URL.Path, "/dashboard/assets/") && r.Method == http.MethodGet:
		h.Set("Cache-Control", "no-cache")
		d.files.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// authorized reports whether r carries the operator token (header) or the
// session cookie.
func (d *Dashboard) authorized(r *http.Request) bool {
	if d.cfg.Token == "" {
		return false
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(d.cfg.Token)) == 1
	}
	c, err := r.Cookie(CookieName)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(d.cookie)) == 1
}

func (d *Dashboard) sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/dashboard", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}

type pageData struct {
	LoggedIn bool
	Failed   bool
	Off      bool
}

func (d *Dashboard) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if !d.authorized(r) {
		w.WriteHeader(http.StatusUnauthorized)
		d.render(w, pageData{Off: d.cfg.Token == ""})
		return
	}
	if r.Header.Get("Authorization") != "" {
		// The browser's event stream cannot send the header: it sends the
		// cookie.
		http.SetCookie(w, d.sessionCookie(r, d.cookie, 12*3600))
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
	if d.cfg.Token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(d.cfg.Token)) != 1 {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		d.render(w, pageData{Failed: true, Off: d.cfg.Token == ""})
		return
	}
	http.SetCookie(w, d.sessionCookie(r, d.cookie, 12*3600))
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// events streams a sample every Interval for StreamFor, then ends (the
// browser reconnects at once, and its charts carry on).
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
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
	}
}
