package dashboard

import "hmp/internal/telemetry"

// EvaluatorAlerts shows the alert evaluator's alerts (nil: none).
func EvaluatorAlerts(e *telemetry.Evaluator) AlertSource { return evaluatorAlerts{e} }

type evaluatorAlerts struct{ e *telemetry.Evaluator }

func (s evaluatorAlerts) Alerts() []Alert {
	if s.e == nil {
		return nil
	}
	var out []Alert
	for _, al := range s.e.Alerts() {
		out = append(out, Alert{Name: al.Rule, Severity: al.Severity, State: al.State, Value: al.Value, Since: al.Since})
	}
	return out
}
