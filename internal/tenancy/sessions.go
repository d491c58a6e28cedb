package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// UserState returns the user's current role and when they were last
// disabled (their tokens issued before it stay refused). A disabled or
// deleted user is ErrUnauthenticated: their tokens must stop working.
func (s *Service) UserState(ctx context.Context, orgID, userID domain.ID) (domain.UserState, error) {
	var (
		st        domain.UserState
		disabled  bool
		notBefore *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT role, disabled, tokens_not_before FROM users WHERE org_id = $1 AND id = $2`,
		orgID, userID).Scan(&st.Role, &disabled, &notBefore)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.UserState{}, fmt.Errorf("%w: the user no longer exists", domain.ErrUnauthenticated)
	}
	if err != nil {
		return domain.UserState{}, fmt.Errorf("look up user state: %w", postgres.Translate(err))
	}
	if disabled {
		return domain.UserState{}, fmt.Errorf("%w: the user is disabled", domain.ErrUnauthenticated)
	}
	if notBefore != nil {
		st.TokensNotBefore = *notBefore
	}
	return st, nil
}

// Revoked reports whether a token id was revoked by a logout.
func (s *Service) Revoked(ctx context.Context, orgID domain.ID, tokenID string) (bool, error) {
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE org_id = $1 AND token_id = $2)`, orgID, tokenID).Scan(&revoked)
	if err != nil {
		return false, fmt.Errorf("look up revoked token: %w", postgres.Translate(err))
	}
	return revoked, nil
}

// Revoke records a token id as revoked until it expires, and forgets
// revocations whose tokens have expired since.
func (s *Service) Revoke(ctx context.Context, orgID, userID domain.ID, tokenID string, expiresAt time.Time) error {
	if !domain.StorableText(tokenID) {
		return domain.Invalid("token", "has an unusable id", nil)
	}
	return postgres.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO revoked_tokens (org_id, token_id, user_id, expires_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, orgID, tokenID, userID, expiresAt); err != nil {
			return fmt.Errorf("revoke token: %w", postgres.Translate(err))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM revoked_tokens WHERE expires_at < $1`, s.now()); err != nil {
			return fmt.Errorf("forget expired revocations: %w", postgres.Translate(err))
		}
		return nil
	})
}

// UserPatch changes a user; nil fields stay as they are.
type UserPatch struct {
	Role     *domain.Role
	Disabled *bool
}

// UpdateUser changes a user's role or disables (or re-enables) them. Only
// an ADMIN may, and not on themselves (an organization must keep an
// ADMIN who can undo it). A MANAGER made ADMIN loses their property
// assignments (an ADMIN sees every property). Disabling sets the user's
// TokensNotBefore to now (never back): the tokens issued until then stay
// refused after a re-enable, and the user logs in again.
func (s *Service) UpdateUser(ctx context.Context, actor domain.Actor, userID domain.ID, p UserPatch) (User, error) {
	if !actor.IsAdmin() {
		return User{}, fmt.Errorf("%w: only an ADMIN may change users", domain.ErrForbidden)
	}
	if p.Role != nil && !p.Role.Valid() {
		return User{}, domain.Invalid("body.role", "must be ADMIN or MANAGER", string(*p.Role))
	}
	if userID == actor.UserID && ((p.Role != nil && *p.Role != domain.Admin) || (p.Disabled != nil && *p.Disabled)) {
		return User{}, domain.Conflictf("an ADMIN cannot demote or disable themselves")
	}
	err := postgres.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE users SET role = coalesce($3, role), disabled = coalesce($4, disabled),
				tokens_not_before = CASE WHEN $4 THEN greatest(tokens_not_before, $5) ELSE tokens_not_before END
			WHERE org_id = $1 AND id = $2`, actor.OrgID, userID, p.Role, p.Disabled, s.now())
		if err != nil {
			return fmt.Errorf("update user: %w", postgres.Translate(err))
		}
		if tag.RowsAffected() == 0 {
			return domain.NotFoundf("user %s not found", userID)
		}
		if p.Role != nil && *p.Role == domain.Admin {
			if _, err := tx.Exec(ctx, `DELETE FROM manager_properties WHERE org_id = $1 AND user_id = $2`, actor.OrgID, userID); err != nil {
				return fmt.Errorf("clear assignments: %w", postgres.Translate(err))
			}
		}
		return nil
	})
	s.forgetScope(actor.OrgID, userID) // a MANAGER made ADMIN lost their assignments
	if err != nil {
		return User{}, err
	}
	return s.User(ctx, actor.OrgID, userID)
}
