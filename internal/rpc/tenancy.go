package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"hmp/internal/domain"
	"hmp/internal/tenancy"
)

// The tenancy facts other roles ask the finance role for. The reports
// role and the gateway never read tenancy's tables: they ask the role
// that owns them, and keep the answers briefly.
const (
	// epUserRole answers the role alone, for callers older than
	// epUserState.
	epUserRole   = "tenancy-user-role"
	epUserState  = "tenancy-user-state"
	epRevoked    = "tenancy-revoked"
	epRevoke     = "tenancy-revoke"
	epProperty   = "tenancy-property"
	epProperties = "tenancy-properties"
)

// TenancyBackend is what the finance role answers tenancy questions with
// (tenancy.Service).
type TenancyBackend interface {
	UserState(ctx context.Context, orgID, userID domain.ID) (domain.UserState, error)
	Revoked(ctx context.Context, orgID domain.ID, tokenID string) (bool, error)
	Revoke(ctx context.Context, orgID, userID domain.ID, tokenID string, expiresAt time.Time) error
	Property(ctx context.Context, actor domain.Actor, id domain.ID) (tenancy.Property, error)
	Properties(ctx context.Context, actor domain.Actor) ([]tenancy.Property, error)
}

type tenancyCall struct {
	Actor     domain.Actor `json:"actor"`
	OrgID     domain.ID    `json:"orgId"`
	UserID    domain.ID    `json:"userId"`
	ID        domain.ID    `json:"id"`
	TokenID   string       `json:"tokenId,omitempty"`
	ExpiresAt time.Time    `json:"expiresAt"`
}

type wireUserState struct {
	Role            domain.Role `json:"role"`
	TokensNotBefore time.Time   `json:"tokensNotBefore"`
}

type wireProperty struct {
	OrgID     domain.ID `json:"orgId"`
	ID        domain.ID `json:"id"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Timezone  string    `json:"timezone"`
	Currency  string    `json:"currency"`
	CreatedAt time.Time `json:"createdAt"`
}

func toWire(p tenancy.Property) wireProperty {
	return wireProperty{OrgID: p.OrgID, ID: p.ID, Name: p.Name, Type: p.Type, Timezone: p.Timezone, Currency: p.Currency, CreatedAt: p.CreatedAt}
}

// HandleTenancy answers the tenancy questions of the other roles from t.
func (s *Server) HandleTenancy(t TenancyBackend) error {
	handle := func(fn func(ctx context.Context, in tenancyCall) (any, error)) func(micro.Request) {
		return func(req micro.Request) {
			var in tenancyCall
			if err := json.Unmarshal(req.Data(), &in); err != nil {
				_ = req.Error("400", "undecodable tenancy call", nil)
				return
			}
			ctx, cancel := callContext(req.Headers())
			defer cancel()
			out, err := fn(ctx, in)
			if err != nil {
				kind := errorKind(err)
				if kind == "" {
					s.logger.Warn("rpc_tenancy_failed", "endpoint", req.Subject(), "error", err.Error())
					_ = req.Error("503", "tenancy unavailable", nil)
					return
				}
				_ = req.Error("422", err.Error(), nil, micro.WithHeaders(micro.Headers{HeaderErrorKind: {kind}}))
				return
			}
			_ = req.RespondJSON(out)
		}
	}
	eps := map[string]func(ctx context.Context, in tenancyCall) (any, error){
		epUserRole: func(ctx context.Context, in tenancyCall) (any, error) {
			st, err := t.UserState(ctx, in.OrgID, in.UserID)
			return st.Role, err
		},
		epUserState: func(ctx context.Context, in tenancyCall) (any, error) {
			st, err := t.UserState(ctx, in.OrgID, in.UserID)
			return wireUserState{Role: st.Role, TokensNotBefore: st.TokensNotBefore}, err
		},
		epRevoked: func(ctx context.Context, in tenancyCall) (any, error) {
			return t.Revoked(ctx, in.OrgID, in.TokenID)
		},
		epRevoke: func(ctx context.Context, in tenancyCall) (any, error) {
			return true, t.Revoke(ctx, in.OrgID, in.UserID, in.TokenID, in.ExpiresAt)
		},
		epProperty: func(ctx context.Context, in tenancyCall) (any, error) {
			p, err := t.Property(ctx, in.Actor, in.ID)
			return toWire(p), err
		},
		epProperties: func(ctx context.Context, in tenancyCall) (any, error) {
			ps, err := t.Properties(ctx, in.Actor)
			out := make([]wireProperty, len(ps))
			for i, p := range ps {
				out[i] = toWire(p)
			}
			return out, err
		},
	}
	for name, fn := range eps {
		if err := s.add(name, handle(fn)); err != nil {
			return err
		}
	}
	return nil
}

// errorKind names the domain errors that travel back as themselves.
func errorKind(err error) string {
	switch {
	case errors.Is(err, domain.ErrUnauthenticated):
		return "unauthenticated"
	case errors.Is(err, domain.ErrNotFound):
		return "not_found"
	}
	var v *domain.ValidationError
	if errors.As(err, &v) {
		return "invalid"
	}
	return ""
}

// callContext bounds a tenancy call by the caller's deadline, else 5 s.
func callContext(h micro.Headers) (context.Context, context.CancelFunc) {
	if h.Get(HeaderDeadline) != "" {
		if ctx, cancel, err := callerContext(h); err == nil {
			return ctx, cancel
		}
	}
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// Tenancy asks the finance role the tenancy facts the other roles need:
// it is auth.Users (a token's user and revocation state) and
// reports.Properties (a property's zone, a manager's access). Answers
// about properties are kept for MaxStale; auth keeps its own answers.
type Tenancy struct {
	nc       *nats.Conn
	timeout  time.Duration
	maxStale time.Duration
	// Size-bounded only (no goroutine): freshness is checked on read.
	props    *otter.Cache[propKey, fresh[tenancy.Property]]
	lists    *otter.Cache[domain.Actor, fresh[[]tenancy.Property]]
	locMu    sync.Mutex
	location map[string]*time.Location
}

type fresh[T any] struct {
	v  T
	at time.Time
}

type propKey struct {
	actor domain.Actor
	id    domain.ID
}

// TenancyConfig tunes a Tenancy client. Zero fields mean their defaults.
type TenancyConfig struct {
	// Timeout bounds one call. Default 2 s.
	Timeout time.Duration
	// MaxStale is how long a property answer is kept: a manager's changed
	// assignment shows within it. Default 2 s.
	MaxStale time.Duration
}

// NewTenancy returns a client of the finance role's tenancy endpoints.
func NewTenancy(nc *nats.Conn, cfg TenancyConfig) (*Tenancy, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxStale <= 0 {
		cfg.MaxStale = 2 * time.Second
	}
	props, err := otter.New(&otter.Options[propKey, fresh[tenancy.Property]]{MaximumSize: 100_000})
	if err != nil {
		return nil, fmt.Errorf("property cache: %w", err)
	}
	lists, err := otter.New(&otter.Options[domain.Actor, fresh[[]tenancy.Property]]{MaximumSize: 10_000})
	if err != nil {
		return nil, fmt.Errorf("property list cache: %w", err)
	}
	return &Tenancy{nc: nc, timeout: cfg.Timeout, maxStale: cfg.MaxStale, props: props, lists: lists, location: map[string]*time.Location{}}, nil
}

// call asks endpoint and decodes its answer into out. A domain error
// comes back as itself; a failure to get an answer is
// domain.ErrUnavailable (503 at the edge: the caller may retry).
func (t *Tenancy) call(ctx context.Context, endpoint string, in tenancyCall, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode tenancy call: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	m := nats.NewMsg(Subject(Finance, endpoint))
	m.Data = data
	if d, ok := ctx.Deadline(); ok {
		m.Header.Set(HeaderDeadline, strconv.FormatInt(d.UnixNano(), 10))
	}
	reply, err := t.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return fmt.Errorf("%w: ask finance %s: %w", domain.ErrUnavailable, endpoint, err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		desc := reply.Header.Get(micro.ErrorHeader)
		switch reply.Header.Get(HeaderErrorKind) {
		case "unauthenticated":
			return fmt.Errorf("%w: %s", domain.ErrUnauthenticated, strings.TrimPrefix(desc, "unauthenticated: "))
		case "not_found":
			return domain.NotFoundf("%s", strings.TrimPrefix(desc, "not found: "))
		case "invalid":
			return domain.Invalid("token", desc, nil)
		}
		return fmt.Errorf("%w: finance %s answered %s %s", domain.ErrUnavailable, endpoint, code, desc)
	}
	if err := json.Unmarshal(reply.Data, out); err != nil {
		return fmt.Errorf("%w: decode finance %s answer: %w", domain.ErrUnavailable, endpoint, err)
	}
	return nil
}

// UserState implements auth.Users.
func (t *Tenancy) UserState(ctx context.Context, orgID, userID domain.ID) (domain.UserState, error) {
	var st wireUserState
	err := t.call(ctx, epUserState, tenancyCall{OrgID: orgID, UserID: userID}, &st)
	return domain.UserState{Role: st.Role, TokensNotBefore: st.TokensNotBefore}, err
}

// Revoked implements auth.Users.
func (t *Tenancy) Revoked(ctx context.Context, orgID domain.ID, tokenID string) (bool, error) {
	var revoked bool
	err := t.call(ctx, epRevoked, tenancyCall{OrgID: orgID, TokenID: tokenID}, &revoked)
	return revoked, err
}

// Revoke implements auth.Users.
func (t *Tenancy) Revoke(ctx context.Context, orgID, userID domain.ID, tokenID string, expiresAt time.Time) error {
	var ok bool
	return t.call(ctx, epRevoke, tenancyCall{OrgID: orgID, UserID: userID, TokenID: tokenID, ExpiresAt: expiresAt}, &ok)
}

// Property implements reports.Properties: a property the actor may see,
// else domain.ErrNotFound.
func (t *Tenancy) Property(ctx context.Context, actor domain.Actor, id domain.ID) (tenancy.Property, error) {
	key := propKey{actor, id}
	if p, ok := t.props.GetIfPresent(key); ok && time.Since(p.at) < t.maxStale {
		return p.v, nil
	}
	var w wireProperty
	if err := t.call(ctx, epProperty, tenancyCall{Actor: actor, ID: id}, &w); err != nil {
		return tenancy.Property{}, err
	}
	p, err := t.fromWire(w)
	if err != nil {
		return tenancy.Property{}, err
	}
	t.props.Set(key, fresh[tenancy.Property]{p, time.Now()})
	return p, nil
}

// Properties implements reports.Properties: the properties the actor may
// see.
func (t *Tenancy) Properties(ctx context.Context, actor domain.Actor) ([]tenancy.Property, error) {
	if ps, ok := t.lists.GetIfPresent(actor); ok && time.Since(ps.at) < t.maxStale {
		return ps.v, nil
	}
	var ws []wireProperty
	if err := t.call(ctx, epProperties, tenancyCall{Actor: actor}, &ws); err != nil {
		return nil, err
	}
	ps := make([]tenancy.Property, len(ws))
	for i, w := range ws {
		p, err := t.fromWire(w)
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	t.lists.Set(actor, fresh[[]tenancy.Property]{ps, time.Now()})
	return ps, nil
}

func (t *Tenancy) fromWire(w wireProperty) (tenancy.Property, error) {
	t.locMu.Lock()
	loc, ok := t.location[w.Timezone]
	if !ok {
		var err error
		if loc, err = time.LoadLocation(w.Timezone); err != nil {
			t.locMu.Unlock()
			return tenancy.Property{}, fmt.Errorf("property %s zone %q: %w", w.ID, w.Timezone, err)
		}
		t.location[w.Timezone] = loc
	}
	t.locMu.Unlock()
	return tenancy.Property{OrgID: w.OrgID, ID: w.ID, Name: w.Name, Type: w.Type, Timezone: w.Timezone,
		Currency: w.Currency, CreatedAt: w.CreatedAt, Location: loc}, nil
}
