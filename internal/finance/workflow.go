package finance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
	"hmp/internal/tenancy"
)

// checkGate enforces the daily approval gate for a MANAGER writing to
// prop: no new row while a pending row of theirs was created on an earlier
// day than today (each day in the zone of that row's property), unless an
// ADMIN granted them a daily approval for today in prop's zone. Any error
// while checking fails closed.
func (s *Service) checkGate(ctx context.Context, actor domain.Actor, prop tenancy.Property, now time.Time) error {
	rows, err := s.pool.Query(ctx, oldestPending, actor.OrgID, actor.UserID)
	if err != nil {
		return fmt.Errorf("check daily approval gate: %w", postgres.Translate(err))
	}
	type oldest struct {
		Property domain.ID
		Created  time.Time
	}
	pending, err := pgx.CollectRows(rows, pgx.RowToStructByPos[oldest])
	if err != nil {
		return fmt.Errorf("check daily approval gate: %w", postgres.Translate(err))
	}
	var blocking *oldest
	var blockDay domain.Date
	for i, p := range pending {
		pp, err := s.props.PropertyByID(ctx, actor.OrgID, p.Property)
		if err != nil {
			return fmt.Errorf("check daily approval gate: %w", err)
		}
		if day := domain.BusinessDate(p.Created, pp.Location); day.Before(pp.Today(now)) {
			blocking, blockDay = &pending[i], day
			break
		}
	}
	if blocking == nil {
		return nil
	}
	var granted bool
	if err := s.pool.QueryRow(ctx, hasDailyApproval, actor.OrgID, actor.UserID, prop.Today(now).Time()).Scan(&granted); err != nil {
		return fmt.Errorf("check daily approval: %w", postgres.Translate(err))
	}
	if granted {
		return nil
	}
	return domain.Conflictf("you have rows pending approval created on %s; an ADMIN must approve or reject them, or grant you a daily approval for %s, before you add new rows",
		blockDay, prop.Today(now))
}

// DeletionRequest is a MANAGER's request to delete a row.
type DeletionRequest struct {
	ID            domain.ID
	TransactionID domain.ID
	Kind          domain.Kind
	Status        domain.Status
}

func (s *Service) requestDeletion(ctx context.Context, actor domain.Actor, kind domain.Kind, id domain.ID, now time.Time, pre Precondition) (domain.ID, Written, error) {
	var (
		reqID domain.ID
		w     Written
	)
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		t, err := loadTx(ctx, tx, selectTx, actor.OrgID, id, kind)
		if err != nil {
			return err
		}
		if err := s.checkRowAccess(ctx, actor, t); err != nil {
			return err
		}
		if err := pre.check(t); err != nil {
			return err
		}
		// One pending request per row: asking twice, even concurrently,
		// returns the first. The insert waits for a concurrent one and then
		// does nothing; the select after it sees whichever request won.
		_, err = tx.Exec(ctx, `
			INSERT INTO deletion_requests (org_id, id, transaction_id, kind, property_id, status, requested_by, requested_at)
			VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)
			ON CONFLICT (org_id, transaction_id) WHERE status = 'pending' DO NOTHING`,
			actor.OrgID, domain.NewID(now), id, kind, t.PropertyID, actor.UserID, now)
		if err != nil {
			return fmt.Errorf("insert deletion request: %w", postgres.Translate(err))
		}
		err = tx.QueryRow(ctx, `SELECT id FROM deletion_requests WHERE org_id = $1 AND transaction_id = $2 AND status = 'pending'`,
			actor.OrgID, id).Scan(&reqID)
		if errors.Is(err, pgx.ErrNoRows) {
			// A concurrent request was decided between the two statements.
			return domain.Conflictf("a deletion request for %s %s was decided meanwhile; retry", kind, id)
		}
		if err != nil {
			return fmt.Errorf("look up deletion request: %w", postgres.Translate(err))
		}
		w, err = currentToken(ctx, tx)
		return err
	})
	return reqID, w, err
}

// DecideDeletion approves (deleting the row) or rejects a deletion
// request. Only an ADMIN may; a request that is no longer pending is
// ErrConflict.
func (s *Service) DecideDeletion(ctx context.Context, actor domain.Actor, requestID domain.ID, approve bool) (DeletionRequest, Written, error) {
	if !actor.IsAdmin() {
		return DeletionRequest{}, Written{}, fmt.Errorf("%w: only an ADMIN may decide deletion requests", domain.ErrForbidden)
	}
	now := s.now().UTC()
	var (
		r DeletionRequest
		w Written
	)
	const selectRequest = `SELECT id, transaction_id, kind, status FROM deletion_requests WHERE org_id = $1 AND id = $2`
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		// Read the request unlocked to learn its row, lock the row first and
		// the request second, as an ADMIN's delete does: one lock order, and
		// the row's change gets its transaction id (its place in the event
		// order) only once the row is held.
		err := tx.QueryRow(ctx, selectRequest, actor.OrgID, requestID).Scan(&r.ID, &r.TransactionID, &r.Kind, &r.Status)
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.NotFoundf("deletion request %s not found", requestID)
		}
		if err != nil {
			return fmt.Errorf("load deletion request: %w", postgres.Translate(err))
		}
		var t *Transaction
		if approve {
			row, err := loadTx(ctx, tx, selectTxForUpdate, actor.OrgID, r.TransactionID, r.Kind)
			if err != nil && !errors.Is(err, domain.ErrNotFound) {
				return err
			}
			if err == nil {
				t = &row
			}
		}
		if err := tx.QueryRow(ctx, selectRequest+` FOR UPDATE`, actor.OrgID, requestID).Scan(&r.ID, &r.TransactionID, &r.Kind, &r.Status); err != nil {
			return fmt.Errorf("lock deletion request: %w", postgres.Translate(err))
		}
		if r.Status != domain.Pending {
			return domain.Conflictf("deletion request %s is already %s", requestID, r.Status)
		}
		r.Status = domain.Rejected
		decided := now
		if approve {
			r.Status = domain.Approved
			if t == nil {
				return domain.Conflictf("%s %s no longer exists", r.Kind, r.TransactionID)
			}
			// The delete's time is taken under the chain head, where its
			// place in the event order is (eventstore.Stamp).
			if decided, err = eventstore.Stamp(ctx, tx, actor.OrgID, s.now); err != nil {
				return err
			}
			if w, err = s.deleteRow(ctx, tx, actor, *t, decided); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE deletion_requests SET status = $3, decided_by = $4, decided_at = $5 WHERE org_id = $1 AND id = $2`,
			actor.OrgID, requestID, r.Status, actor.UserID, decided)
		if err != nil {
			return fmt.Errorf("decide deletion request: %w", postgres.Translate(err))
		}
		if !approve {
			w, err = currentToken(ctx, tx)
		}
		return err
	})
	return r, w, err
}

// DailyApproval lets a manager add rows on a date although older rows of
// theirs are pending.
type DailyApproval struct {
	ID            domain.ID
	ManagerUserID domain.ID
	Date          domain.Date
	GrantedBy     domain.ID
	GrantedAt     time.Time
}

// GrantDailyApproval records a daily approval. Only an ADMIN may; the user
// must be a MANAGER of the organization; granting the same date twice is
// ErrConflict.
func (s *Service) GrantDailyApproval(ctx context.Context, actor domain.Actor, managerID domain.ID, date domain.Date) (DailyApproval, Written, error) {
	if !actor.IsAdmin() {
		return DailyApproval{}, Written{}, fmt.Errorf("%w: only an ADMIN may grant daily approvals", domain.ErrForbidden)
	}
	now := s.now().UTC()
	u, err := s.props.User(ctx, actor.OrgID, managerID)
	if errors.Is(err, domain.ErrNotFound) {
		return DailyApproval{}, Written{}, &domain.NotFoundError{Field: "body.managerUserId", Value: managerID.String(), What: "user"}
	}
	if err != nil {
		return DailyApproval{}, Written{}, err
	}
	if u.Role != domain.Manager {
		return DailyApproval{}, Written{}, domain.Invalid("body.managerUserId", "must be a MANAGER", managerID.String())
	}
	if err := domain.CheckReportDate(date, domain.DateOf(now)); err != nil {
		return DailyApproval{}, Written{}, domain.Invalid("body.date", err.Error(), date.String())
	}
	a := DailyApproval{ID: domain.NewID(now), ManagerUserID: managerID, Date: date, GrantedBy: actor.UserID}
	md, err := json.Marshal(domain.DailyApprovalMetadata{ManagerUserID: managerID, Date: date})
	if err != nil {
		return DailyApproval{}, Written{}, fmt.Errorf("encode event metadata: %w", err)
	}
	var pos eventstore.Position
	err = s.withTx(ctx, func(tx pgx.Tx) error {
		// Every event of the chain is stamped under its head, so that time
		// follows chain order (eventstore.Stamp).
		at, err := eventstore.Stamp(ctx, tx, actor.OrgID, s.now)
		if err != nil {
			return err
		}
		a.GrantedAt = at
		ev := domain.Event{ID: domain.NewID(at), Version: domain.EventVersion, Type: domain.DailyApprovalGranted,
			OrgID: actor.OrgID, UserID: actor.UserID, EntityType: domain.EntityDailyApproval, EntityID: a.ID,
			AggregateVersion: 1, Timestamp: at, Metadata: md}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO daily_approvals (org_id, manager_user_id, date, id, granted_by, granted_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			actor.OrgID, managerID, date.Time(), a.ID, actor.UserID, at)
		if err := eventstore.Queue(b, ev, &pos); err != nil {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		if postgres.IsUniqueViolation(err, "daily_approvals_pkey") {
			return DailyApproval{}, Written{}, domain.Conflictf("a daily approval for this manager on %s already exists", date)
		}
		return DailyApproval{}, Written{}, fmt.Errorf("grant daily approval: %w", postgres.Translate(err))
	}
	return a, Written{Token: domain.Token{TxID: pos.TxID}}, nil
}
