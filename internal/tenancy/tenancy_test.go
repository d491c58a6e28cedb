package tenancy_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"hmp/internal/domain"
	"hmp/internal/domain/domaintest"
	"hmp/internal/tenancy"
)

// TestSignup: a signup creates an organization and its first ADMIN, with
// the email normalized; bad input names every field; a taken email is a
// conflict.
func TestSignup(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()

	org, u, err := f.svc.Signup(ctx, tenancy.SignupInput{OrgName: "  Hill Inn ", Email: " Owner@Hill.TEST ", Password: "eight ch", DisplayName: " Owner "})
	if err != nil {
		t.Fatal(err)
	}
	if org.Name != "Hill Inn" || !org.CreatedAt.Equal(baseTime) || org.ID.IsZero() {
		t.Fatalf("org = %+v", org)
	}
	if u.OrgID != org.ID || u.Email != "owner@hill.test" || u.DisplayName != "Owner" || u.Role != domain.Admin ||
		u.PropertyIDs == nil || len(u.PropertyIDs) != 0 || u.Disabled {
		t.Fatalf("user = %+v", u)
	}
	got, err := f.svc.User(ctx, org.ID, u.ID)
	if err != nil || got.Email != u.Email || got.Role != domain.Admin || got.PropertyIDs == nil || !got.CreatedAt.Equal(baseTime) {
		t.Fatalf("stored user = %+v, %v", got, err)
	}

	for _, tc := range []struct {
		name   string
		in     tenancy.SignupInput
		fields []string
	}{
		{"nothing", tenancy.SignupInput{}, []string{"orgName", "email", "password", "displayName"}},
		{"a blank name", tenancy.SignupInput{OrgName: "  ", Email: "a@b.test", Password: "long enough", DisplayName: "A"}, []string{"orgName"}},
		{"a name of 201 characters", tenancy.SignupInput{OrgName: strings.Repeat("n", 201), Email: "a@b.test", Password: "long enough", DisplayName: "A"}, []string{"orgName"}},
		{"not an email", tenancy.SignupInput{OrgName: "A", Email: "not an email", Password: "long enough", DisplayName: "A"}, []string{"email"}},
		{"a display name in an email", tenancy.SignupInput{OrgName: "A", Email: "A <a@b.test>", Password: "long enough", DisplayName: "A"}, []string{"email"}},
		{"a short password", tenancy.SignupInput{OrgName: "A", Email: "a@b.test", Password: "seven c", DisplayName: "A"}, []string{"password"}},
		{"a password past 72 bytes", tenancy.SignupInput{OrgName: "A", Email: "a@b.test", Password: strings.Repeat("p", 73), DisplayName: "A"}, []string{"password"}},
		{"a NUL in the display name", tenancy.SignupInput{OrgName: "A", Email: "a@b.test", Password: "long enough", DisplayName: "a\x00b"}, []string{"displayName"}},
	} {
		_, _, err := f.svc.Signup(ctx, tc.in)
		t.Run(tc.name, func(t *testing.T) { domaintest.MustFields(t, err, tc.fields...) })
	}
	_, _, err = f.svc.Signup(ctx, tenancy.SignupInput{OrgName: "Copy", Email: strings.ToUpper(adminEmail), Password: "long enough", DisplayName: "Copy"})
	domaintest.MustErr(t, err, domain.ErrConflict, "already registered")
}

// TestAuthenticate: the right email (any case) and password answer the
// user; anything else, and a disabled user, is the same
// ErrUnauthenticated that does not say which part was wrong.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	u, err := f.svc.Authenticate(ctx, "  ADMIN@seaside.test", adminPassword)
	if err != nil || u.ID != f.admin.UserID || u.OrgID != f.org.ID || u.Role != domain.Admin {
		t.Fatalf("authenticate = %+v, %v", u, err)
	}
	for _, tc := range []struct{ email, password string }{
		{adminEmail, "wrong horse"}, {"nobody@example.test", adminPassword}, {adminEmail, ""}, {"a\x00b@c.test", adminPassword},
	} {
		_, err := f.svc.Authenticate(ctx, tc.email, tc.password)
		domaintest.MustErr(t, err, domain.ErrUnauthenticated, "invalid email or password")
	}
	if _, err := f.svc.UpdateUser(ctx, f.admin, f.mgr.UserID, tenancy.UserPatch{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, mgrEmail, mgrPassword)
	domaintest.MustErr(t, err, domain.ErrUnauthenticated, "invalid email or password")
	if _, err := f.svc.UpdateUser(ctx, f.admin, f.mgr.UserID, tenancy.UserPatch{Disabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if u, err := f.svc.Authenticate(ctx, mgrEmail, mgrPassword); err != nil || u.ID != f.mgr.UserID || u.Role != domain.Manager {
		t.Fatalf("re-enabled manager: %+v, %v", u, err)
	}
}

// TestUsers: only an ADMIN adds users; a MANAGER is assigned properties
// of the organization, an ADMIN none; assignments are replaced whole,
// deduplicated, and read back in order.
func TestUsers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	north := f.property(t, f.admin, "North", "")
	south := f.property(t, f.admin, "South", "")
	outsider := f.signup(t, "Outsiders", "owner@outsiders.test")
	foreign := f.property(t, outsider, "Foreign", "")

	in := func(email string, role domain.Role, props ...domain.ID) tenancy.CreateUserInput {
		return tenancy.CreateUserInput{Email: email, Password: "long enough", DisplayName: "Clerk", Role: role, PropertyIDs: props}
	}
	u, err := f.svc.CreateUser(ctx, f.admin, in("Clerk@Seaside.test", domain.Manager, south.ID, north.ID, south.ID))
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "clerk@seaside.test" || u.Role != domain.Manager || !slices.Equal(u.PropertyIDs, []domain.ID{south.ID, north.ID}) {
		t.Fatalf("created = %+v", u)
	}
	want := []domain.ID{north.ID, south.ID}
	slices.SortFunc(want, func(a, b domain.ID) int { return strings.Compare(a.String(), b.String()) })
	if got, err := f.svc.User(ctx, f.org.ID, u.ID); err != nil || !slices.Equal(got.PropertyIDs, want) {
		t.Fatalf("stored assignments = %v (%v), want %v", got.PropertyIDs, err, want)
	}

	t.Run("refusals", func(t *testing.T) {
		_, err := f.svc.CreateUser(ctx, f.mgr, in("x@seaside.test", domain.Manager))
		domaintest.MustErr(t, err, domain.ErrForbidden)
		_, err = f.svc.CreateUser(ctx, f.admin, in("y@seaside.test", "OWNER"))
		domaintest.MustFields(t, err, "role")
		_, err = f.svc.CreateUser(ctx, f.admin, in("z@seaside.test", domain.Admin, north.ID))
		domaintest.MustFields(t, err, "propertyIds")
		_, err = f.svc.CreateUser(ctx, f.admin, tenancy.CreateUserInput{Email: "bad", Password: "short", Role: domain.Manager})
		domaintest.MustFields(t, err, "email", "password", "displayName")
		_, err = f.svc.CreateUser(ctx, f.admin, in("w@seaside.test", domain.Manager, foreign.ID))
		domaintest.MustErr(t, err, domain.ErrNotFound)
		_, err = f.svc.CreateUser(ctx, f.admin, in(mgrEmail, domain.Manager))
		domaintest.MustErr(t, err, domain.ErrConflict)
		// Nothing of the refused users was kept.
		for _, email := range []string{"x@seaside.test", "w@seaside.test"} {
			_, err := f.svc.Authenticate(ctx, email, "long enough")
			domaintest.MustErr(t, err, domain.ErrUnauthenticated)
		}
		_, err = f.svc.User(ctx, outsider.OrgID, u.ID)
		domaintest.MustErr(t, err, domain.ErrNotFound)
	})

	t.Run("assignments are replaced", func(t *testing.T) {
		got, err := f.svc.SetUserProperties(ctx, f.admin, u.ID, []domain.ID{north.ID, north.ID})
		if err != nil || !slices.Equal(got.PropertyIDs, []domain.ID{north.ID}) {
			t.Fatalf("set = %+v, %v", got, err)
		}
		if got, _ := f.svc.User(ctx, f.org.ID, u.ID); !slices.Equal(got.PropertyIDs, []domain.ID{north.ID}) {
			t.Fatalf("stored = %v", got.PropertyIDs)
		}
		got, err = f.svc.SetUserProperties(ctx, f.admin, u.ID, nil)
		if err != nil || got.PropertyIDs == nil || len(got.PropertyIDs) != 0 {
			t.Fatalf("cleared = %+v, %v", got, err)
		}
		_, err = f.svc.SetUserProperties(ctx, f.mgr, u.ID, []domain.ID{north.ID})
		domaintest.MustErr(t, err, domain.ErrForbidden)
		_, err = f.svc.SetUserProperties(ctx, f.admin, f.admin.UserID, []domain.ID{north.ID})
		domaintest.MustFields(t, err, "propertyIds")
		_, err = f.svc.SetUserProperties(ctx, f.admin, u.ID, []domain.ID{foreign.ID})
		domaintest.MustErr(t, err, domain.ErrNotFound)
		_, err = f.svc.SetUserProperties(ctx, f.admin, ghostID, []domain.ID{north.ID})
		domaintest.MustErr(t, err, domain.ErrNotFound)
		_, err = f.svc.SetUserProperties(ctx, outsider, u.ID, nil)
		domaintest.MustErr(t, err, domain.ErrNotFound)
	})
}

// TestProperties: only an ADMIN creates properties, in the default zone
// and currency unless told; bad input names the fields; an ADMIN sees
// every property of the organization, a MANAGER the assigned ones, and
// nobody another organization's.
func TestProperties(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	if f.prop.Timezone != "Asia/Kolkata" || f.prop.Currency != "INR" || f.prop.Location.String() != "Asia/Kolkata" || f.prop.Name != "Sea View" {
		t.Fatalf("default property = %+v", f.prop)
	}
	la, err := f.svc.CreateProperty(ctx, f.admin, tenancy.PropertyInput{Name: " Venice ", Type: "resort", Timezone: "America/Los_Angeles", Currency: "USD"})
	if err != nil || la.Name != "Venice" || la.Currency != "USD" {
		t.Fatalf("LA property = %+v, %v", la, err)
	}
	if got := la.Today(baseTime).String(); got != "2026-06-14" {
		t.Fatalf("today in Los Angeles at %s = %s", baseTime, got)
	}
	for _, tc := range []struct {
		name   string
		in     tenancy.PropertyInput
		fields []string
	}{
		{"nothing", tenancy.PropertyInput{}, []string{"name", "type"}},
		{"an unknown type", tenancy.PropertyInput{Name: "A", Type: "castle"}, []string{"type"}},
		{"an unknown zone", tenancy.PropertyInput{Name: "A", Type: "hotel", Timezone: "Mars/Olympus"}, []string{"timezone"}},
		{"the process zone", tenancy.PropertyInput{Name: "A", Type: "hotel", Timezone: "Local"}, []string{"timezone"}},
		{"a zone file path", tenancy.PropertyInput{Name: "A", Type: "hotel", Timezone: "/etc/localtime"}, []string{"timezone"}},
		{"a lower-case currency", tenancy.PropertyInput{Name: "A", Type: "hotel", Currency: "inr"}, []string{"currency"}},
		{"a four-letter currency", tenancy.PropertyInput{Name: "A", Type: "hotel", Currency: "EURO"}, []string{"currency"}},
	} {
		_, err := f.svc.CreateProperty(ctx, f.admin, tc.in)
		t.Run(tc.name, func(t *testing.T) { domaintest.MustFields(t, err, tc.fields...) })
	}
	_, err = f.svc.CreateProperty(ctx, f.mgr, tenancy.PropertyInput{Name: "Mine", Type: "hotel"})
	domaintest.MustErr(t, err, domain.ErrForbidden)

	outsider := f.signup(t, "Outsiders", "owner@outsiders.test")
	foreign := f.property(t, outsider, "Foreign", "")
	names := func(actor domain.Actor) []string {
		t.Helper()
		ps, err := f.svc.Properties(ctx, actor)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(f.admin); !slices.Equal(got, []string{"Sea View", "Venice"}) {
		t.Fatalf("the ADMIN sees %q", got)
	}
	if got := names(f.mgr); !slices.Equal(got, []string{"Sea View"}) {
		t.Fatalf("the MANAGER sees %q", got)
	}
	if got := names(outsider); !slices.Equal(got, []string{"Foreign"}) {
		t.Fatalf("the outsider sees %q", got)
	}
	for _, tc := range []struct {
		actor domain.Actor
		id    domain.ID
		ok    bool
	}{
		{f.admin, la.ID, true}, {f.mgr, f.prop.ID, true}, {f.mgr, la.ID, false},
		{f.admin, foreign.ID, false}, {outsider, f.prop.ID, false}, {f.admin, ghostID, false},
	} {
		p, err := f.svc.Property(ctx, tc.actor, tc.id)
		if tc.ok {
			if err != nil || p.ID != tc.id {
				t.Fatalf("Property(%v, %s) = %+v, %v", tc.actor.Role, tc.id, p, err)
			}
			continue
		}
		domaintest.MustErr(t, err, domain.ErrNotFound)
	}
	// Internal work reads a property without an access check, but within
	// its organization only.
	if p, err := f.svc.PropertyByID(ctx, f.org.ID, la.ID); err != nil || p.Location.String() != "America/Los_Angeles" {
		t.Fatalf("PropertyByID = %+v, %v", p, err)
	}
	_, err = f.svc.PropertyByID(ctx, f.org.ID, foreign.ID)
	domaintest.MustErr(t, err, domain.ErrNotFound)
}

// TestUpdateUser: the rules of changing a user (only an ADMIN, not on
// themselves, within the organization), and a MANAGER made ADMIN loses
// their assignments.
func TestUpdateUser(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	_, err := f.svc.UpdateUser(ctx, f.admin, f.admin.UserID, tenancy.UserPatch{Disabled: ptr(true)})
	domaintest.MustErr(t, err, domain.ErrConflict, "cannot demote or disable themselves")
	_, err = f.svc.UpdateUser(ctx, f.admin, f.admin.UserID, tenancy.UserPatch{Role: ptr(domain.Manager)})
	domaintest.MustErr(t, err, domain.ErrConflict)
	_, err = f.svc.UpdateUser(ctx, f.admin, ghostID, tenancy.UserPatch{Disabled: ptr(true)})
	domaintest.MustErr(t, err, domain.ErrNotFound)
	_, err = f.svc.UpdateUser(ctx, f.mgr, f.admin.UserID, tenancy.UserPatch{Disabled: ptr(true)})
	domaintest.MustErr(t, err, domain.ErrForbidden)
	_, err = f.svc.UpdateUser(ctx, f.admin, f.mgr.UserID, tenancy.UserPatch{Role: ptr(domain.Role("OWNER"))})
	domaintest.MustFields(t, err, "role")
	outsider := f.signup(t, "Other Org", "owner@other.test")
	_, err = f.svc.UpdateUser(ctx, outsider, f.mgr.UserID, tenancy.UserPatch{Disabled: ptr(true)})
	domaintest.MustErr(t, err, domain.ErrNotFound)
	if st, err := f.svc.UserState(ctx, f.org.ID, f.mgr.UserID); err != nil || st.Role != domain.Manager {
		t.Fatalf("the refusals changed the manager: %+v, %v", st, err)
	}

	// An ADMIN may keep themselves an ADMIN.
	if u, err := f.svc.UpdateUser(ctx, f.admin, f.admin.UserID, tenancy.UserPatch{Role: ptr(domain.Admin)}); err != nil || u.Role != domain.Admin {
		t.Fatalf("self to ADMIN: %+v, %v", u, err)
	}
	u, err := f.svc.UpdateUser(ctx, f.admin, f.mgr.UserID, tenancy.UserPatch{Role: ptr(domain.Admin)})
	if err != nil || u.Role != domain.Admin || len(u.PropertyIDs) != 0 {
		t.Fatalf("promoted = %+v, %v; want an ADMIN without assignments", u, err)
	}
	if st, err := f.svc.UserState(ctx, f.org.ID, f.mgr.UserID); err != nil || st.Role != domain.Admin {
		t.Fatalf("state after promotion = %+v, %v", st, err)
	}
	u, err = f.svc.UpdateUser(ctx, f.admin, f.mgr.UserID, tenancy.UserPatch{Role: ptr(domain.Manager)})
	if err != nil || u.Role != domain.Manager || len(u.PropertyIDs) != 0 {
		t.Fatalf("demoted = %+v, %v; want a MANAGER without assignments", u, err)
	}
}

// TestTokensNotBefore: disabling a user refuses them (UserState is
// ErrUnauthenticated) and sets their TokensNotBefore to the moment of the
// disable, which a re-enable keeps and a later disable moves forward,
// never back; a role change leaves it alone.
func TestTokensNotBefore(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	st, err := f.svc.UserState(ctx, f.org.ID, f.mgr.UserID)
	if err != nil || st.Role != domain.Manager || !st.TokensNotBefore.IsZero() {
		t.Fatalf("a never disabled user: %+v, %v", st, err)
	}
	set := func(disabled bool) tenancy.User {
		t.Helper()
		u, err := f.svc.UpdateUser(ctx, f.admin, f.mgr.UserID, tenancy.UserPatch{Disabled: &disabled})
		if err != nil || u.Disabled != disabled || u.ID != f.mgr.UserID || u.Role != domain.Manager {
			t.Fatalf("disabled=%v: %+v, %v", disabled, u, err)
		}
		return u
	}
	f.clock.Advance(time.Minute)
	first := f.clock.Now()
	set(true)
	_, err = f.svc.UserState(ctx, f.org.ID, f.mgr.UserID)
	domaintest.MustErr(t, err, domain.ErrUnauthenticated, "disabled")

	f.clock.Advance(time.Minute)
	set(false)
	st, err = f.svc.UserState(ctx, f.org.ID, f.mgr.UserID)
	if err != nil || !st.TokensNotBefore.Equal(first) {
		t.Fatalf("re-enabled: %+v, %v; want tokens not before %s", st, err, first)
	}
	// A role change keeps the bound.
	if _, err := f.svc.UpdateUser(ctx, f.admin, f.mgr.UserID, tenancy.UserPatch{Role: ptr(domain.Manager)}); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.svc.UserState(ctx, f.org.ID, f.mgr.UserID); !st.TokensNotBefore.Equal(first) {
		t.Fatalf("after a role change: %+v", st)
	}

	f.clock.Advance(time.Hour)
	second := f.clock.Now()
	set(true)
	set(false)
	if st, _ := f.svc.UserState(ctx, f.org.ID, f.mgr.UserID); !st.TokensNotBefore.Equal(second) {
		t.Fatalf("after a second disable: %+v, want %s", st, second)
	}
	// A clock that went back does not move the bound back.
	f.clock.Advance(-2 * time.Hour)
	set(true)
	set(false)
	if st, _ := f.svc.UserState(ctx, f.org.ID, f.mgr.UserID); !st.TokensNotBefore.Equal(second) {
		t.Fatalf("after a disable with an earlier clock: %+v, want %s", st, second)
	}
	_, err = f.svc.UserState(ctx, f.org.ID, ghostID)
	domaintest.MustErr(t, err, domain.ErrUnauthenticated, "no longer exists")
}

// TestRevoke: a logout revokes one token id of an organization until it
// expires; expired revocations are forgotten by the next revoke.
func TestRevoke(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	revoked := func(org domain.ID, id string) bool {
		t.Helper()
		ok, err := f.svc.Revoked(ctx, org, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	exp := baseTime.Add(time.Hour)
	if err := f.svc.Revoke(ctx, f.org.ID, f.admin.UserID, "token-1", exp); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Revoke(ctx, f.org.ID, f.admin.UserID, "token-1", exp); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	outsider := f.signup(t, "Outsiders", "owner@outsiders.test")
	if !revoked(f.org.ID, "token-1") || revoked(f.org.ID, "token-2") || revoked(outsider.OrgID, "token-1") {
		t.Fatal("revocation is not exactly of the token id in its organization")
	}
	f.clock.Advance(2 * time.Hour)
	if err := f.svc.Revoke(ctx, f.org.ID, f.admin.UserID, "token-2", f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if revoked(f.org.ID, "token-1") || !revoked(f.org.ID, "token-2") {
		t.Fatal("the expired revocation was kept, or the new one lost")
	}
	domaintest.MustFields(t, f.svc.Revoke(ctx, f.org.ID, f.admin.UserID, "a\x00b", exp), "token")
}

// TestUnassignedManagerLosesAccess: a MANAGER's assignments are cached for
// the access check, but unassigning them from a property takes effect at
// once on the instance that made the change and, on another instance that
// had cached the assignment, by the time the bound
// (tenancy.DefaultScopeMaxStale, the session bound) has passed;
// reassigning restores access at once. With the cache off every check
// reads PostgreSQL.
func TestUnassignedManagerLosesAccess(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := t.Context()
	a, b := f.svc, f.service(t, tenancy.Config{})
	uncached := f.service(t, tenancy.Config{ScopeMaxStale: -1})
	north, south := f.prop.ID, f.property(t, f.admin, "South", "").ID
	f.assign(t, north, south)
	access := func(svc *tenancy.Service, prop domain.ID, want bool) {
		t.Helper()
		_, err := svc.Property(ctx, f.mgr, prop)
		switch {
		case want && err != nil:
			t.Fatalf("no access to %s: %v", prop, err)
		case !want:
			domaintest.MustErr(t, err, domain.ErrNotFound)
		}
	}
	// Every instance reads (and caches) the assignments.
	for _, svc := range []*tenancy.Service{a, b, uncached} {
		access(svc, north, true)
		access(svc, south, true)
	}

	since := time.Now()
	if _, err := a.SetUserProperties(ctx, f.admin, f.mgr.UserID, []domain.ID{south}); err != nil {
		t.Fatal(err)
	}
	access(a, north, false) // at once where the change was made
	access(a, south, true)
	access(uncached, north, false)

	// Elsewhere the cached assignment may answer until the bound, never
	// after it: the entry was read before the change.
	time.Sleep(time.Until(since.Add(tenancy.DefaultScopeMaxStale)))
	access(b, north, false)
	access(b, south, true)

	if _, err := a.SetUserProperties(ctx, f.admin, f.mgr.UserID, []domain.ID{north, south}); err != nil {
		t.Fatal(err)
	}
	access(a, north, true) // the cached refusal is dropped at once too
}

// assign replaces the fixture MANAGER's properties.
func (f *fixture) assign(t *testing.T, props ...domain.ID) {
	t.Helper()
	if _, err := f.svc.SetUserProperties(t.Context(), f.admin, f.mgr.UserID, props); err != nil {
		t.Fatal(err)
	}
}
