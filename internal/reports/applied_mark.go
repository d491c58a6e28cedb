package reports

// MarkReflectedSQL moves every organization's consistency watermark past
// every transaction committed before the statement runs: a bulk load that
// wrote its history and projections itself (hmp seed) runs it last, so
// that its events count as applied (for consistent reads and rebuilds)
// although the projector never saw them. It must only run while no writer
// is active.
const MarkReflectedSQL = `
	INSERT INTO consistency_watermarks AS w (org_id, applied_below, updated_at)
	SELECT o.org_id, pg_current_xact_id(), now()
	FROM (SELECT DISTINCT org_id FROM events) o
	ON CONFLICT (org_id) DO UPDATE SET applied_below = EXCLUDED.applied_below, updated_at = EXCLUDED.updated_at
	WHERE w.applied_below < EXCLUDED.applied_below`
