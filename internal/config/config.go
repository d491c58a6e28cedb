// Package config is what a running HMP is configured by: every setting
// with its default and its checks, the scaling profiles, and the roles an
// instance can run. app wires a Config into parts; cmd/hmp fills it from
// flags and the environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"hmp/internal/bus"
	"hmp/internal/cache"
	"hmp/internal/eventstore"
	"hmp/internal/gateway"
	"hmp/internal/idempotency"
	"hmp/internal/knobs"
	"hmp/internal/operator"
	"hmp/internal/postgres"
	"hmp/internal/ratelimit"
	"hmp/internal/reconcile"
	"hmp/internal/replicas"
	"hmp/internal/reports"
	"hmp/internal/telemetry"
)

// Config is everything a running HMP needs. The zero value of each field
// means its default, filled by WithDefaults.
type Config struct {
	// HTTPAddr is where the API listens. Default 127.0.0.1:8080; port 0
	// picks a free one (tests).
	HTTPAddr string
	// DataDir holds the embedded PostgreSQL cluster, the embedded NATS
	// store and a generated token secret. Default ./.hmp.
	DataDir string
	// DatabaseURL points at an existing PostgreSQL. Empty: a private
	// cluster is started under DataDir from the installed binaries.
	DatabaseURL string
	// PostgresBinDir overrides where initdb and postgres are looked for.
	PostgresBinDir string
	// PostgresSettings are server settings of the embedded cluster; they
	// override its sizing from the machine's memory.
	PostgresSettings map[string]string
	// Profile names the scaling profile (baseline, phase1). Default phase1.
	// Fields set explicitly below win over the profile's.
	Profile string
	// Pool sizes the connection pool. Zero fields: the profile's.
	Pool postgres.PoolConfig
	// Partitions is the hash partition count by org_id of the growing
	// tables when this start creates the schema (HMP_PARTITIONS); 0: the
	// profile's (16; 64 in phase2 and phase3); negative: the unpartitioned layout (for
	// comparisons; 'hmp partitions migrate' moves it later). An existing
	// schema keeps its count.
	Partitions int
	// PartitionMetricsEvery is how often the partition load metrics are
	// read from the statistics views (default 30 s; negative: never).
	PartitionMetricsEvery time.Duration
	// NATSURL points at an external NATS JetStream server or cluster.
	// Empty: an embedded server under DataDir/nats.
	NATSURL string
	// Projector tunes the reports projector. Zero fields: the profile's.
	Projector reports.ProjectorConfig
	// Cache tunes the report cache (Entries negative: off; RedisURL: the
	// shared tier). Zero fields: the profile's.
	Cache cache.Config
	// Relay tunes the outbox relay. Zero fields: defaults.
	Relay eventstore.RelayConfig
	// Publish bounds the relay's publishes (acknowledgement timeout) and
	// tunes their circuit breaker. Zero fields: defaults.
	Publish bus.PublisherConfig
	// RateLimits are the request budgets answered with 429 past their
	// count. Zero fields: defaults (writes: the profile's); a negative
	// Count: unlimited.
	RateLimits RateLimits
	// RedisURL points at the Redis that instances share: rate limit
	// budgets and, unless Cache.RedisURL says otherwise, the shared report
	// cache tier. Empty: both stay in process, per instance.
	RedisURL string
	// IdempotencyPruner tunes the background deletion of expired
	// idempotency keys. Zero fields: defaults (every 5 min).
	IdempotencyPruner idempotency.PrunerConfig
	// Reconcile tunes reconciliation jobs, drift detection and the
	// correction batcher. Zero fields: the profile's, then defaults.
	Reconcile reconcile.Config
	// MaxInFlight bounds the API requests handled at once; more wait up
	// to MaxQueueWait, then answer 503. Default 32 (measured best on 2
	// cores); negative: unbounded.
	MaxInFlight int
	// MaxConns bounds the client connections the API listener holds open;
	// more wait in the kernel's accept queue until one closes, and while
	// it is full a refused request's connection, or one that has held its
	// place for over a second, is closed to give its place to a waiting
	// one. Default 128: four places per in-flight slot hold what the
	// queue wait can drain; more only queue requests that then time out
	// and come straight back. Negative: unbounded.
	MaxConns int
	// MaxQueueWait bounds the wait for an in-flight slot before 503 with
	// Retry-After. Default 250 ms (see httpapi.Shedding.MaxWait).
	MaxQueueWait time.Duration
	// OrgShare is the fraction of the in-flight slots one organization may
	// hold at once. Default 0.75; 1: no per-organization bound.
	OrgShare float64
	// RequestTimeout is every API request's deadline, down to its
	// database calls (503 past it). Default 10 s; negative: none.
	RequestTimeout time.Duration
	// ConsistencyTimeout bounds how long a read with a consistency token
	// waits for its write before answering 503. Default 5 s.
	ConsistencyTimeout time.Duration
	// ConsistencyStreamWide makes a read with a consistency token wait for
	// every organization's events (the stream-wide floor), as before reads
	// waited only for their organization's. Default false.
	ConsistencyStreamWide bool
	// SnapshotEvery is the interval, in events of an organization, of the
	// property balance snapshots that point-in-time reports (asOf) start
	// from. 0: 1000.
	SnapshotEvery int
	// TokenSecret signs access tokens; at least 32 bytes. Empty: a random
	// secret kept in DataDir/token.key (set it when running several
	// instances).
	TokenSecret string
	// AdminToken is the operator token of the operator surface (the
	// /v1/admin routes: index advice, alerts, live settings; the
	// dashboard): at least 32 bytes that look random (openssl rand -hex
	// 32). Empty: role all generates one into DataDir/admin.token on first
	// start and logs where it is; a split role keeps the surface closed
	// (every instance must share one token, as the token secret).
	AdminToken string
	// OperatorAddr is where the operator surface (/metrics, /dashboard,
	// /v1/admin) listens, apart from the API (HMP_OPERATOR_ADDR); the API
	// port then serves only the API, /openapi.json, /docs and the health
	// checks. Empty: the operator surface stays on HTTPAddr. Port 0 picks
	// a free one (tests).
	OperatorAddr string
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes,
	// HMP_TRUSTED_PROXIES) whose X-Forwarded-For names the client of the
	// operator guard's per-address limit and whose X-Forwarded-Proto:
	// https makes the dashboard's cookie Secure. Empty: none; the headers
	// are ignored.
	TrustedProxies []string
	// DashboardSessionTTL is how long a dashboard login lasts, enforced
	// by the server. Default 12 h.
	DashboardSessionTTL time.Duration
	// Alerts tunes the built-in alert evaluator: thresholds (zero: the
	// scaling guide's; negative: rule off), evaluation interval (default
	// 15 s; negative: no evaluation), rate window (5 min) and for (1 min).
	Alerts telemetry.Config
	// AlertWebhookURL is a Slack-compatible incoming webhook that firing
	// and resolved alerts are posted to. Empty: none.
	AlertWebhookURL string
	// AlertSMTPURL (smtp://user:pass@host:port) is the mail server that
	// alert emails go through, to AlertEmailTo (comma-separated), from
	// AlertEmailFrom (default hmp@<hostname>). Empty: no email.
	AlertSMTPURL   string
	AlertEmailTo   string
	AlertEmailFrom string
	// AlertDelivery tunes the notifications' rate limit, retries and
	// breaker. Zero fields: defaults (30 per minute, retried 5 min).
	AlertDelivery telemetry.DispatchConfig
	// TelemetrySampleEvery is the period of the metrics that cost a query
	// (database locks, bus backlog). Default 5 s.
	TelemetrySampleEvery time.Duration

	// SlowQuery is the duration from which a database statement counts as
	// slow: logged (its label and text, once a minute per label) and kept
	// with a sample of its arguments for the index advisor
	// (HMP_SLOW_QUERY). Default 200 ms; negative: none.
	SlowQuery time.Duration
	// TokenTTL is how long an access token is valid. Default 24 h.
	TokenTTL time.Duration
	// BcryptCost is the password hashing cost. Default 10.
	BcryptCost int
	// ScopeMaxStale is how long a MANAGER's property assignments, once
	// read, answer the access check of a read on this instance (a change
	// made here is seen here at once). Default 2 s (the session bound);
	// negative: every check reads PostgreSQL.
	ScopeMaxStale time.Duration
	// ShutdownTimeout bounds the graceful drain on stop. Default 15 s.
	ShutdownTimeout time.Duration
	// Role is the part of HMP this instance runs: all (every part in one
	// process, the embedded default), finance, reports or gateway (a
	// split deployment; see roles.go). Default all.
	Role string
	// BusReplicas is the replica count of the JetStream streams and
	// consumers: 1 on one server, 3 on a three-node cluster. Default 1.
	BusReplicas int
	// Gateway tunes the gateway role's calls to the services: per-call
	// deadline, retries, circuit breakers. Zero fields: defaults.
	Gateway gateway.Config

	// ReplicaURLs are PostgreSQL streaming replicas of the database
	// (HMP_REPLICA_URLS) that report reads may be served from. Empty:
	// every read on the primary.
	ReplicaURLs []string
	// ReplicaReads turns reading from ReplicaURLs "on" or "off". Empty:
	// the profile's (on in every profile but baseline): "off", or the
	// baseline profile, is this stage's rollback. /readyz ("reads") and
	// the start log (report_reads) say where reads go.
	ReplicaReads string
	// Replicas tunes the replica router: MaxLag (how stale a read without
	// a consistency token may be, default 5 s), the check interval
	// (default 2 s), the token wait (default 100 ms) and each replica's
	// pool (default 20 connections at most). Its URLs and Disabled are
	// set from the two fields above.
	Replicas replicas.Config
	// Clock is the time source of every service. Default time.Now; tests
	// move it.
	Clock func() time.Time
}

// WithDefaults returns a copy of c with every zero field at its default.
func (c Config) WithDefaults() Config {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = ".hmp"
	}
	if c.Profile == "" {
		c.Profile = DefaultProfile
	}
	if p, err := LookupProfile(c.Profile); err == nil {
		c.Pool = overlayPool(c.Pool, p.Pool)
		c = c.withKnobs(c.Knobs().Over(p.Knobs))
	}
	c.Reconcile = c.Reconcile.WithDefaults()
	if c.Cache.RedisURL == "" {
		c.Cache.RedisURL = c.RedisURL // one Redis for the cache and the rate limits
	}
	c.Cache = c.Cache.WithDefaults()
	c.Pool = c.Pool.WithDefaults()
	c.Projector = c.Projector.WithDefaults()
	c.RateLimits = c.RateLimits.withDefaults(c.Profile)
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 32
	}
	if c.MaxConns == 0 {
		c.MaxConns = 128
	}
	if c.MaxQueueWait == 0 {
		c.MaxQueueWait = 250 * time.Millisecond
	}
	if c.OrgShare == 0 {
		c.OrgShare = 0.75
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Pool.StatementTimeout == 0 && c.RequestTimeout > 0 {
		// The database's own backstop for a statement whose client
		// stopped listening: well past any request's deadline, short of
		// forever. (Background jobs on the same pool stay far inside it.)
		c.Pool.StatementTimeout = max(6*c.RequestTimeout, time.Minute)
	}
	if c.ConsistencyTimeout == 0 {
		c.ConsistencyTimeout = 5 * time.Second
	}
	c.Alerts = c.Alerts.WithDefaults()
	if c.TokenTTL == 0 {
		c.TokenTTL = 24 * time.Hour
	}
	if c.DashboardSessionTTL <= 0 {
		c.DashboardSessionTTL = 12 * time.Hour
	}
	if c.BcryptCost == 0 {
		c.BcryptCost = 10
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	c = c.roleDefaults()

	if c.ReplicaReads == "" {
		c.ReplicaReads = "off"
		if p, err := LookupProfile(c.Profile); err == nil && p.ReplicaReads {
			c.ReplicaReads = "on"
		}
	}
	c.Replicas.URLs, c.Replicas.Disabled = c.ReplicaURLs, c.ReplicaReads != "on"
	if c.Replicas.Pool.StatementTimeout == 0 {
		c.Replicas.Pool.StatementTimeout = c.Pool.StatementTimeout // the same backstop as the primary's
	}
	c.Replicas = c.Replicas.WithDefaults()
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if _, err := LookupProfile(c.Profile); err != nil {
		errs = append(errs, err)
	}
	if err := c.Projector.Projector.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http addr %q: %w", c.HTTPAddr, err))
	}
	if err := c.Cache.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Pool.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Reconcile.Validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateAlerts())
	if c.TokenSecret != "" && len(c.TokenSecret) < 32 {
		errs = append(errs, errors.New("token secret must be at least 32 bytes"))
	}
	if c.AdminToken != "" {
		if err := operator.ValidateToken(c.AdminToken); err != nil {
			errs = append(errs, fmt.Errorf("admin token: %w", err))
		}
	}
	if c.OperatorAddr != "" {
		if _, _, err := net.SplitHostPort(c.OperatorAddr); err != nil {
			errs = append(errs, fmt.Errorf("operator addr %q: %w", c.OperatorAddr, err))
		} else if c.OperatorAddr == c.HTTPAddr && !strings.HasSuffix(c.OperatorAddr, ":0") {
			errs = append(errs, fmt.Errorf("operator addr %q is the http addr: leave it empty to keep the operator surface on the API port", c.OperatorAddr))
		}
	}
	if _, err := operator.ParseProxies(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if c.TokenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("token ttl must be at least 1m, got %s", c.TokenTTL))
	}
	if c.OrgShare < 0 || c.OrgShare > 1 {
		errs = append(errs, fmt.Errorf("org share must be within (0, 1], got %v", c.OrgShare))
	}
	if c.MaxQueueWait < 0 {
		errs = append(errs, fmt.Errorf("max queue wait must not be negative, got %s", c.MaxQueueWait))
	}
	if c.ReplicaReads != "on" && c.ReplicaReads != "off" {
		errs = append(errs, fmt.Errorf("replica reads must be on or off, got %q", c.ReplicaReads))
	}
	if err := c.Replicas.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		errs = append(errs, fmt.Errorf("bcrypt cost must be 4..31, got %d", c.BcryptCost))
	}
	errs = append(errs, c.validateRole())
	return errors.Join(errs...)
}

// PartitionCount resolves Partitions: the count a schema created now gets
// (0: unpartitioned).
func (c Config) PartitionCount() int {
	switch {
	case c.Partitions < 0:
		return 0
	case c.Partitions > 0:
		return c.Partitions
	}
	if p, err := LookupProfile(c.Profile); err == nil && p.Partitions > 0 {
		return p.Partitions
	}
	return postgres.DefaultPartitions
}

// overlayPool fills the zero fields of c from p.
func overlayPool(c, p postgres.PoolConfig) postgres.PoolConfig {
	if c.MaxConns == 0 {
		c.MaxConns = p.MaxConns
	}
	if c.MinConns == 0 {
		c.MinConns = p.MinConns
	}
	if c.MaxConnIdleTime == 0 {
		c.MaxConnIdleTime = p.MaxConnIdleTime
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = p.StatementTimeout
	}
	if c.MaxConnLifetime == 0 {
		c.MaxConnLifetime = p.MaxConnLifetime
	}
	return c
}

// Knobs returns the scaling knobs c sets (zero: the profile's). The write
// budgets and replica reads are not among them: their Config forms
// (ratelimit.Limit, "on"/"off") say "none" in their own way, and
// withDefaults and WithDefaults lay them over the profile's.
func (c Config) Knobs() knobs.Knobs {
	return knobs.Knobs{Projector: c.Projector.Projector, Corrections: c.Reconcile.Mode,
		Cache: knobs.Cache{Entries: c.Cache.Entries, Invalidation: c.Cache.Invalidation}}
}

// withKnobs returns c with the knobs of k set (those Knobs returns).
func (c Config) withKnobs(k knobs.Knobs) Config {
	c.Projector.Projector, c.Reconcile.Mode = k.Projector, k.Corrections
	c.Cache.Entries, c.Cache.Invalidation = k.Cache.Entries, k.Cache.Invalidation
	return c
}

// RateLimits are the budgets of the HTTP edge. Each allows Count actions
// per Period in a burst of up to Count; a negative Count is unlimited.
type RateLimits struct {
	// LoginPerEmail bounds password guessing against one account,
	// wherever it comes from. Default 10 per 5 min.
	LoginPerEmail ratelimit.Limit
	// LoginPerAddr bounds the logins (and their bcrypt work) of one client
	// address. Default 60 per 1 min.
	LoginPerAddr ratelimit.Limit
	// SignupPerAddr bounds the signups of one client address. Default 100
	// per 10 min (a load test signs up its organizations from one address).
	SignupPerAddr ratelimit.Limit
	// WritesPerUser bounds the writes (POST, PUT, PATCH, DELETE) of one
	// user. Default: the profile's (phase3: 100 per 60 s; others
	// unlimited, so that load tests measure the database).
	WritesPerUser ratelimit.Limit
	// WritesPerOrg bounds the writes of one organization. Default: the
	// profile's (phase3: 1,000 per 60 s; others unlimited).
	WritesPerOrg ratelimit.Limit
	// OperatorPerAddr bounds the failed operator authentications (a wrong
	// HMP_ADMIN_TOKEN on /v1/admin or the dashboard) of one client
	// address; past it every attempt from there answers 429, the right
	// token included. Default 10 per 10 min.
	OperatorPerAddr ratelimit.Limit
	// RedisTimeout bounds one decision in Redis before the in-process
	// budget decides instead. Default 50 ms.
	RedisTimeout time.Duration
}

func (r RateLimits) withDefaults(profile string) RateLimits {
	def := func(l *ratelimit.Limit, d ratelimit.Limit) {
		if l.Count == 0 {
			*l = d
		}
		if l.Count > 0 && l.Period <= 0 {
			l.Period = d.Period
		}
		if l.Count > 0 && l.Period <= 0 {
			l.Period = time.Minute
		}
	}
	p, _ := LookupProfile(profile)
	def(&r.LoginPerEmail, ratelimit.Limit{Count: 10, Period: 5 * time.Minute})
	def(&r.LoginPerAddr, ratelimit.Limit{Count: 60, Period: time.Minute})
	def(&r.SignupPerAddr, ratelimit.Limit{Count: 100, Period: 10 * time.Minute})
	def(&r.OperatorPerAddr, ratelimit.Limit{Count: 10, Period: 10 * time.Minute})
	def(&r.WritesPerUser, configLimit(p.RateLimits.WritesPerUser))
	def(&r.WritesPerOrg, configLimit(p.RateLimits.WritesPerOrg))
	return r
}

// configLimit returns a profile's write budget as the limiter's.
func configLimit(l knobs.Limit) ratelimit.Limit {
	if l.Unlimited() {
		return ratelimit.Limit{}
	}
	return ratelimit.Limit{Count: l.Count, Period: l.Period()}
}

// Limits returns r by the names the limiter knows.
func (r RateLimits) Limits() map[string]ratelimit.Limit {
	return map[string]ratelimit.Limit{
		ratelimit.LoginEmail:   r.LoginPerEmail,
		ratelimit.LoginAddr:    r.LoginPerAddr,
		ratelimit.SignupAddr:   r.SignupPerAddr,
		ratelimit.WritesUser:   r.WritesPerUser,
		ratelimit.WritesOrg:    r.WritesPerOrg,
		ratelimit.OperatorAddr: r.OperatorPerAddr,
	}
}
