package httpapi

import (
	"net/http"
	"strings"

	"hmp/internal/domain"
	"hmp/internal/reports"
)

// dailyReportRoute is the daily report's route, as the mux names it.
const dailyReportRoute = "GET /v1/reports/daily-report"

// fastReads answers the common daily-report read, a tokenless GET of
// exactly propertyId and date in their canonical forms by a caller admit
// already authenticated, without huma's per-request reflection (query
// parsing and validation were a quarter of a cached read). It runs the
// same service call as the route and writes the same bytes; anything else
// (other parameters, another spelling, a consistency token, any error:
// 401, 404, 422, 503) goes on to the route, which answers it as always.
func (s *server) fastReads(next http.Handler) http.Handler {
	if s.Reports == nil || s.Forward != nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r.Context())
		if r.Method != http.MethodGet || r.URL.Path != "/v1/reports/daily-report" || st == nil || !st.pre ||
			len(r.Header["X-Consistency-Token"]) > 0 {
			next.ServeHTTP(w, r)
			return
		}
		pid, date, ok := dailyQuery(r.URL.RawQuery)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		st.authed = true
		body, err := s.Reports.DailyReportEncoded(r.Context(), st.sess.Actor, pid, date, reports.Read{}, encodeDaily)
		if err != nil {
			st.authed = false
			next.ServeHTTP(w, r)
			return
		}
		st.pattern = dailyReportRoute
		w.Header()["Content-Type"] = s.jsonType
		_, _ = w.Write(body)
	})
}

// dailyQuery parses a query of exactly propertyId and date, once each,
// in canonical form (a lower-case UUID, YYYY-MM-DD), with nothing to
// unescape; ok is false for anything else.
func dailyQuery(q string) (pid domain.ID, date domain.Date, ok bool) {
	if strings.ContainsAny(q, "%+;") {
		return pid, date, false
	}
	a, b, found := strings.Cut(q, "&")
	if !found || strings.Contains(b, "&") {
		return pid, date, false
	}
	var rawID, rawDate string
	for _, kv := range [2]string{a, b} {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "propertyId" && rawID == "":
			rawID = v
		case k == "date" && rawDate == "":
			rawDate = v
		default:
			return pid, date, false
		}
	}
	pid, err := domain.ParseID(rawID)
	if err != nil || !canonicalID(pid, rawID) {
		return pid, date, false
	}
	date, err = domain.ParseDate(rawDate)
	if err != nil || !canonicalDate(date, rawDate) {
		return pid, date, false
	}
	return pid, date, true
}

func canonicalID(id domain.ID, s string) bool {
	var b [36]byte
	return string(id.Append(b[:0])) == s
}

func canonicalDate(d domain.Date, s string) bool {
	var b [10]byte
	return string(d.Append(b[:0])) == s
}
